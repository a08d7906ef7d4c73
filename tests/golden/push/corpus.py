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
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sync.visits import VISIT_OUTCOMES

from . import records as rec
from .anomalies import ANOMALIES
from .phone import Midway, Phone, Push
from .plans import AGENTS, CANCELLED_MIDWAY, PUSH_FROM, REASSIGNED_MIDWAY, VisitPlan
from .scripted import BATCH_ERRORS, LATER, NOT_OBJECTS, SCRIPTED
from .world import World

SEED = 20261124
PUSHES = 104  # the afternoon's pushes per profile, then those of scripted.LATER
STEP = timedelta(minutes=2, seconds=20)  # between two pushes, on the server's clock
MIDWAY = 52  # the push before which the server's world changes (build.midway_changes)
# Local arrival times tried for a visit (only those an hour or more before the push).
HOURS = ((7, 30), (8, 40), (9, 15), (10, 5), (11, 30), (14, 30))
HOURS += ((16, 0), (18, 10), (20, 40), (21, 30), (22, 45))


class Corpus:
    """The generator's state: the random source, the phones, what was reported."""

    def __init__(self, world: World, seed: int = SEED) -> None:
        self.world = world
        self.seed = seed
        self.rng = random.Random(seed)
        self.phones = [Phone(d, a, b) for a, b, devices in AGENTS for d in devices]
        self.reported: dict[str, set[str]] = {a: set() for a, _, _ in AGENTS}
        self.anomaly_turn = itertools.count()
        self.replay_turn = itertools.count()
        self.arrival_times: dict[str, list[datetime]] = {}
        # The batch of scripted.early_id, sent again by scripted.early_id_again.
        self.early_batch: tuple[str, list[Any]] = ("", [])

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
            if index in NOT_OBJECTS:
                phone = self.phones[index % len(self.phones)]
                yield Push(index, at, phone.device, NOT_OBJECTS[index](now), "not objects")
                continue
            if index in SCRIPTED:
                yield SCRIPTED[index](self, index, at)
                continue
            phone = self.rng.choice(self.phones)
            if phone.batches and self.rng.random() < 0.13:
                yield self._replay(index, at, phone)
                continue
            yield self._fresh(index, at, phone)
        for offset, (name, make) in enumerate(LATER):
            index = PUSHES + offset
            rng = random.Random(f"{self.seed}:{name}")
            yield make(self, rng, index, PUSH_FROM + index * STEP)

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

    def visits_of(self, agent: str) -> list[str]:
        """Visits the agent has or had, in plan order."""
        w = self.world
        return [k for k, p in w.plans.items() if agent in (p.agent, w.owner[k])]

    def _story(self, phone: Phone, at: datetime) -> list[dict]:
        """What happened at one door: badge, report, maybe an ID check and an agreement."""
        rng, w = self.rng, self.world
        ready = []
        for key in self.visits_of(phone.agent):
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
                self.record(
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
        report = self.record(phone, "visit_report", visit_id, ends + timedelta(minutes=2), body)
        if rng.random() < 0.3:
            made.append(self.identity(phone, plan, visit_id, arrived + timedelta(minutes=5)))
        if rng.random() < (0.6 if "agreement" in (plan.purpose + outcome) else 0.06):
            made.append(self.agreement(phone, key, arrived + timedelta(minutes=20)))
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

    def record(self, phone: Phone, kind: str, visit_id: int, at: datetime, body: dict) -> dict:
        return rec.envelope(self.rng, kind, visit_id, phone.next_seq(), at, body)

    def identity(self, phone: Phone, plan: VisitPlan, visit_id: int, at: datetime) -> dict:
        national = plan.case.national_id or "ZZ0000000000"
        roll = self.rng.random()
        last6 = national[-6:] if roll < 0.55 else national[-6:].lower() if roll < 0.7 else "000000"
        return self.record(phone, "id_confirmation", visit_id, at, rec.identity_body(last6))

    def agreement(
        self, phone: Phone, key: str, signed_at: datetime, signatures: tuple[str, str] | None = None
    ) -> dict:
        w = self.world
        plan, visit_id = w.plans[key], w.visits[key]
        if signatures is None:
            signatures = self.rng.choices(
                (("sig-borrower", "sig-agent"), ("late-sig", "sig-agent")), (90, 10)
            )[0]
        record = self.record(phone, "agreement", visit_id, signed_at + timedelta(minutes=1), {})
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

    def own_key(self, phone: Phone) -> str:
        keys = self.visits_of(phone.agent)
        return keys[self.rng.randrange(len(keys))]

    def plain_report(self, phone: Phone, at: datetime, key: str | None = None, **kw: Any) -> dict:
        key = key or self.own_key(phone)
        plan = self.world.plans[key]
        arrived = at - timedelta(hours=2)
        body = rec.report_body(self.rng, plan, arrived, "met_borrower", phone.agent, **kw)
        return self.record(
            phone, "visit_report", self.world.visits[key], arrived + timedelta(minutes=30), body
        )

    def plain_credential(self, phone: Phone, at: datetime) -> dict:
        key = self.own_key(phone)
        return self.record(
            phone,
            "id_confirmation",
            self.world.visits[key],
            at - timedelta(hours=2),
            rec.credential_body(phone.badge),
        )

    def plain_agreement(self, phone: Phone, at: datetime) -> dict:
        return self.agreement(
            phone, self.own_key(phone), at - timedelta(hours=1), ("sig-borrower", "sig-agent")
        )


def steps(world: World, seed: int = SEED) -> Iterator[Push | Midway]:
    """The corpus, in order, for this world."""
    return Corpus(world, seed).steps()
