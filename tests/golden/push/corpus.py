"""The golden corpus: what the phones push, batch by batch, through an afternoon.

`steps(world)` yields the pushes (and, once, the moment the server's world changes) in
order. Phones work through the visits of their agent (badge shown or not, reports with every
outcome and fix, typed ID checks, signed agreements), replay earlier batches as a phone does
after a lost answer, and now and then send a record that is malformed, forged, foreign or
reused. Every choice comes from one seeded generator and the world's own ids, so the corpus is
the same on every run; anomalies are taken in turn from fixed lists, so each appears.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sync.visits import VISIT_OUTCOMES

from . import records as rec
from .world import (
    AGENTS,
    CANCELLED_MIDWAY,
    PUSH_FROM,
    REASSIGNED_MIDWAY,
    VisitPlan,
    World,
)

SEED = 20261124
PUSHES = 104
STEP = timedelta(minutes=2, seconds=20)
MIDWAY = 52  # the push before which the server's world changes (world.midway_changes)
# Local arrival times tried for a visit (only those an hour or more before the push).
HOURS = (
    (7, 30),
    (8, 40),
    (9, 15),
    (10, 5),
    (11, 30),
    (14, 30),
    (16, 0),
    (18, 10),
    (20, 40),
    (21, 30),
    (22, 45),
)
# Pushes refused as a whole (answered with an error, nothing stored).
BATCH_ERRORS: dict[int, Callable[[str], dict[str, Any]]] = {
    7: lambda now: {"device_time": now, "records": [{}] * 101},
    33: lambda now: {"records": []},
    # A record that is not an object at all refuses the whole batch today.
    45: lambda now: {"device_time": now, "records": ["just text", None, [1, 2]]},
    61: lambda now: {"device_time": now, "records": "none today"},
    81: lambda now: {"device_time": "not a time", "records": []},
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
SCRIPTED: dict[int, tuple[str, tuple[Any, ...]]] = {
    EARLY_ID_PUSH: ("_early_id", ()),
    20: ("_id_budget", (7,)),
    54: ("_late_evening", ()),
    78: ("_id_budget", (2,)),
    EARLY_ID_REPLAY: ("_early_id_again", ()),
}


@dataclass(frozen=True)
class Push:
    """One POST /sync/push: when, from which phone, the body as sent, and what it is."""

    index: int
    at: datetime
    device: str
    body: Any
    note: str


@dataclass(frozen=True)
class Midway:
    """The server's world changes now (cancellations, reassignments, flags, uploads)."""

    at: datetime


@dataclass
class Phone:
    device: str
    agent: str
    badge: str
    seq: int = 0
    batches: list[list[Any]] = field(default_factory=list)
    deferred: list[dict] = field(default_factory=list)  # recorded, goes with the next push
    waiting: list[dict] = field(default_factory=list)  # references a blob uploaded midway
    sent: list[dict] = field(default_factory=list)  # well-formed records sent
    acked: bool = False

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


class Corpus:
    """The generator's state: the random source, the phones, what was reported."""

    def __init__(self, world: World, seed: int = SEED) -> None:
        self.world = world
        self.rng = random.Random(seed)
        self.phones = [Phone(d, a, b) for a, b, devices in AGENTS for d in devices]
        self.reported: dict[str, set[str]] = {a: set() for a, _, _ in AGENTS}
        self.anomaly_turn = itertools.count()
        self.replay_turn = itertools.count()
        self.arrival_times: dict[str, list[datetime]] = {}

    # -- the timeline ---------------------------------------------------------------------

    def steps(self) -> Iterator[Push | Midway]:
        for index in range(PUSHES):
            at = PUSH_FROM + index * STEP
            if index == MIDWAY:
                yield Midway(at)
            now = rec.iso(at)
            if index in BATCH_ERRORS:
                phone = self.phones[index % len(self.phones)]
                yield Push(index, at, phone.device, BATCH_ERRORS[index](now), "refused batch")
                continue
            if index in SCRIPTED:
                name, args = SCRIPTED[index]
                yield getattr(self, name)(index, at, *args)
                continue
            phone = self.rng.choice(self.phones)
            if phone.batches and self.rng.random() < 0.13:
                yield self._replay(index, at, phone)
                continue
            yield self._fresh(index, at, phone)

    def _fresh(self, index: int, at: datetime, phone: Phone) -> Push:
        rng = self.rng
        records: list[Any] = phone.deferred
        phone.deferred = []
        if index >= MIDWAY and phone.waiting:
            records += phone.waiting
            phone.waiting = []
        target = rng.randint(3, 14)
        while len(records) < target:
            made = self._story(phone, at)
            if not made:
                break
            records += made
        while rng.random() < 0.5:
            records.append(self._anomaly(phone, at))
        body: dict[str, Any] = {"device_time": rec.iso(self._device_time(at)), "records": records}
        if rng.random() < 0.3:
            stamps = [
                r["recorded_at"]
                for r in records
                if isinstance(r, dict) and isinstance(r.get("recorded_at"), str)
            ]
            body["queue"] = {
                "pending": rng.randint(0, 40),
                "oldest_recorded_at": min(stamps) if stamps else None,
            }
        if index >= MIDWAY and not phone.acked:
            phone.acked = True
            body["purge_acks"] = self._purge_acks(phone)
        phone.batches.append(records)
        return Push(index, at, phone.device, body, "batch")

    def _early_id(self, index: int, at: datetime) -> Push:
        w = self.world
        plan = w.plans[EARLY_ID_VISIT]
        phone = next(p for p in self.phones if p.agent == plan.agent)
        records = [self._identity(phone, plan, w.visits[EARLY_ID_VISIT], at - timedelta(minutes=3))]
        records[0]["body"] = rec.identity_body(plan.case.national_id[-6:])
        phone.batches.append(records)
        self.early_batch = (phone.device, records)
        return Push(
            index,
            at,
            phone.device,
            {"device_time": rec.iso(at), "records": records},
            "ID typed early",
        )

    def _early_id_again(self, index: int, at: datetime) -> Push:
        device, records = self.early_batch
        return Push(
            index, at, device, {"device_time": rec.iso(at), "records": records}, "replay exact"
        )

    def _late_evening(self, index: int, at: datetime) -> Push:
        w = self.world
        phone = next(p for p in self.phones if p.agent == w.plans[CONSENT_VISITS[0]].agent)
        records = []
        for key in CONSENT_VISITS:
            plan, visit_id = w.plans[key], w.visits[key]
            arrived = plan.local(21, 30)
            badge = rec.credential_body(phone.badge)
            records.append(self._record(phone, "id_confirmation", visit_id, arrived, badge))
            body = rec.report_body(self.rng, plan, arrived, "met_borrower", phone.agent)
            records.append(
                self._record(phone, "visit_report", visit_id, arrived + timedelta(hours=1), body)
            )
        phone.batches.append(records)
        phone.sent += records
        body = {"device_time": rec.iso(at), "records": records}
        return Push(index, at, phone.device, body, "late-evening visits")

    def _id_budget(self, index: int, at: datetime, checks: int) -> Push:
        w = self.world
        plan = w.plans[ID_BUDGET_VISIT]
        phone = next(p for p in self.phones if p.agent == plan.agent)
        records = [
            self._identity(phone, plan, w.visits[ID_BUDGET_VISIT], at - timedelta(minutes=30 - n))
            for n in range(checks)
        ]
        phone.batches.append(records)
        body = {"device_time": rec.iso(at), "records": records}
        return Push(index, at, phone.device, body, "ID checks for one borrower")

    def _device_time(self, at: datetime) -> datetime:
        roll = self.rng.random()
        if roll < 0.05:
            return at + timedelta(minutes=9)
        if roll < 0.08:
            return at - timedelta(minutes=20)
        return at + timedelta(seconds=self.rng.randint(-40, 40))

    def _purge_acks(self, phone: Phone) -> list[int]:
        """What the phone confirms after the midway changes: the cards it held of visits
        cancelled or moved away, and one visit it never held."""
        keys = (*CANCELLED_MIDWAY, *REASSIGNED_MIDWAY)
        held = [self.world.visits[k] for k in keys if self.world.plans[k].agent == phone.agent]
        return [*held, 9_999_999]

    def _replay(self, index: int, at: datetime, phone: Phone) -> Push:
        """A batch sent again: exactly, reordered, its tail only, or from the agent's other
        phone."""
        turn = next(self.replay_turn)
        batch = self.rng.choice(phone.batches)
        mode = ("exact", "reversed", "tail", "other phone")[turn % 4]
        device = phone.device
        records = list(batch)
        if mode == "reversed":
            records.reverse()
        elif mode == "tail":
            records = records[len(records) // 2 :]
        elif mode == "other phone":
            twins = [p for p in self.phones if p.agent == phone.agent and p is not phone]
            device = twins[0].device if twins else device
        body = {"device_time": rec.iso(at), "records": records}
        return Push(index, at, device, body, f"replay {mode}")

    # -- a visit's records ----------------------------------------------------------------

    def _visits_of(self, agent: str) -> list[str]:
        """Visits the agent has or had, in plan order."""
        w = self.world
        return [k for k, p in w.plans.items() if agent in (p.agent, w.owner[k])]

    def _story(self, phone: Phone, at: datetime) -> list[dict]:
        """What happened at one door: badge, report, maybe an ID check and an agreement."""
        rng, w = self.rng, self.world
        ready = []
        for key in self._visits_of(phone.agent):
            hours = [t for t in self._arrivals(key) if t + timedelta(hours=1) <= at]
            if hours:
                ready.append((key, hours))
        if not ready:
            return []
        fresh = [r for r in ready if r[0] not in self.reported[phone.agent]]
        key, hours = rng.choice(fresh or ready)
        self.reported[phone.agent].add(key)
        plan, visit_id = w.plans[key], w.visits[key]
        arrived = rng.choice(hours)
        made: list[dict] = []
        badge_mode = rng.choices(
            ("before", "none", "late", "grace", "wrong", "earlier push"), (50, 14, 10, 8, 8, 10)
        )[0]
        badge_at = {"before": -2, "late": 9, "grace": 1, "wrong": -1, "earlier push": -3}.get(
            badge_mode
        )
        if badge_at is not None:
            badge = (
                "B-9999"
                if badge_mode == "wrong"
                else phone.badge.lower()
                if rng.random() < 0.2
                else phone.badge
            )
            made.append(
                self._record(
                    phone,
                    "id_confirmation",
                    visit_id,
                    arrived + timedelta(minutes=badge_at),
                    rec.credential_body(badge),
                )
            )
        fix = rng.choices(("near", "far", "none", "vague"), (70, 12, 10, 8))[0]
        outcome = rng.choice(VISIT_OUTCOMES)
        attach = rng.choices(
            ((), ("photo-1",), ("photo-1", "photo-2"), ("late-photo",)), (70, 15, 8, 7)
        )[0]
        body = rec.report_body(
            rng, plan, arrived, outcome, phone.agent, fix=fix, attachments=attach
        )
        ends = datetime.fromisoformat(
            body.get("departed_at", body["arrived_at"]).replace("Z", "+00:00")
        )
        report = self._record(phone, "visit_report", visit_id, ends + timedelta(minutes=2), body)
        if rng.random() < 0.3:
            made.append(self._identity(phone, plan, visit_id, arrived + timedelta(minutes=5)))
        if rng.random() < (0.6 if "agreement" in (plan.purpose + outcome) else 0.06):
            made.append(self._agreement(phone, key, arrived + timedelta(minutes=20)))
        if badge_mode == "earlier push":  # the badge goes now, the rest with the next push
            phone.deferred += made[1:] + [report]
            made = made[:1]
        else:
            made.append(report)
        for record in made:
            if "late-" in repr(record["body"]):
                phone.waiting.append(record)  # the phone sends it again after uploading
        phone.sent += made
        return made

    def _arrivals(self, key: str) -> list[datetime]:
        """The visit's candidate arrival times (UTC), worked out once."""
        if key not in self.arrival_times:
            plan = self.world.plans[key]
            self.arrival_times[key] = [plan.local(h, m) for h, m in HOURS]
        return self.arrival_times[key]

    def _record(self, phone: Phone, kind: str, visit_id: int, at: datetime, body: dict) -> dict:
        return rec.envelope(self.rng, kind, visit_id, phone.next_seq(), at, body)

    def _identity(self, phone: Phone, plan: VisitPlan, visit_id: int, at: datetime) -> dict:
        national = plan.case.national_id or "ZZ0000000000"
        roll = self.rng.random()
        last6 = national[-6:] if roll < 0.55 else national[-6:].lower() if roll < 0.7 else "000000"
        return self._record(phone, "id_confirmation", visit_id, at, rec.identity_body(last6))

    def _agreement(
        self, phone: Phone, key: str, signed_at: datetime, signatures: tuple[str, str] | None = None
    ) -> dict:
        w = self.world
        plan, visit_id = w.plans[key], w.visits[key]
        if signatures is None:
            signatures = self.rng.choices(
                (("sig-borrower", "sig-agent"), ("late-sig", "sig-agent")), (90, 10)
            )[0]
        record = self._record(phone, "agreement", visit_id, signed_at + timedelta(minutes=1), {})
        record["body"] = rec.agreement_body(
            self.rng,
            record["id"],
            visit_id,
            w.cases[plan.case.n],
            plan,
            signed_at,
            phone.agent,
            signatures,
        )
        return record

    # -- what should never happen, in turn ------------------------------------------------

    def _anomaly(self, phone: Phone, at: datetime) -> Any:
        makers = ANOMALIES
        name, make = makers[next(self.anomaly_turn) % len(makers)]
        return make(self, phone, at)

    def _own_key(self, phone: Phone) -> str:
        keys = self._visits_of(phone.agent)
        return keys[self.rng.randrange(len(keys))]

    def _plain_report(self, phone: Phone, at: datetime, key: str | None = None, **kw: Any) -> dict:
        key = key or self._own_key(phone)
        plan = self.world.plans[key]
        arrived = at - timedelta(hours=2)
        body = rec.report_body(self.rng, plan, arrived, "met_borrower", phone.agent, **kw)
        return self._record(
            phone, "visit_report", self.world.visits[key], arrived + timedelta(minutes=30), body
        )

    def _plain_credential(self, phone: Phone, at: datetime) -> dict:
        key = self._own_key(phone)
        return self._record(
            phone,
            "id_confirmation",
            self.world.visits[key],
            at - timedelta(hours=2),
            rec.credential_body(phone.badge),
        )

    def _plain_agreement(self, phone: Phone, at: datetime) -> dict:
        return self._agreement(
            phone, self._own_key(phone), at - timedelta(hours=1), ("sig-borrower", "sig-agent")
        )


def _foreign_visit(c: Corpus, phone: Phone, at: datetime) -> dict:
    others = [k for k in c.world.plans if k not in c._visits_of(phone.agent)]
    record = c._plain_report(phone, at)
    return {**record, "visit_id": c.world.visits[others[c.rng.randrange(len(others))]]}


def _unknown_visit(c: Corpus, phone: Phone, at: datetime) -> dict:
    return {**c._plain_report(phone, at), "visit_id": 9_999_999}


def _reused_id(c: Corpus, phone: Phone, at: datetime) -> Any:
    if not phone.sent:
        return c._plain_report(phone, at)
    earlier = phone.sent[c.rng.randrange(len(phone.sent))]
    return {**earlier, "device_seq": phone.next_seq(), "recorded_at": rec.iso(at)}


def _other_agents_id(c: Corpus, phone: Phone, at: datetime) -> Any:
    others = [r for p in c.phones if p.agent != phone.agent for r in p.sent]
    if not others:
        return c._plain_report(phone, at)
    return dict(others[c.rng.randrange(len(others))])


def _same_record_twice(c: Corpus, phone: Phone, at: datetime) -> Any:
    record = c._plain_report(phone, at)
    phone.deferred.append(record)  # the same record again in the next push
    return record


def _typed_id_again(c: Corpus, phone: Phone, at: datetime) -> Any:
    typed = [r for r in phone.sent if r["body"].get("confirmation_kind") == "borrower_identity"]
    return typed[c.rng.randrange(len(typed))] if typed else c._plain_credential(phone, at)


def _tampered(c: Corpus, phone: Phone, at: datetime) -> dict:
    record = c._plain_agreement(phone, at)
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
    today = [k for k in c._visits_of(phone.agent) if k.endswith("-today")]
    key = today[0]
    plan = c.world.plans[key]
    return c._identity(phone, plan, c.world.visits[key], at - timedelta(minutes=30))


def _future(c: Corpus, phone: Phone, at: datetime) -> dict:
    """A record made on a phone whose clock runs a day ahead, for tomorrow's visit."""
    keys = [k for k in c._visits_of(phone.agent) if k.endswith("-tomorrow")] or [c._own_key(phone)]
    key = keys[0]
    plan = c.world.plans[key]
    if c.rng.random() < 0.5:
        return c._identity(phone, plan, c.world.visits[key], at + timedelta(hours=20))
    body = rec.report_body(c.rng, plan, plan.local(9, 30), "not_home", phone.agent)
    return c._record(phone, "visit_report", c.world.visits[key], at + timedelta(hours=20), body)


def _foreign_blob(c: Corpus, phone: Phone, at: datetime) -> dict:
    """A photo the agent never uploaded, though another agent did: not the agent's to use."""
    record = c._plain_report(phone, at)
    photo = rec.blob_sha(_other(phone), "photo-1")
    return {**record, "body": {**record["body"], "attachments": [photo]}}


def _upper_id(c: Corpus, phone: Phone, at: datetime) -> dict:
    record = c._plain_report(phone, at)
    return {**record, "id": record["id"].upper()}


def _malformed(
    mutate: Callable[[dict], Any], base: str
) -> Callable[[Corpus, Phone, datetime], Any]:
    def make(c: Corpus, phone: Phone, at: datetime) -> Any:
        record = {
            "report": c._plain_report,
            "credential": c._plain_credential,
            "agreement": c._plain_agreement,
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
    ("blob never uploaded", lambda c, p, at: c._plain_report(p, at, attachments=("never",))),
    (
        "agreement signed with a missing blob",
        lambda c, p, at: c._agreement(
            p, c._own_key(p), at - timedelta(hours=1), ("never", "sig-agent")
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


def steps(world: World, seed: int = SEED) -> Iterator[Push | Midway]:
    """The corpus, in order, for this world."""
    return Corpus(world, seed).steps()
