"""Pushes of the golden corpus made on purpose at fixed points of the afternoon: batches
refused as a whole, a borrower's ID checked until the budget runs out, late-evening visits
to borrowers with and without out-of-hours consent, and an ID typed before the card window
opened, then sent again after.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import records as rec
from .phone import Push
from .plans import AGENTS, UNFINISHED

if TYPE_CHECKING:
    from .corpus import Corpus

# Pushes refused as a whole (answered with an error, nothing stored).
BATCH_ERRORS: dict[int, Callable[[str], dict[str, Any]]] = {
    7: lambda now: {"device_time": now, "records": [{}] * 101},
    33: lambda now: {"records": []},
    61: lambda now: {"device_time": now, "records": "none today"},
    81: lambda now: {"device_time": "not a time", "records": []},
}

# Records that are not objects at all: each is answered `malformed` on its own (until
# 2026-12 such a record refused its whole batch).
NOT_OBJECTS: dict[int, Callable[[str], dict[str, Any]]] = {
    45: lambda now: {"device_time": now, "records": ["just text", None, [1, 2]]},
    99: lambda now: {"device_time": now, "records": [None]},
}

# A phone that checks one borrower's ID again and again: five comparisons, then the
# borrower's budget is spent (config ID_CHECKS_PER_BORROWER).
ID_BUDGET_VISIT = "c4-today"

# Late-evening visits to borrowers with an out-of-hours consent in force (c1), expired (c9),
# in force then but withdrawn midway (c13), and without any (c25).
CONSENT_VISITS = ("c1-today", "c9-today", "c13-today", "c25-today")

# An ID typed for tomorrow's visit before its card may be held (not compared), and the
# same batch again once the card window has opened: the agent now learns `not_compared`.
EARLY_ID_VISIT = "c1-tomorrow"
EARLY_ID_PUSH, EARLY_ID_REPLAY = 12, 97


def early_id(c: Corpus, index: int, at: datetime) -> Push:
    w = c.world
    plan = w.plans[EARLY_ID_VISIT]
    phone = next(p for p in c.phones if p.agent == plan.agent)
    records = [c.identity(phone, plan, w.visits[EARLY_ID_VISIT], at - timedelta(minutes=3))]
    records[0]["body"] = rec.identity_body(plan.case.national_id[-6:])
    phone.batches.append(records)
    c.early_batch = (phone.device, records)
    return Push(
        index,
        at,
        phone.device,
        {"device_time": rec.iso(at), "records": records},
        "ID typed early",
    )


def early_id_again(c: Corpus, index: int, at: datetime) -> Push:
    device, records = c.early_batch
    return Push(index, at, device, {"device_time": rec.iso(at), "records": records}, "replay exact")


def late_evening(c: Corpus, index: int, at: datetime) -> Push:
    w = c.world
    phone = next(p for p in c.phones if p.agent == w.plans[CONSENT_VISITS[0]].agent)
    records = []
    for key in CONSENT_VISITS:
        plan, visit_id = w.plans[key], w.visits[key]
        arrived = plan.local(21, 30)
        badge = rec.credential_body(phone.badge)
        records.append(c.record(phone, "id_confirmation", visit_id, arrived, badge))
        body = rec.report_body(c.rng, plan, arrived, "met_borrower", phone.agent)
        records.append(
            c.record(phone, "visit_report", visit_id, arrived + timedelta(hours=1), body)
        )
    phone.batches.append(records)
    phone.sent += records
    body = {"device_time": rec.iso(at), "records": records}
    return Push(index, at, phone.device, body, "late-evening visits")


def id_budget(c: Corpus, index: int, at: datetime, checks: int) -> Push:
    w = c.world
    plan = w.plans[ID_BUDGET_VISIT]
    phone = next(p for p in c.phones if p.agent == plan.agent)
    records = [
        c.identity(phone, plan, w.visits[ID_BUDGET_VISIT], at - timedelta(minutes=30 - n))
        for n in range(checks)
    ]
    phone.batches.append(records)
    body = {"device_time": rec.iso(at), "records": records}
    return Push(index, at, phone.device, body, "ID checks for one borrower")


SCRIPTED: dict[int, Callable[..., Push]] = {
    EARLY_ID_PUSH: early_id,
    20: lambda c, index, at: id_budget(c, index, at, 7),
    54: late_evening,
    78: lambda c, index, at: id_budget(c, index, at, 2),
    EARLY_ID_REPLAY: early_id_again,
}


def half_sent_blob(c: Corpus, rng: random.Random, index: int, at: datetime) -> Push:
    """A report and an agreement referencing a blob whose upload stopped halfway: retry."""
    w = c.world
    agent, _, phones = AGENTS[0]
    phone = next(p for p in c.phones if p.device == phones[0])
    key = next(k for k in c.visits_of(agent) if k.endswith("-today"))
    plan, visit_id = w.plans[key], w.visits[key]
    arrived = at - timedelta(hours=1)
    body = rec.report_body(rng, plan, arrived, "not_home", agent, attachments=(UNFINISHED,))
    seq = phone.next_seq()
    report = rec.envelope(rng, "visit_report", visit_id, seq, arrived + timedelta(minutes=20), body)
    agreement = rec.envelope(rng, "agreement", visit_id, phone.next_seq(), arrived, {})
    agreement["body"] = rec.agreement_body(
        rng,
        agreement["id"],
        visit_id,
        w.cases[plan.case.n],
        plan,
        arrived,
        agent,
        (UNFINISHED, "sig-agent"),
    )
    records = [report, agreement]
    return Push(
        index, at, phone.device, {"device_time": rec.iso(at), "records": records}, "half-sent blob"
    )


def field_contacts(c: Corpus, rng: random.Random, index: int, at: datetime) -> Push:
    """Calls and an SMS an agent made in the field (`contact` records): one before 08:00,
    nine attempts in a day (the 8th and 9th past the Reg F cap, the last after a
    conversation), and an SMS to a borrower who asked not to be texted."""
    w = c.world
    agent, _, phones = AGENTS[1]
    phone = next(p for p in c.phones if p.device == phones[0])
    key = next(k for k in c.visits_of(agent) if k.endswith("-today"))
    plan, visit_id = w.plans[key], w.visits[key]
    w.call(
        "POST",
        f"/api/v1/borrowers/{w.borrowers[plan.case.n]}/requests",
        "dispatcher",
        (201,),
        json={
            "kind": "do_not_contact",
            "channel": "sms",
            "source": "phone",
            "taken_at": rec.iso(at - timedelta(hours=2)),
        },
    )
    moments = [plan.local(6, 30), *(at - timedelta(hours=10 - i) for i in range(9))]
    outcomes = ["no_answer"] * 8 + ["reached", "voicemail"]
    records = [
        c.record(
            phone,
            "contact",
            visit_id,
            moment + timedelta(minutes=2),
            {"channel": "phone_call", "occurred_at": rec.iso(moment), "outcome": outcome},
        )
        for moment, outcome in zip(moments, outcomes, strict=True)
    ]
    sms_at = at - timedelta(minutes=30)
    sms = {"channel": "sms", "occurred_at": rec.iso(sms_at), "outcome": "sent"}
    records.append(c.record(phone, "contact", visit_id, sms_at, sms))
    phone.batches.append(records)
    phone.sent += records
    body = {"device_time": rec.iso(at), "records": records}
    return Push(index, at, phone.device, body, "field contacts")


# Pushes after the afternoon's timeline, each drawing from its own generator: adding one
# (say, for a new record kind) leaves every earlier line of the golden file as it was; only
# its own lines and the final store rows it adds to change.
LATER: tuple[tuple[str, Callable[..., Push]], ...] = (
    ("half-sent blob", half_sent_blob),
    ("field contacts", field_contacts),
)
