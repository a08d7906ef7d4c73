"""Records a phone should never send, or sends only by mistake, taken in turn by the golden
corpus: another agent's visit, an unknown visit, reused ids, tampered agreements, blobs that
are missing or not the agent's, a clock a day ahead, an upper-case id, and every malformed
variant of records.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import records as rec
from .phone import Phone
from .plans import AGENTS, NEVER_UPLOADED

if TYPE_CHECKING:
    from .corpus import Corpus


def _foreign_visit(c: Corpus, phone: Phone, at: datetime) -> dict:
    others = [k for k in c.world.plans if k not in c.visits_of(phone.agent)]
    record = c.plain_report(phone, at)
    return {**record, "visit_id": c.world.visits[others[c.rng.randrange(len(others))]]}


def _unknown_visit(c: Corpus, phone: Phone, at: datetime) -> dict:
    return {**c.plain_report(phone, at), "visit_id": 9_999_999}


def _reused_id(c: Corpus, phone: Phone, at: datetime) -> Any:
    if not phone.sent:
        return c.plain_report(phone, at)
    earlier = phone.sent[c.rng.randrange(len(phone.sent))]
    return {**earlier, "device_seq": phone.next_seq(), "recorded_at": rec.iso(at)}


def _other_agents_id(c: Corpus, phone: Phone, at: datetime) -> Any:
    others = [r for p in c.phones if p.agent != phone.agent for r in p.sent]
    if not others:
        return c.plain_report(phone, at)
    return dict(others[c.rng.randrange(len(others))])


def _same_record_twice(c: Corpus, phone: Phone, at: datetime) -> Any:
    record = c.plain_report(phone, at)
    phone.deferred.append(record)  # the same record again in the next push
    return record


def _typed_id_again(c: Corpus, phone: Phone, at: datetime) -> Any:
    typed = [r for r in phone.sent if r["body"].get("confirmation_kind") == "borrower_identity"]
    return typed[c.rng.randrange(len(typed))] if typed else c.plain_credential(phone, at)


def _tampered(c: Corpus, phone: Phone, at: datetime) -> dict:
    record = c.plain_agreement(phone, at)
    return {
        **record,
        "body": {
            **record["body"],
            "total_amount": record["body"]["installments"][0]["amount"],
            "installments": record["body"]["installments"][:1],
            "template_version": 7,
        },
    }


def _budget(c: Corpus, phone: Phone, at: datetime) -> dict:
    """Typed ID checks for one borrower again and again: the budget runs out."""
    today = [k for k in c.visits_of(phone.agent) if k.endswith("-today")]
    key = today[0]
    plan = c.world.plans[key]
    return c.identity(phone, plan, c.world.visits[key], at - timedelta(minutes=30))


def _future(c: Corpus, phone: Phone, at: datetime) -> dict:
    """A record made on a phone whose clock runs a day ahead, for tomorrow's visit."""
    keys = [k for k in c.visits_of(phone.agent) if k.endswith("-tomorrow")] or [c.own_key(phone)]
    key = keys[0]
    plan = c.world.plans[key]
    if c.rng.random() < 0.5:
        return c.identity(phone, plan, c.world.visits[key], at + timedelta(hours=20))
    body = rec.report_body(c.rng, plan, plan.local(9, 30), "not_home", phone.agent)
    return c.record(phone, "visit_report", c.world.visits[key], at + timedelta(hours=20), body)


def _foreign_blob(c: Corpus, phone: Phone, at: datetime) -> dict:
    """A photo the agent never uploaded, though another agent did: not the agent's to use."""
    record = c.plain_report(phone, at)
    photo = rec.blob_sha(_other(phone), "photo-1")
    return {**record, "body": {**record["body"], "attachments": [photo]}}


def _upper_id(c: Corpus, phone: Phone, at: datetime) -> dict:
    record = c.plain_report(phone, at)
    return {**record, "id": record["id"].upper()}


def _malformed(
    mutate: Callable[[dict], Any], base: str
) -> Callable[[Corpus, Phone, datetime], Any]:
    def make(c: Corpus, phone: Phone, at: datetime) -> Any:
        record = {
            "report": c.plain_report,
            "credential": c.plain_credential,
            "agreement": c.plain_agreement,
        }[base](phone, at)
        return mutate(record)

    return make


ANOMALIES: tuple[tuple[str, Callable[[Corpus, Phone, datetime], Any]], ...] = (
    ("another agent's visit", _foreign_visit),
    ("unknown visit", _unknown_visit),
    ("own id reused, other content", _reused_id),
    ("another agent's record id", _other_agents_id),
    ("same record twice", _same_record_twice),
    ("typed id check sent again", _typed_id_again),
    ("tampered agreement", _tampered),
    ("ID check budget", _budget),
    ("ID check budget", _budget),
    ("clock a day ahead", _future),
    ("upper-case id", _upper_id),
    ("another agent's blob", _foreign_blob),
    ("blob never uploaded", lambda c, p, at: c.plain_report(p, at, attachments=(NEVER_UPLOADED,))),
    (
        "agreement signed with a missing blob",
        lambda c, p, at: c.agreement(
            p, c.own_key(p), at - timedelta(hours=1), (NEVER_UPLOADED, "sig-agent")
        ),
    ),
    *((f"malformed report: {n}", _malformed(m, "report")) for n, m in rec.MALFORMED_REPORTS),
    *(
        (f"malformed confirmation: {n}", _malformed(m, "credential"))
        for n, m in rec.MALFORMED_CONFIRMATIONS
    ),
    *(
        (f"malformed agreement: {n}", _malformed(m, "agreement"))
        for n, m in rec.MALFORMED_AGREEMENTS
    ),
)


def _other(phone: Phone) -> str:
    names = [a for a, _, _ in AGENTS]
    return names[(names.index(phone.agent) + 1) % len(names)]
