"""Compliance on every channel, applied: the facts the channel rules (sync/contact_rules.py)
read, the flags of contacts logged or imported, and the answer to a contact being planned."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import sqlite_utils

from server.clock import parse_iso, to_iso
from server.errors import ContactRefused, NotFound
from server.runtime import Caller, Runtime
from server.services.borrower_requests import consents_by_borrower
from server.storage import cases as case_rows
from server.storage import contacts as contact_rows
from server.storage.connection import transaction
from sync.cards import case_stops_visits
from sync.cases import flags_set
from sync.compliance import NO_PRIOR_NOTICE, CompliancePolicy, Flag
from sync.contact_rules import (
    NOTICE_CHANNELS,
    ContactFacts,
    DoNotContact,
    check_contact,
    notice_times,
)
from sync.contacts import HOME_VISIT, PHONE_CALL, LoggedContact

if TYPE_CHECKING:  # services.contacts imports this module
    from server.services.contacts import Candidate


def logs_of_cases(
    db: sqlite_utils.Database, case_ids: list[int]
) -> dict[int, tuple[LoggedContact, ...]]:
    """The contact log of each case, as the channel rules read it."""
    found: dict[int, list[LoggedContact]] = {}
    for row in contact_rows.contacts_of_cases(db, case_ids):
        found.setdefault(row["case_id"], []).append(
            LoggedContact(
                row["channel"], row["direction"], parse_iso(row["occurred_at"]), row["outcome"]
            )
        )
    return {case_id: tuple(log) for case_id, log in found.items()}


def rule_logs_of_cases(
    db: sqlite_utils.Database, case_ids: list[int], calls: tuple[str, str] | None
) -> dict[int, tuple[LoggedContact, ...]]:
    """The part of each case's contact log a push's rules can read (sync.contact_rules):
    its phone calls with `calls` = (since, until) as stored text (none when None), and its
    written notices (notice_times). As far as those rules go it is the whole log: they
    look back at calls only within their periods and at notices whenever sent."""
    found: dict[int, list[LoggedContact]] = {}
    rows = contact_rows.notices_of_cases(db, case_ids, sorted(NOTICE_CHANNELS))
    if calls is not None:
        rows += [
            (case_id, PHONE_CALL, direction, occurred_at, outcome)
            for case_id, direction, occurred_at, outcome in contact_rows.calls_of_cases(
                db, case_ids, PHONE_CALL, calls[0], calls[1]
            )
        ]
    for case_id, channel, direction, occurred_at, outcome in rows:
        found.setdefault(case_id, []).append(
            LoggedContact(channel, direction, parse_iso(occurred_at), outcome)
        )
    return {case_id: tuple(log) for case_id, log in found.items()}


def do_not_contact_by_borrower(
    db: sqlite_utils.Database, borrower_ids: list[int]
) -> dict[int, tuple[DoNotContact, ...]]:
    """Each borrower's do-not-contact requests, withdrawn ones included."""
    found: dict[int, list[DoNotContact]] = {}
    for row in contact_rows.do_not_contact_of_borrowers(db, borrower_ids):
        found.setdefault(row["borrower_id"], []).append(
            DoNotContact(
                channel=row["channel"],
                taken_at=parse_iso(row["taken_at"]),
                withdrawn_at=parse_iso(row["withdrawn_at"]) if row["withdrawn_at"] else None,
            )
        )
    return {borrower: tuple(requests) for borrower, requests in found.items()}


def facts_of_cases(
    db: sqlite_utils.Database, rt: Runtime, case_ids: list[int]
) -> dict[int, tuple[ContactFacts, tuple[LoggedContact, ...]]]:
    """(the borrower's facts, the case's log) for each case, in four queries."""
    cases = contact_rows.borrowers_of_cases(db, case_ids)
    borrowers = sorted({c["borrower_id"] for c in cases.values()})
    requests = do_not_contact_by_borrower(db, borrowers)
    consents = consents_by_borrower(db, borrowers)
    logs = logs_of_cases(db, list(cases))
    found = {}
    for case_id, case in cases.items():
        borrower = case["borrower_id"]
        facts = ContactFacts(
            time_zone=case["time_zone"] or rt.settings["DEFAULT_TIME_ZONE"],
            do_not_contact=requests.get(borrower, ()),
            consents=consents.get(borrower, ()),
        )
        found[case_id] = (facts, logs.get(case_id, ()))
    return found


def flag_candidates(
    db: sqlite_utils.Database, rt: Runtime, candidates: Sequence[Candidate]
) -> list[Candidate]:
    """The candidates with the rules each breaks, judged in time order against the log and
    the candidates before them (a duplicate's flags are dropped when it merges)."""
    found = contact_flags(db, rt, candidates)
    return [
        replace(c, flags=flags) if flags or c.flags else c
        for c, flags in zip(candidates, found, strict=True)
    ]


def contact_flags(
    db: sqlite_utils.Database,
    rt: Runtime,
    candidates: Sequence[Candidate],
    judged: Collection[int] | None = None,
    memo: CallMemo | None = None,
) -> list[tuple[dict[str, Any], ...]]:
    """The flags of each candidate (flag_candidates), with one query per kind of fact for
    the whole batch: the borrowers, their requests and consents, and only the part of the
    log the rules look at (phone calls within the rules' period before the batch's). Only
    the candidates at the `judged` indexes (default: all) are judged, the others get no
    flags but still count as contacts made before the later ones: an import judges only
    the rows that become new entries, since a duplicate's flags are dropped. An import
    passes one `memo` for all its chunks, so each chunk reads only the calls it has not
    read yet (CallMemo)."""
    wanted = range(len(candidates)) if judged is None else frozenset(judged)
    # Only an outbound contact is held to the rules (check_contact); only calls look back.
    held = [i for i in wanted if candidates[i].direction == "outbound"]
    facts = _facts_for_flags(db, rt, [candidates[i] for i in held], memo or CallMemo())
    held_set = frozenset(held)
    seen: dict[int, list[LoggedContact]] = {}
    flags: list[tuple[dict[str, Any], ...]] = [()] * len(candidates)
    order = sorted(range(len(candidates)), key=lambda i: candidates[i].occurred_at)
    for index in order:
        candidate = candidates[index]
        contact = _logged(candidate)
        if index in held_set:
            case_facts, log = facts[candidate.case_id]
            earlier = (*log, *seen.get(candidate.case_id, ()))
            found = check_contact(contact, earlier, case_facts, rt.compliance)
            flags[index] = tuple(f.to_dict() for f in found)
        if contact.channel == PHONE_CALL:  # the only contacts the rules look back at
            seen.setdefault(candidate.case_id, []).append(contact)
    return flags


# Later than any stored time: the open end of a case's remembered stretch of calls.
_END_OF_TIME = "9999-12-31T23:59:59Z"


@dataclass
class CallMemo:
    """The phone calls a run of batches has read from the log, kept from one batch to the
    next (an import's chunks). Per case it holds every call from `since[case]` on, as the
    log stood at entry id `seen_id`; the next batch adds the entries logged after that id
    (its own writes and anyone else's) and reads only a stretch further back than
    `since[case]`. What no batch can look back at any more is dropped, so memory follows
    the rules' period, not the size of the import."""

    seen_id: int | None = None
    since: dict[int, datetime] = field(default_factory=dict)
    calls: dict[int, list[LoggedContact]] = field(default_factory=dict)
    cases: dict[int, dict[str, Any]] = field(default_factory=dict)
    # Calls this run wrote itself, by entry id, as the log will return them: not parsed
    # again when they come back as entries logged after `seen_id`.
    written: dict[int, LoggedContact] = field(default_factory=dict)

    def note_written(self, entries: Iterable[tuple[int, Candidate]]) -> None:
        """(entry id, candidate) of the new entries a batch has just logged."""
        for entry, c in entries:
            if c.channel == PHONE_CALL:
                at = c.occurred_at.replace(microsecond=0).astimezone(UTC)
                self.written[entry] = LoggedContact(PHONE_CALL, c.direction, at, c.outcome)

    def borrowers(self, db: sqlite_utils.Database, case_ids: list[int]) -> dict[int, Any]:
        """{borrower_id, time_zone} of each case, read once per run."""
        missing = [c for c in case_ids if c not in self.cases]
        if missing:
            self.cases.update(contact_rows.borrowers_of_cases(db, missing))
        return {c: self.cases[c] for c in case_ids if c in self.cases}

    def calls_since(
        self, db: sqlite_utils.Database, since: datetime, case_ids: list[int]
    ) -> dict[int, list[LoggedContact]]:
        """Every call of these cases from `since` on (and perhaps a few earlier ones)."""
        if self.seen_id is None:
            self.seen_id = contact_rows.last_contact_id(db)
        else:
            for case_id, direction, occurred_at, outcome, entry in contact_rows.calls_after(
                db, PHONE_CALL, self.seen_id
            ):
                self.seen_id = max(self.seen_id, entry)
                known = self.since.get(case_id)
                ours = self.written.pop(entry, None)
                if known is not None:
                    call = ours or _logged_call(direction, occurred_at, outcome)
                    if call.occurred_at >= known:
                        self.calls[case_id].append(call)
        # Cases new to the run read from `since` on; known ones only what lies before.
        stretches: dict[str, list[int]] = {}
        for case_id in case_ids:
            known = self.since.get(case_id)
            if known is None:
                stretches.setdefault(_END_OF_TIME, []).append(case_id)
                self.calls[case_id] = []
            elif since < known:
                stretches.setdefault(to_iso(known), []).append(case_id)
            else:
                continue
            self.since[case_id] = since
        after = to_iso(since)
        for until, cases in stretches.items():
            for case_id, direction, occurred_at, outcome in contact_rows.calls_of_cases(
                db, cases, PHONE_CALL, after, until
            ):
                self.calls[case_id].append(_logged_call(direction, occurred_at, outcome))
        return {case_id: self.calls[case_id] for case_id in case_ids}

    def forget_before(self, since: datetime) -> None:
        """Drop the calls no later batch looks back at (one reading further back reads
        them again)."""
        for case_id, known in self.since.items():
            if known < since:
                self.calls[case_id] = [c for c in self.calls[case_id] if c.occurred_at >= since]
                self.since[case_id] = since


def _facts_for_flags(
    db: sqlite_utils.Database, rt: Runtime, held: Sequence[Candidate], memo: CallMemo
) -> dict[int, tuple[ContactFacts, tuple[LoggedContact, ...]]]:
    """facts_of_cases for these candidates, the log narrowed to what check_contact reads:
    the phone calls from the earliest call's look-back on."""
    if not held:
        return {}
    case_ids = sorted({c.case_id for c in held})
    cases = memo.borrowers(db, case_ids)
    borrowers = sorted({c["borrower_id"] for c in cases.values()})
    requests = do_not_contact_by_borrower(db, borrowers)
    consents = consents_by_borrower(db, borrowers)
    calls = [c.occurred_at for c in held if c.channel == PHONE_CALL]
    logs: dict[int, list[LoggedContact]] = {}
    if calls:
        policy = rt.compliance
        days = max(
            d
            for d in (policy.call_attempt_period_days, policy.call_pause_after_conversation_days, 0)
            if d is not None
        )
        # A second's margin: the stored text is compared, not the instant.
        since = (min(calls) - timedelta(days=days, seconds=1)).replace(microsecond=0)
        call_cases = sorted({c.case_id for c in held if c.channel == PHONE_CALL})
        logs = memo.calls_since(db, since, call_cases)
        memo.forget_before(since)
    found = {}
    for case_id, case in cases.items():
        borrower = case["borrower_id"]
        facts = ContactFacts(
            time_zone=case["time_zone"] or rt.settings["DEFAULT_TIME_ZONE"],
            do_not_contact=requests.get(borrower, ()),
            consents=consents.get(borrower, ()),
        )
        found[case_id] = (facts, tuple(logs.get(case_id, ())))
    return found


@lru_cache(maxsize=1 << 16)
def _logged_call(direction: str, occurred_at: str, outcome: str) -> LoggedContact:
    """A stored call as the rules read it; an import reads the same calls chunk after
    chunk, so each is parsed once."""
    return LoggedContact(PHONE_CALL, direction, parse_iso(occurred_at), outcome)


def _logged(candidate: Candidate) -> LoggedContact:
    return LoggedContact(
        candidate.channel, candidate.direction, candidate.occurred_at, candidate.outcome
    )


def plan_contact(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, case_id: int, body: dict[str, Any]
) -> dict[str, Any]:
    """Would this outbound contact be lawful at `at` (default now)? 200 when it would; a 422
    `contact_refused` naming the first rule it breaks, with all of them in `details`."""
    at: datetime = body.get("at") or caller.now
    channel = body["channel"]
    with transaction(db):
        case = case_rows.get_case(db, case_id)
        if case is None:
            raise NotFound("no such case")
        case_facts, log = facts_of_cases(db, rt, [case_id])[case_id]
    planned = LoggedContact(channel, "outbound", at, "planned")
    found = list(check_contact(planned, log, case_facts, rt.compliance))
    if channel == HOME_VISIT:
        found = _visit_rules(case, log, at, rt.compliance) + found
    if found:
        # The rule's code only: an error answer is not ledgered, so it carries no detail
        # (no time of a conversation, no date of a request).
        raise ContactRefused(
            f"refused by rule {found[0].code}",
            field="channel",
            rule=found[0].code,
            rules=[f.code for f in found],
        )
    return {"case_id": case_id, "channel": channel, "at": to_iso(at), "lawful": True}


def _visit_rules(
    case: dict[str, Any], log: Sequence[LoggedContact], at: datetime, policy: CompliancePolicy
) -> list[Flag]:
    found = [
        Flag(f"case_{reason}", f"The case takes no visits ({reason}).", {})
        for reason in case_stops_visits(
            case["status"], flags_set(case), dispute_stops_visits=policy.dispute_stops_visits
        )
    ]
    if policy.prior_notice_required and not any(t <= at for t in notice_times(log)):
        found.append(Flag(NO_PRIOR_NOTICE, "No notice on the log before the visit.", {}))
    return found
