"""Reconciliation: every outcome path, every flag through a push, and batch behaviour."""

import hashlib
import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.canonical import agreement_content_hash
from sync.compliance import OutOfHoursConsent, profile
from sync.reconcile import _within, reconcile_batch, reconcile_record
from sync.records import (
    AgentFacts,
    CaseFacts,
    IncomingRecord,
    RecordOutcome,
    ServerFacts,
    StoredRecord,
    VisitFacts,
)

CST = timezone(timedelta(hours=8))
POLICY = profile("default")
HOME = (31.2304, 121.4737)
AGENT = AgentFacts(id=7, badge_number="SH-0042")
BORROWER_SIG = hashlib.sha256(b"borrower signature").hexdigest()
AGENT_SIG = hashlib.sha256(b"agent signature").hexdigest()
PHOTO = hashlib.sha256(b"door photo").hexdigest()
REPORT_ID = "00000000-0000-4000-8000-000000000001"
CREDENTIAL_ID = "00000000-0000-4000-8000-000000000002"
IDENTITY_ID = "00000000-0000-4000-8000-000000000003"
AGREEMENT_ID = "00000000-0000-4000-8000-000000000004"
OTHER_AGREEMENT_ID = "00000000-0000-4000-8000-000000000005"


def local(hour, minute=0, day=14):
    return datetime(2025, 3, day, hour, minute, tzinfo=CST)


NOW = local(18)


def case(**changes):
    base = CaseFacts(id=40, time_zone="Asia/Shanghai", home_lat=HOME[0], home_lon=HOME[1])
    return replace(base, **changes)


def visit(**changes):
    base = VisitFacts(
        id=100,
        case=case(),
        agent_id=AGENT.id,
        status="planned",
        visit_date=date(2025, 3, 14),
        window_start="10:00",
        window_end="11:00",
        notice_given=True,
        notice_given_at=local(9, day=13),
        previous_agent_ids=frozenset({AGENT.id}),
        credential_times=(local(10, 4),),
    )
    return replace(base, **changes)


def facts(visit_facts=None, **changes):
    visit_facts = visit_facts or visit()
    base = ServerFacts(
        agent=AGENT,
        visits={visit_facts.id: visit_facts},
        complete_blobs=frozenset({BORROWER_SIG, AGENT_SIG, PHOTO}),
        device_sent_at=NOW,
        id_matches={IDENTITY_ID: True},
    )
    return replace(base, **changes)


def record(kind, body, *, record_id, recorded_at=None, device_seq=1, visit_id=100):
    return IncomingRecord.create(
        id=record_id,
        kind=kind,
        visit_id=visit_id,
        device_seq=device_seq,
        recorded_at=recorded_at or local(10, 40),
        body=body,
    )


def report(record_id=REPORT_ID, device_seq=3, recorded_at=None, **changes):
    body = {
        "arrived_at": local(10, 5).isoformat(),
        "departed_at": local(10, 30).isoformat(),
        "outcome": "promise_to_pay",
        "location": {"lat": HOME[0] + 0.0005, "lon": HOME[1], "accuracy_m": 15},
        "third_party_present": False,
        "debt_discussed_with_third_party": False,
        "attachments": [PHOTO],
        "notes": "Borrower will pay on Friday.",
    }
    body.update(changes)
    body = {k: v for k, v in body.items() if v is not ...}
    return record(
        "visit_report", body, record_id=record_id, device_seq=device_seq, recorded_at=recorded_at
    )


def credential(badge="SH-0042", record_id=CREDENTIAL_ID, recorded_at=None, device_seq=2):
    body = {
        "confirmation_kind": "agent_credential",
        "badge_number": badge,
        "borrower_acknowledged": True,
    }
    return record(
        "id_confirmation",
        body,
        record_id=record_id,
        device_seq=device_seq,
        recorded_at=recorded_at or local(10, 4),
    )


def identity(record_id=IDENTITY_ID):
    return record(
        "id_confirmation",
        {"confirmation_kind": "borrower_identity"},
        record_id=record_id,
        recorded_at=local(10, 6),
    )


def agreement_body(agreement_id=AGREEMENT_ID, **changes):
    body = {
        "agreement_id": agreement_id,
        "case_id": 40,
        "visit_id": 100,
        "currency": "CNY",
        "total_amount": "3000.00",
        "installments": [
            {"due_date": "2025-04-15", "amount": "1500.00"},
            {"due_date": "2025-05-15", "amount": "1500.00"},
        ],
        "template_id": "repayment-plan-zh",
        "template_version": 3,
        "borrower_signature_sha256": BORROWER_SIG,
        "agent_signature_sha256": AGENT_SIG,
        "signed_at": local(10, 25).isoformat(),
        "signed_lat": "31.230400",
        "signed_lon": "121.473700",
    }
    body["content_hash"] = agreement_content_hash(body)
    body.update(changes)
    return body


def agreement(agreement_id=AGREEMENT_ID, device_seq=4, **changes):
    return record(
        "agreement",
        agreement_body(agreement_id, **changes),
        record_id=agreement_id,
        device_seq=device_seq,
        recorded_at=local(10, 26),
    )


def late_evening_report():
    """A report of a visit at 21:30 the evening before the push."""
    return report(
        arrived_at=local(21, 30, day=13).isoformat(),
        departed_at=local(21, 45, day=13).isoformat(),
        recorded_at=local(21, 50, day=13),
    )


def evening_visit(**changes):
    """The visit of late_evening_report: no planned window, badge shown on arrival."""
    return visit(
        window_start=None, window_end=None, credential_times=(local(21, 29, day=13),), **changes
    )


def codes(outcome):
    return [flag.code for flag in outcome.flags]


# --- the clean path -----------------------------------------------------------------------


@pytest.mark.parametrize("make", [report, credential, identity, agreement])
def test_clean_records_are_accepted(make):
    outcome = reconcile_record(make(), facts(), POLICY, NOW)
    assert (outcome.status, outcome.reason, outcome.flags) == ("accepted", None, ())
    assert outcome.stored


def test_accepted_agreement_carries_the_recomputed_hash():
    outcome = reconcile_record(agreement(), facts(), POLICY, NOW)
    assert outcome.content_hash == agreement_body()["content_hash"]


# --- every flag through a push: (record, facts) -> exactly these flags --------------------

FLAG_CASES = {
    "outside_visit_hours": (
        late_evening_report,
        lambda: facts(evening_visit()),
        ["outside_visit_hours"],
    ),
    "consent honoured": (
        late_evening_report,
        lambda: facts(evening_visit(case=case(consents=(OutOfHoursConsent(local(9, day=1)),)))),
        [],
    ),
    "consent_expired": (
        late_evening_report,
        lambda: facts(
            evening_visit(
                case=case(consents=(OutOfHoursConsent(local(9, day=1), local(9, day=10)),))
            )
        ),
        ["outside_visit_hours", "consent_expired"],
    ),
    "outside_planned_window": (
        lambda: report(
            arrived_at=local(14).isoformat(),
            departed_at=local(14, 20).isoformat(),
            recorded_at=local(14, 30),
        ),
        lambda: facts(visit(credential_times=(local(13, 59),))),
        ["outside_planned_window"],
    ),
    "visit_frequency_exceeded": (
        report,
        lambda: facts(visit(case=case(home_visit_times=(local(10, day=10),)))),
        ["visit_frequency_exceeded"],
    ),
    "location_mismatch": (
        lambda: report(location={"lat": HOME[0] + 0.01, "lon": HOME[1], "accuracy_m": 20}),
        facts,
        ["location_mismatch"],
    ),
    "location_unavailable": (lambda: report(location=None), facts, ["location_unavailable"]),
    "no_prior_notice": (
        report,
        lambda: facts(visit(notice_given=False, notice_given_at=None)),
        ["no_prior_notice"],
    ),
    "not a home visit: no frequency, location or notice rules": (
        lambda: report(location=None),
        lambda: facts(
            visit(
                home_visit=False,
                notice_given=False,
                notice_given_at=None,
                case=case(home_visit_times=(local(10, day=13),)),
            )
        ),
        [],
    ),
    "credential_not_shown_first": (
        report,
        lambda: facts(visit(credential_times=())),
        ["credential_not_shown_first"],
    ),
    "credential shown late": (
        report,
        lambda: facts(visit(credential_times=(local(10, 20),))),
        ["credential_not_shown_first"],
    ),
    "nobody home: no credential needed": (
        lambda: report(outcome="not_home"),
        lambda: facts(visit(credential_times=())),
        [],
    ),
    "third_party_debt_discussed": (
        lambda: report(third_party_present=True, debt_discussed_with_third_party=True),
        facts,
        ["third_party_debt_discussed"],
    ),
    "third party present, debt not discussed": (
        lambda: report(third_party_present=True),
        facts,
        [],
    ),
    "case_do_not_visit": (
        report,
        lambda: facts(visit(case=case(do_not_visit=True))),
        ["case_do_not_visit"],
    ),
    "case_hardship on an agreement": (
        agreement,
        lambda: facts(visit(case=case(hardship=True))),
        ["case_hardship"],
    ),
    "case_legal_hold on an id confirmation": (
        identity,
        lambda: facts(visit(case=case(legal_hold=True))),
        ["case_legal_hold"],
    ),
    "clock_skew": (
        credential,
        lambda: facts(device_sent_at=NOW - timedelta(minutes=10)),
        ["clock_skew"],
    ),
    "late_sync": (
        lambda: credential(recorded_at=NOW - timedelta(hours=25)),
        facts,
        ["late_sync"],
    ),
    "visit_cancelled": (report, lambda: facts(visit(status="cancelled")), ["visit_cancelled"]),
    "visit_reassigned": (
        report,
        lambda: facts(visit(agent_id=8, previous_agent_ids=frozenset({7, 8}))),
        ["visit_reassigned"],
    ),
    "visit unassigned after it was ours": (
        identity,
        lambda: facts(visit(agent_id=None)),
        ["visit_reassigned"],
    ),
    "competing_agreement": (
        agreement,
        lambda: facts(visit(case=case(agreement_ids=frozenset({OTHER_AGREEMENT_ID})))),
        ["competing_agreement"],
    ),
    "own id among the case's agreements is not competing": (
        agreement,
        lambda: facts(visit(case=case(agreement_ids=frozenset({AGREEMENT_ID})))),
        [],
    ),
    "id_mismatch": (identity, lambda: facts(id_matches={IDENTITY_ID: False}), ["id_mismatch"]),
    "id_unverifiable": (
        identity,
        lambda: facts(id_matches={IDENTITY_ID: None}),
        ["id_unverifiable"],
    ),
    "badge_mismatch": (lambda: credential(badge="SH-9999"), facts, ["badge_mismatch"]),
}


@pytest.mark.parametrize(
    ("make_record", "make_facts", "expected"), FLAG_CASES.values(), ids=FLAG_CASES.keys()
)
def test_flags_through_a_push(make_record, make_facts, expected):
    outcome = reconcile_record(make_record(), make_facts(), POLICY, NOW)
    assert codes(outcome) == expected
    assert outcome.status == ("flagged" if expected else "accepted")
    assert outcome.stored


def test_cancelled_and_reassigned_report_keeps_every_other_flag():
    gone = visit(
        status="cancelled",
        agent_id=8,
        previous_agent_ids=frozenset({7, 8}),
        notice_given=False,
        notice_given_at=None,
    )
    outcome = reconcile_record(report(), facts(gone), POLICY, NOW)
    assert outcome.status == "flagged"
    assert codes(outcome) == ["visit_cancelled", "visit_reassigned", "no_prior_notice"]


# --- rejection and retry paths ------------------------------------------------------------

REJECT_CASES = {
    "visit unknown": (report, lambda: facts(visits={}), "not_yours"),
    "visit never ours": (
        report,
        lambda: facts(visit(agent_id=8, previous_agent_ids=frozenset({8}))),
        "not_yours",
    ),
    "tampered agreement": (
        lambda: agreement(
            total_amount="3000.00",
            installments=[
                {"due_date": "2025-04-15", "amount": "1000.00"},
                {"due_date": "2025-05-15", "amount": "2000.00"},
            ],
        ),
        facts,
        "tampered",
    ),
    "claimed hash of another agreement": (
        lambda: agreement(content_hash="0" * 64),
        facts,
        "tampered",
    ),
    "bad record id": (
        lambda: record("visit_report", {}, record_id="not-a-uuid"),
        facts,
        "malformed",
    ),
    "unknown kind": (
        lambda: record("photo", {}, record_id=REPORT_ID),
        facts,
        "malformed",
    ),
    "naive recorded_at": (
        lambda: record(
            "visit_report", {}, record_id=REPORT_ID, recorded_at=datetime(2025, 3, 14, 10)
        ),
        facts,
        "malformed",
    ),
    "report without arrival": (lambda: report(arrived_at=...), facts, "malformed"),
    "departure before arrival": (
        lambda: report(departed_at=local(9).isoformat()),
        facts,
        "malformed",
    ),
    "location off the globe": (
        lambda: report(location={"lat": 95, "lon": 0}),
        facts,
        "malformed",
    ),
    "unknown confirmation kind": (
        lambda: record("id_confirmation", {"confirmation_kind": "selfie"}, record_id=IDENTITY_ID),
        facts,
        "malformed",
    ),
    "credential without badge": (
        lambda: record(
            "id_confirmation", {"confirmation_kind": "agent_credential"}, record_id=CREDENTIAL_ID
        ),
        facts,
        "malformed",
    ),
    "agreement id is not the record id": (
        lambda: record("agreement", agreement_body(OTHER_AGREEMENT_ID), record_id=AGREEMENT_ID),
        facts,
        "malformed",
    ),
    "agreement for another case": (
        lambda: agreement(
            **{"case_id": 41, "content_hash": agreement_content_hash(agreement_body(case_id=41))}
        ),
        facts,
        "malformed",
    ),
    "agreement total is not the installments' sum": (
        lambda: agreement(
            **{
                "total_amount": "2999.00",
                "content_hash": agreement_content_hash(agreement_body(total_amount="2999.00")),
            }
        ),
        facts,
        "malformed",
    ),
    "agreement with a float amount": (lambda: agreement(total_amount=3000.0), facts, "malformed"),
    "agreement without a signature": (
        lambda: agreement(agent_signature_sha256=None),
        facts,
        "malformed",
    ),
    "attachments not a list": (lambda: report(attachments=PHOTO), facts, "malformed"),
}


@pytest.mark.parametrize(
    ("make_record", "make_facts", "reason"), REJECT_CASES.values(), ids=REJECT_CASES.keys()
)
def test_rejections(make_record, make_facts, reason):
    outcome = reconcile_record(make_record(), make_facts(), POLICY, NOW)
    assert (outcome.status, outcome.reason) == ("rejected", reason)
    assert not outcome.stored and outcome.flags == ()
    assert outcome.message


@pytest.mark.parametrize(
    ("make_record", "missing"),
    [(report, [PHOTO]), (agreement, sorted([BORROWER_SIG, AGENT_SIG]))],
)
def test_missing_attachment_asks_for_retry(make_record, missing):
    the_facts = facts(complete_blobs=frozenset())
    outcome = reconcile_record(make_record(), the_facts, POLICY, NOW)
    assert (outcome.status, outcome.reason) == ("retry", "attachment_missing")
    assert list(outcome.missing_blobs) == missing
    assert not outcome.stored


def test_retry_turns_into_accepted_once_blobs_are_complete():
    incomplete = facts(complete_blobs=frozenset({BORROWER_SIG}))
    assert reconcile_record(agreement(), incomplete, POLICY, NOW).status == "retry"
    assert reconcile_record(agreement(), facts(), POLICY, NOW).status == "accepted"


def test_tampering_is_reported_before_missing_blobs():
    outcome = reconcile_record(
        agreement(content_hash="0" * 64), facts(complete_blobs=frozenset()), POLICY, NOW
    )
    assert outcome.reason == "tampered"


# --- replays -------------------------------------------------------------------------------


def _stored(incoming, outcome, agent_id=AGENT.id):
    return {incoming.id: StoredRecord(agent_id, incoming.digest, outcome)}


def test_same_id_same_content_replays_the_original_outcome():
    first = reconcile_record(report(), facts(visit(credential_times=())), POLICY, NOW)
    assert codes(first) == ["credential_not_shown_first"]
    # Later the visit was reassigned; the replay still answers what the first push got.
    later = facts(
        visit(agent_id=8, previous_agent_ids=frozenset({7, 8})), stored=_stored(report(), first)
    )
    again = reconcile_record(report(), later, POLICY, NOW + timedelta(days=2))
    assert again.status == "duplicate" and again.original_status == "flagged"
    assert again.flags == first.flags and not again.stored


def test_replayed_agreement_keeps_its_content_hash():
    first = reconcile_record(agreement(), facts(), POLICY, NOW)
    again = reconcile_record(agreement(), facts(stored=_stored(agreement(), first)), POLICY, NOW)
    assert (again.status, again.original_status) == ("duplicate", "accepted")
    assert again.content_hash == first.content_hash


@pytest.mark.parametrize(
    ("pushed", "stored_by"),
    [
        (lambda: report(notes="edited after the fact"), AGENT.id),
        (lambda: report(recorded_at=local(10, 41)), AGENT.id),
        (report, 8),  # another agent's record is never replayed to this one
    ],
)
def test_same_id_different_content_or_owner_is_id_reused(pushed, stored_by):
    original = RecordOutcome(REPORT_ID, "accepted", message="Stored.")
    the_facts = facts(stored=_stored(report(), original, agent_id=stored_by))
    outcome = reconcile_record(pushed(), the_facts, POLICY, NOW)
    assert (outcome.status, outcome.reason) == ("rejected", "id_reused")


def test_device_seq_is_not_content():
    assert report(device_seq=3).digest == report(device_seq=9).digest


def test_uppercase_ids_are_canonicalised():
    assert report(record_id=REPORT_ID.upper()).id == REPORT_ID


def test_typed_id_characters_never_enter_a_record():
    with pytest.raises(ValueError, match="id_last6"):
        record(
            "id_confirmation",
            {"confirmation_kind": "borrower_identity", "id_last6": "12345X"},
            record_id=IDENTITY_ID,
        )


# --- batches --------------------------------------------------------------------------------


def day_batch():
    return [credential(), identity(), report(), agreement()]


def test_batch_outcomes_follow_the_input_order():
    outcomes = reconcile_batch(day_batch(), facts(visit(credential_times=())), POLICY, NOW)
    assert [o.record_id for o in outcomes] == [r.id for r in day_batch()]
    assert [o.status for o in outcomes] == ["accepted"] * 4


def test_credential_later_in_the_same_batch_counts_for_the_report():
    batch = [report(device_seq=1), credential(device_seq=2)]
    outcomes = reconcile_batch(batch, facts(visit(credential_times=())), POLICY, NOW)
    assert [o.status for o in outcomes] == ["accepted", "accepted"]


def test_mismatched_badge_in_the_batch_does_not_count_as_shown():
    batch = [credential(badge="SH-9999"), report()]
    outcomes = reconcile_batch(batch, facts(visit(credential_times=())), POLICY, NOW)
    assert [codes(o) for o in outcomes] == [["badge_mismatch"], ["credential_not_shown_first"]]


def test_second_agreement_in_one_batch_competes():
    batch = [agreement(OTHER_AGREEMENT_ID, device_seq=5), agreement(AGREEMENT_ID, device_seq=4)]
    outcomes = reconcile_batch(batch, facts(), POLICY, NOW)
    assert [codes(o) for o in outcomes] == [["competing_agreement"], []]


def test_second_home_visit_in_one_batch_exceeds_frequency():
    second_id = "00000000-0000-4000-8000-000000000006"
    batch = [
        report(),
        report(
            record_id=second_id, device_seq=9, arrived_at=local(10, 50).isoformat(), departed_at=...
        ),
    ]
    outcomes = reconcile_batch(batch, facts(), POLICY, NOW)
    assert [codes(o) for o in outcomes] == [[], ["visit_frequency_exceeded"]]


def test_retried_record_does_not_count_for_later_ones():
    second_id = "00000000-0000-4000-8000-000000000006"
    batch = [
        report(attachments=[hashlib.sha256(b"not uploaded").hexdigest()]),
        report(
            record_id=second_id, device_seq=9, arrived_at=local(10, 50).isoformat(), departed_at=...
        ),
    ]
    outcomes = reconcile_batch(batch, facts(), POLICY, NOW)
    assert [o.status for o in outcomes] == ["retry", "accepted"]


@pytest.mark.parametrize(
    ("second", "status", "reason"),
    [(report, "duplicate", None), (lambda: report(notes="changed"), "rejected", "id_reused")],
)
def test_same_id_twice_in_one_batch(second, status, reason):
    outcomes = reconcile_batch([report(), second()], facts(), POLICY, NOW)
    assert outcomes[0].status == "accepted"
    assert (outcomes[1].status, outcomes[1].reason) == (status, reason)


def test_shuffled_batch_gives_the_same_outcomes():
    second_id = "00000000-0000-4000-8000-000000000006"
    batch = [
        *day_batch(),
        agreement(OTHER_AGREEMENT_ID, device_seq=8),
        report(
            record_id=second_id, device_seq=9, departed_at=..., arrived_at=local(10, 50).isoformat()
        ),
    ]
    the_facts = facts(visit(credential_times=()))
    expected = {o.record_id: o for o in reconcile_batch(batch, the_facts, POLICY, NOW)}
    rng = random.Random(3)
    for _ in range(20):
        shuffled = batch[:]
        rng.shuffle(shuffled)
        got = {o.record_id: o for o in reconcile_batch(shuffled, the_facts, POLICY, NOW)}
        assert got == expected


def test_replaying_a_stored_batch_changes_nothing():
    the_facts = facts()
    first = reconcile_batch(day_batch(), the_facts, POLICY, NOW)
    stored = {}
    for incoming, outcome in zip(day_batch(), first, strict=True):
        stored.update(_stored(incoming, outcome))
    again = reconcile_batch(day_batch(), replace(the_facts, stored=stored), POLICY, NOW)
    assert [o.status for o in again] == ["duplicate"] * 4
    assert [o.original_status for o in again] == [o.status for o in first]
    assert [o.flags for o in again] == [o.flags for o in first]


def test_outcome_round_trips_through_its_wire_form():
    outcome = reconcile_record(report(), facts(visit(status="cancelled")), POLICY, NOW)
    assert RecordOutcome.from_dict(outcome.to_dict()) == outcome
    assert outcome.to_dict()["flags"][0]["code"] == "visit_cancelled"


def test_clock_must_be_aware():
    with pytest.raises(ValueError):
        reconcile_record(report(), facts(), POLICY, datetime(2025, 3, 14, 18))


def test_utc_clock_and_local_times_mix():
    outcome = reconcile_record(
        report(), facts(device_sent_at=NOW.astimezone(UTC)), POLICY, NOW.astimezone(UTC)
    )
    assert outcome.status == "accepted"


@given(
    st.lists(st.integers(min_value=0, max_value=400), max_size=40),
    st.integers(min_value=0, max_value=400),
    st.integers(min_value=1, max_value=60),
)
def test_frequency_candidates_by_bisection_are_the_scan(hours, at, period_days):
    """The stored visits handed to the frequency rule are exactly those it would count."""
    base = datetime(2026, 11, 1, tzinfo=UTC)
    times = sorted(base + timedelta(hours=h * 6) for h in hours)
    moment, period = base + timedelta(hours=at * 6), timedelta(days=period_days)
    assert _within(times, moment, period) == [t for t in times if abs(t - moment) < period]
