"""What the server knows that reconciliation needs: the batch's visits, cases, prior records,
stored ids, complete blobs, ID comparisons; and the exact replays answered from the store."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import msgspec
import sqlite_utils

from server.clock import parse_iso, to_iso
from server.runtime import Caller, Runtime
from server.services.attachments import usable_blobs
from server.services.borrower_requests import consents_by_borrower
from server.services.contact_compliance import do_not_contact_by_borrower, rule_logs_of_cases
from server.services.disclosure import agent_may_see
from server.storage import accounts as account_rows
from server.storage import cases as case_rows
from server.storage import sync as sync_rows
from server.storage import visits as visit_rows
from server.storage.replays import (
    AGENT_ID,
    BODY,
    ID,
    KIND,
    OUTCOME,
    RAW_DIGEST,
    VISIT_ID,
    replay_rows,
)
from server.storage.sync import stored_json
from sync.canonical import CanonicalFormError, parse_aware_datetime
from sync.compliance import (
    ID_CHECK_LIMIT_REACHED,
    ID_NOT_COMPARED,
    CompliancePolicy,
    OutOfHoursConsent,
)
from sync.contact_rules import DoNotContact
from sync.contacts import CONTACT, LoggedContact
from sync.identity import credential_counts, plan_id_checks, typed_id_matches
from sync.reconcile import blobs_of, is_same_delivery
from sync.records import (
    AgentFacts,
    CaseFacts,
    IncomingRecord,
    RecordOutcome,
    ServerFacts,
    StoredRecord,
    VisitFacts,
)
from sync.visits import HOME_PURPOSES

# A record answered from the store: its id as stored, (kind, stored body), the visit it
# was recorded for, and the stored outcome's text (with the kind, what a replay's answer is
# computed from: sync_push, which reads it only when answering).
Replay = tuple[str, tuple[str, dict], int, str]


def known_replays(
    db: sqlite_utils.Database, agent_id: int, raws: list[Any], digests: list[str | None]
) -> dict[int, Replay]:
    """Records already stored exactly as sent by this agent, by batch index: answered from
    the store with no validation or reconciliation. Stored records never change, so no lock
    is needed."""
    ids = [str(raw.get("id")) for raw, digest in zip(raws, digests, strict=True) if digest]
    stored = replay_rows(db, ids)
    replays = {}
    for index, (raw, digest) in enumerate(zip(raws, digests, strict=True)):
        row = stored.get(str(raw.get("id"))) if digest else None
        if row and is_same_delivery(row[AGENT_ID], row[RAW_DIGEST], agent_id, digest):
            body = row[BODY]
            replays[index] = (
                row[ID],
                (row[KIND], stored_json(body) if body is not None else {}),
                row[VISIT_ID],
                row[OUTCOME],
            )
    return replays


# A stored outcome read straight into its dataclasses: a quarter of what reading it to a
# dict and rebuilding it costs, the bulk of answering a replayed record.
_OUTCOME = msgspec.json.Decoder(RecordOutcome)


def stored_outcome(text: str) -> RecordOutcome:
    """RecordOutcome.from_dict(stored_json(text)): the same outcome, read in one step; any
    text msgspec will not read as one (a value of an unexpected type) is read as before."""
    try:
        return _OUTCOME.decode(text)
    except msgspec.MsgspecError:
        return RecordOutcome.from_dict(stored_json(text))


def batch_visits(db: sqlite_utils.Database, incoming: list[IncomingRecord]) -> list[dict]:
    """The batch's visits with their case and borrower, read once per push."""
    return visit_rows.joined_by_ids(db, sorted({r.visit_id for r in incoming}))


def server_facts(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    incoming: list[IncomingRecord],
    typed: dict[str, str],
    device_time: datetime,
    joined: list[dict],
) -> ServerFacts:
    """Everything reconciliation needs to know about the batch's visits and ids; `joined`
    is batch_visits(db, incoming), read once by the caller's transaction."""
    principal = caller.principal
    assert principal is not None
    user = account_rows.get_user(db, principal.user_id) or {}
    agent = AgentFacts(id=principal.user_id, badge_number=user.get("badge_number") or "")
    visit_ids = sorted({r.visit_id for r in incoming})
    history = sync_rows.visit_history_agents(db, visit_ids)
    case_ids = sorted({p["case"]["id"] for p in joined})
    period = timedelta(days=rt.compliance.home_visit_period_days)
    since = reports_reach(incoming, period)
    prior = sync_rows.records_for_cases(db, case_ids, since, reports_end(incoming, period))
    # The borrowers' recorded out-of-hours consents (services/borrower_requests.py).
    borrower_ids = [p["borrower"]["id"] for p in joined]
    consents = consents_by_borrower(db, borrower_ids)
    # The part of the contact log and the do-not-contact requests the channel rules read.
    logs = rule_logs_of_cases(db, case_ids, calls_reach(incoming, rt.compliance))
    contacts = (logs, do_not_contact_by_borrower(db, borrower_ids))
    prior_of: dict[int, list[dict]] = {}
    for row in prior:
        prior_of.setdefault(row["case_id"], []).append(row)
    visits = {
        p["visit"]["id"]: _visit_facts(
            p, history, prior_of.get(p["case"]["id"], []), agent.id, consents, contacts
        )
        for p in joined
    }
    stored = {
        row["id"]: StoredRecord(row["agent_id"], row["digest"], stored_outcome(row["outcome"]))
        for row in sync_rows.stored_records(db, [r.id for r in incoming]).values()
    }
    blobs: set[str] = set()
    for record in incoming:
        try:
            blobs |= blobs_of(record)
        except ValueError:
            continue  # the engine answers malformed for it
    held = {p["visit"]["id"] for p in joined if agent_may_see(rt, p, agent.id, caller.now)}
    borrower_of = {p["visit"]["id"]: p["case"]["borrower_id"] for p in joined}
    id_matches, id_refusals = _compare_ids(
        db, rt, caller, incoming, typed, visits, stored, held, borrower_of
    )
    return ServerFacts(
        agent=agent,
        visits=visits,
        stored=stored,
        id_matches=id_matches,
        id_refusals=id_refusals,
        complete_blobs=usable_blobs(db, principal.user_id, blobs),
        device_sent_at=device_time,
    )


# Stored arrival texts are compared as text; this margin keeps the comparison on the safe
# side for any ISO 8601 text whatever its UTC offset (always under a day).
_TEXT_MARGIN = timedelta(days=2)


def reports_reach(incoming: list[IncomingRecord], period: timedelta) -> str | None:
    """How far back the batch's frequency rules can look: a stored home visit counts
    against an arrival only within `period` of it either way (sync.compliance.
    check_visit_frequency), so no report that arrived before the batch's earliest arrival
    minus the period can change an outcome; the margin is for comparing stored texts.
    The bound as stored text ("" near the year 1: all); None when the batch has no visit
    report with an arrival (nothing to read)."""
    arrivals = []
    for record in incoming:
        if record.kind != "visit_report":
            continue
        try:
            arrivals.append(parse_aware_datetime("arrived_at", record.body.get("arrived_at")))
        except CanonicalFormError:
            continue  # malformed: reconciliation refuses it before any rule
    if not arrivals:
        return None
    try:
        return to_iso(min(arrivals) - period - _TEXT_MARGIN)
    except OverflowError:
        return ""


def reports_end(incoming: list[IncomingRecord], period: timedelta) -> str | None:
    """The other end of reports_reach: no report that arrived later than the batch's
    latest arrival plus the period can change an outcome. None: no upper bound."""
    arrivals, unread = _moments(incoming, "visit_report", "arrived_at")
    if not arrivals or unread:
        return None
    try:
        return to_iso(max(arrivals) + period + _TEXT_MARGIN)
    except OverflowError:
        return None


def calls_reach(incoming: list[IncomingRecord], policy: CompliancePolicy) -> tuple[str, str] | None:
    """The stretch of the contact log's calls the batch's contact records can be judged
    against (sync.contact_rules: call frequency and the pause after a conversation look
    back within their periods, at calls before the contact), as stored text with the
    margin; None when the batch has no contact record with a time."""
    times, unread = _moments(incoming, CONTACT, "occurred_at")
    if unread:
        return "", _END_OF_TIME  # a time this cannot read: the rules' own parser decides
    if not times:
        return None
    back = timedelta(
        days=max(policy.call_attempt_period_days, policy.call_pause_after_conversation_days or 0)
    )
    try:
        since = to_iso(min(times) - back - _TEXT_MARGIN)
    except OverflowError:
        since = ""
    try:
        until = to_iso(max(times) + _TEXT_MARGIN)
    except OverflowError:
        until = _END_OF_TIME
    return since, until


_END_OF_TIME = "9999-12-31T23:59:59Z"


def _moments(incoming: list[IncomingRecord], kind: str, name: str) -> tuple[list[datetime], bool]:
    """The `name` times of the batch's records of one kind, and whether any could not be
    read (then the bound it would set is not taken: all is read)."""
    found, unread = [], False
    for record in incoming:
        if record.kind != kind:
            continue
        try:
            found.append(parse_aware_datetime(name, record.body.get(name)))
        except CanonicalFormError:
            unread = True
    return found, unread


def _visit_facts(
    parts: dict,
    history: dict[int, set[int]],
    prior: list[dict],
    agent_id: int,
    consents: dict[int, tuple[OutOfHoursConsent, ...]],
    contacts: tuple[dict[int, tuple[LoggedContact, ...]], dict[int, tuple[DoNotContact, ...]]],
) -> VisitFacts:
    visit, case, borrower = parts["visit"], parts["case"], parts["borrower"]
    home_times, agreements, credentials = [], set(), []
    own_home_times, own_agreements = [], set()
    for row in prior:  # the case's own records (server_facts groups them)
        own = row["agent_id"] == agent_id
        if row["kind"] == "visit_report":
            if row["purpose"] not in HOME_PURPOSES:
                continue
            home_times.append(parse_iso(row["arrived_at"]))
            if own:
                own_home_times.append(home_times[-1])
        elif row["kind"] == "agreement":
            agreements.add(row["id"])
            if own:
                own_agreements.add(row["id"])
        elif (
            own
            and row["visit_id"] == visit["id"]
            and credential_counts(
                row["kind"],
                stored_json(row["body"]),
                (f["code"] for f in stored_json(row["outcome"]).get("flags", [])),
            )
        ):
            credentials.append(parse_iso(row["recorded_at"]))
    return VisitFacts(
        id=visit["id"],
        case=CaseFacts(
            id=case["id"],
            time_zone=borrower["time_zone"],
            home_lat=borrower["home_lat"],
            home_lon=borrower["home_lon"],
            hardship=bool(case["hardship"]),
            do_not_visit=bool(case["do_not_visit"]),
            legal_hold=bool(case["legal_hold"]),
            consents=consents.get(borrower["id"], ()),
            home_visit_times=tuple(sorted(home_times)),
            agreement_ids=frozenset(agreements),
            own_home_visit_times=tuple(sorted(own_home_times)),
            own_agreement_ids=frozenset(own_agreements),
            contacts=contacts[0].get(case["id"], ()),
            do_not_contact=contacts[1].get(borrower["id"], ()),
        ),
        agent_id=visit["agent_id"],
        status=visit["status"],
        visit_date=date.fromisoformat(visit["visit_date"]),
        window_start=visit["window_start"],
        window_end=visit["window_end"],
        notice_given=bool(visit["notice_kind"]),
        notice_given_at=parse_iso(visit["notice_given_at"]) if visit["notice_given_at"] else None,
        home_visit=visit["purpose"] in HOME_PURPOSES,
        previous_agent_ids=frozenset(history.get(visit["id"], set())),
        credential_times=tuple(sorted(credentials)),
    )


def _compare_ids(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    incoming: list[IncomingRecord],
    typed: dict[str, str],
    visits: dict[int, VisitFacts],
    stored: dict[str, StoredRecord],
    card_held: set[int],
    borrower_of: dict[int, int],
) -> tuple[dict[str, bool | None], dict[str, str]]:
    """The server's side of the ID check (sync.identity): count the borrowers' checks in the
    period, plan, look up the numbers on file, compare; the typed characters go no further.
    (comparison by record id, reason by record id for the checks not compared)"""
    principal = caller.principal
    assert principal is not None
    asking = sorted(
        {borrower_of[r.visit_id] for r in incoming if r.id in typed and r.visit_id in card_held}
    )
    since = caller.now - timedelta(days=rt.settings["ID_CHECK_PERIOD_DAYS"])
    used = sync_rows.id_checks_for_borrowers(
        db, asking, to_iso(since), [ID_CHECK_LIMIT_REACHED, ID_NOT_COMPARED]
    )
    plan = plan_id_checks(
        incoming,
        typed,
        visits,
        stored,
        agent_id=principal.user_id,
        card_held=card_held,
        borrower_of=borrower_of,
        checks_used=used,
        limit=rt.settings["ID_CHECKS_PER_BORROWER"],
    )
    results: dict[str, bool | None] = {}
    for record_id, case_id in plan.compare.items():
        national_id = case_rows.national_id_for_case(db, case_id)
        results[record_id] = typed_id_matches(national_id, typed[record_id])
    return results, dict(plan.refused)
