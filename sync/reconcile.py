"""The decision for each pushed record: accepted, flagged, duplicate, rejected or retry.

Checks run in this order, and the first that answers wins:

1. same id already stored: same agent and digest -> `duplicate` (the original outcome
   replayed, even if the visit changed since); otherwise -> rejected `id_reused`.
2. envelope or body unreadable -> rejected `malformed`.
3. visit unknown, or never assigned to this agent -> rejected `not_yours`.
4. agreement whose recomputed content hash differs from the claimed one -> rejected `tampered`.
5. a referenced blob not complete -> `retry` `attachment_missing`.
6. otherwise stored: `flagged` with every flag raised, or `accepted` when there are none.

Field facts are never dropped for what changed on the server: a report for a cancelled or
reassigned visit is stored and flagged.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import lru_cache

from . import compliance as rules
from .compliance import CompliancePolicy, Flag, parse_hhmm
from .contact_rules import ContactFacts, check_contact, notice_times
from .contacts import CONTACT, FieldContact, LoggedContact, parse_contact
from .identity import credential_counts, is_agent_credential
from .records import (
    ATTACHMENT_MISSING,
    ID_REUSED,
    MALFORMED,
    NOT_YOURS,
    STORED_FLAGGED_MESSAGE,
    STORED_MESSAGE,
    TAMPERED,
    AgreementClaim,
    CaseFacts,
    IdConfirmation,
    IncomingRecord,
    MalformedRecord,
    RecordOutcome,
    ServerFacts,
    StoredRecord,
    VisitFacts,
    VisitReport,
    check_envelope,
    parse_agreement,
    parse_id_confirmation,
    parse_visit_report,
    referenced_blobs,
)

Parsed = VisitReport | IdConfirmation | AgreementClaim | FieldContact


@dataclass
class _Seen:
    """What earlier records of the same batch added, as the store will hold it after commit."""

    stored: dict[str, StoredRecord] = field(default_factory=dict)
    home_visits: defaultdict[int, list[datetime]] = field(default_factory=lambda: defaultdict(list))
    agreements: defaultdict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    credentials: defaultdict[int, list[datetime]] = field(default_factory=lambda: defaultdict(list))
    contacts: defaultdict[int, list[LoggedContact]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # The record last parsed and its parse, so that remembering it does not parse it again.
    last_parsed: tuple[IncomingRecord, Parsed] | None = None
    # Each case's stored home-visit times (all, the agent's own), sorted once per batch.
    case_home_times: dict[int, tuple[list[datetime], list[datetime]]] = field(default_factory=dict)

    def home_times(self, case: CaseFacts) -> tuple[list[datetime], list[datetime]]:
        """The case's stored home visits, all and the agent's own, in time order."""
        times = self.case_home_times.get(case.id)
        if times is None:
            times = (sorted(case.home_visit_times), sorted(case.own_home_visit_times))
            self.case_home_times[case.id] = times
        return times


_NO_BLOBS: frozenset[str] = frozenset()


def blobs_of(record: IncomingRecord) -> frozenset[str]:
    """referenced_blobs(record), with the common case answered without the call: a record
    other than an agreement with no attachment listed (an empty list, or none) references
    no blob and cannot be malformed for it. Every record of a push asks this up to three
    times (the facts, the decision, the store)."""
    if record.kind != "agreement" and not record.body.get("attachments"):
        return _NO_BLOBS
    return referenced_blobs(record)


def _within(times: list[datetime], moment: datetime, period: timedelta) -> list[datetime]:
    """The sorted `times` less than `period` away from `moment`, either side (the window
    check_visit_frequency counts in), found by bisection rather than by a scan."""
    low = bisect_right(times, moment - period)
    return times[low : bisect_left(times, moment + period, lo=low)]


def reconcile_record(
    record: IncomingRecord, facts: ServerFacts, policy: CompliancePolicy, now: datetime
) -> RecordOutcome:
    """The outcome of one record pushed on its own; `now` is the server's receive time."""
    _check_clock(now)
    return _decide(record, facts, _Seen(), policy, now)


def reconcile_batch(
    records: Sequence[IncomingRecord],
    facts: ServerFacts,
    policy: CompliancePolicy,
    now: datetime,
) -> list[RecordOutcome]:
    """One outcome per record, in the order given; later records see what earlier ones stored.

    Records are decided in a fixed order — agent credentials first, then by device_seq —
    so that shuffling a batch changes nothing, and a badge shown in the same batch counts
    for the report that follows it.
    """
    _check_clock(now)
    seen = _Seen()
    outcomes: dict[int, RecordOutcome] = {}
    order = sorted(range(len(records)), key=lambda i: _decision_order(records[i]))
    for index in order:
        record = records[index]
        outcome = _decide(record, facts, seen, policy, now)
        if outcome.stored:
            _remember(record, outcome, facts, seen)
        outcomes[index] = outcome
    return [outcomes[i] for i in range(len(records))]


def _decision_order(record: IncomingRecord) -> tuple[int, int, str]:
    seq = record.device_seq if isinstance(record.device_seq, int) else 0
    return (0 if is_agent_credential(record.kind, record.body) else 1, seq, str(record.id))


def _decide(
    record: IncomingRecord,
    facts: ServerFacts,
    seen: _Seen,
    policy: CompliancePolicy,
    now: datetime,
) -> RecordOutcome:
    stored = seen.stored.get(record.id) or facts.stored.get(record.id)
    if stored is not None:
        return _replay(record, stored, facts.agent.id)
    try:
        check_envelope(record)
    except MalformedRecord as error:
        return _rejected(record, MALFORMED, str(error))
    visit = facts.visits.get(record.visit_id)
    if visit is None or not visit.was_assigned_to(facts.agent.id):
        return _rejected(record, NOT_YOURS, "This visit was never assigned to you.")
    try:
        parsed = _parse(record, visit)
        seen.last_parsed = (record, parsed)
        blobs = blobs_of(record)
    except MalformedRecord as error:
        return _rejected(record, MALFORMED, str(error))
    if isinstance(parsed, AgreementClaim) and parsed.claimed_hash != parsed.content_hash:
        return RecordOutcome(
            record.id,
            "rejected",
            TAMPERED,
            "The content hash does not match the agreement's canonical form.",
            content_hash=parsed.content_hash,
        )
    missing = tuple(sorted(blobs - facts.complete_blobs))
    if missing:
        return RecordOutcome(
            record.id,
            "retry",
            ATTACHMENT_MISSING,
            "Upload every referenced attachment, then push this record again.",
            missing_blobs=missing,
        )
    flags = _flags(record, parsed, visit, facts, seen, policy, now)
    content_hash = parsed.content_hash if isinstance(parsed, AgreementClaim) else None
    if flags:
        return RecordOutcome(
            record.id,
            "flagged",
            None,
            STORED_FLAGGED_MESSAGE,
            flags=flags,
            content_hash=content_hash,
        )
    return RecordOutcome(record.id, "accepted", None, STORED_MESSAGE, content_hash=content_hash)


def is_same_delivery(
    stored_agent_id: int, stored_digest: str | None, agent_id: int, digest: str | None
) -> bool:
    """A record already stored is delivered again when the same agent sends the same
    content. Another agent's record never is: its flags are not this agent's to read."""
    return digest is not None and stored_agent_id == agent_id and stored_digest == digest


def _replay(record: IncomingRecord, stored: StoredRecord, agent_id: int) -> RecordOutcome:
    if not is_same_delivery(stored.agent_id, stored.digest, agent_id, record.digest):
        message = "This id is already stored with different content; the original is kept."
        return _rejected(record, ID_REUSED, message)
    return replay_outcome(record.id, stored.outcome)


REPLAYED_MESSAGE = "Already stored; the original outcome is replayed."


def replay_outcome(record_id: str, original: RecordOutcome) -> RecordOutcome:
    """The answer to a record delivered again with the same content: the original outcome."""
    return RecordOutcome(
        record_id,
        "duplicate",
        None,
        REPLAYED_MESSAGE,
        flags=original.flags,
        content_hash=original.content_hash,
        original_status=original.original_status or original.status,
    )


def _parse(record: IncomingRecord, visit: VisitFacts) -> Parsed:
    if record.kind == "visit_report":
        return parse_visit_report(record.body)
    if record.kind == "id_confirmation":
        return parse_id_confirmation(record.body)
    if record.kind == CONTACT:
        return parse_contact(record.body)
    claim = parse_agreement(record.body)
    if claim.agreement_id != record.id:
        raise MalformedRecord("body.agreement_id", "must equal the record id")
    if claim.visit_id != record.visit_id:
        raise MalformedRecord("body.visit_id", "must equal the record's visit_id")
    if claim.case_id != visit.case.id:
        raise MalformedRecord("body.case_id", "is not the case of this visit")
    return claim


def _flags(
    record: IncomingRecord,
    parsed: Parsed,
    visit: VisitFacts,
    facts: ServerFacts,
    seen: _Seen,
    policy: CompliancePolicy,
    now: datetime,
) -> tuple[Flag, ...]:
    case = visit.case
    found: list[Flag] = []
    if visit.status == "cancelled":
        found.append(Flag(rules.VISIT_CANCELLED, "The visit was cancelled.", {}))
    if visit.agent_id != facts.agent.id:
        found.append(Flag(rules.VISIT_REASSIGNED, "The visit is no longer assigned to you.", {}))
    # Do-not-visit is about the door; a call or message is not a visit.
    do_not_visit = case.do_not_visit and record.kind != CONTACT
    found += rules.check_case_flags(case.hardship, do_not_visit, case.legal_hold)
    found += rules.check_clock_skew(facts.device_sent_at, record.recorded_at, now, policy)
    found += rules.check_late_sync(record.recorded_at, now, policy)
    if isinstance(parsed, VisitReport):
        credentials = (*visit.credential_times, *seen.credentials[visit.id])
        found += _visit_report_flags(parsed, visit, credentials, seen, policy)
    elif isinstance(parsed, FieldContact):
        found += check_contact(
            _logged(parsed),
            (*case.contacts, *seen.contacts[case.id]),
            ContactFacts(case.time_zone, case.do_not_contact, case.consents),
            policy,
        )
    elif isinstance(parsed, IdConfirmation):
        if parsed.confirmation_kind == "borrower_identity":
            found += rules.check_borrower_identity(
                facts.id_matches.get(record.id), facts.id_refusals.get(record.id)
            )
        else:
            found += rules.check_badge(parsed.badge_number or "", facts.agent.badge_number)
    else:
        others = (case.agreement_ids | seen.agreements[case.id]) - {record.id}
        own = (case.own_agreement_ids | seen.agreements[case.id]) - {record.id}
        if others:
            found.append(
                Flag(
                    rules.COMPETING_AGREEMENT,
                    "Another agreement already exists for this case.",
                    {"other_agreements": len(others), "own_other_agreements": len(own)},
                )
            )
    return tuple(found)


def _visit_report_flags(
    report: VisitReport,
    visit: VisitFacts,
    credential_times: tuple[datetime, ...],
    seen: _Seen,
    policy: CompliancePolicy,
) -> list[Flag]:
    case = visit.case
    found = list(
        rules.check_visit_hours(
            report.arrived_at, report.departed_at, case.time_zone, case.consents, policy
        )
    )
    found += rules.check_planned_window(
        report.arrived_at,
        visit.visit_date,
        _window(visit.window_start),
        _window(visit.window_end),
        case.time_zone,
        policy,
    )
    if visit.home_visit:
        # Everything stored earlier in the batch is the pushing agent's own. Of the stored
        # visits, only those within the period can count: the rule is handed just those.
        batch = seen.home_visits[case.id]
        stored_others, stored_own = seen.home_times(case)
        period = timedelta(days=policy.home_visit_period_days)
        others = (*_within(stored_others, report.arrived_at, period), *batch)
        own = (*_within(stored_own, report.arrived_at, period), *batch)
        found += rules.check_visit_frequency(report.arrived_at, others, policy, own)
        found += rules.check_location(report.fix, case.home_lat, case.home_lon, policy)
        # A notice on the contact log before the arrival is a prior notice too.
        if not any(t <= report.arrived_at for t in notice_times(case.contacts)):
            found += rules.check_prior_notice(
                report.arrived_at, visit.notice_given, visit.notice_given_at, policy
            )
    found += rules.check_credential_first(report.contact_at, credential_times, policy)
    found += rules.check_third_party(report.debt_discussed_with_third_party)
    return found


def _remember(
    record: IncomingRecord, outcome: RecordOutcome, facts: ServerFacts, seen: _Seen
) -> None:
    """Note what a stored record adds, for the records after it in the batch."""
    seen.stored[record.id] = StoredRecord(facts.agent.id, record.digest, outcome)
    visit = facts.visits[record.visit_id]
    last = seen.last_parsed
    parsed = last[1] if last is not None and last[0] is record else None
    if record.kind == "visit_report" and visit.home_visit:
        report = parsed if isinstance(parsed, VisitReport) else parse_visit_report(record.body)
        seen.home_visits[visit.case.id].append(report.arrived_at)
    elif record.kind == "agreement":
        seen.agreements[visit.case.id].add(record.id)
    elif record.kind == CONTACT:
        contact = parsed if isinstance(parsed, FieldContact) else parse_contact(record.body)
        seen.contacts[visit.case.id].append(_logged(contact))
    elif credential_counts(record.kind, record.body, (f.code for f in outcome.flags)):
        seen.credentials[visit.id].append(record.recorded_at)


def _logged(contact: FieldContact) -> LoggedContact:
    return LoggedContact(contact.channel, contact.direction, contact.occurred_at, contact.outcome)


def _rejected(record: IncomingRecord, reason: str, message: str) -> RecordOutcome:
    return RecordOutcome(str(record.id), "rejected", reason, message)


@lru_cache(maxsize=256)
def _window(value: str | None) -> time | None:
    return parse_hhmm(value) if value is not None else None


def _check_clock(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
