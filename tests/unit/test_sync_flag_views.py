"""What an agent is told of a flag: the agent views, and the property that an agent's answer
depends on nothing its current card does not disclose."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.domain.disclosure import CATALOGUE, build_policy
from server.services.sync_push import outcome_out
from sync import compliance as rules
from sync.canonical import agreement_content_hash
from sync.compliance import Flag, profile
from sync.flag_views import (
    AGENT_VIEWS,
    CARD_VISIT_FACTS,
    ID_CHECK,
    IMPLIED_BY,
    NEVER_DISCLOSED,
    VISIT_ASSIGNED,
    VISIT_PLAN,
    agent_flag,
    agent_outcome,
    agent_outcome_dict,
    card_facts,
)
from sync.reconcile import reconcile_batch
from sync.records import (
    AgentFacts,
    CaseFacts,
    IncomingRecord,
    RecordOutcome,
    ServerFacts,
    StoredRecord,
    VisitFacts,
)
from sync.visits import HOME_PURPOSES, VISIT_OUTCOMES, VISIT_PURPOSES

SHANGHAI = ZoneInfo("Asia/Shanghai")
POLICY = profile("default")
AGENT = AgentFacts(id=7, badge_number="SH-0042")
OTHER_AGENT = 8
NOW = datetime(2025, 3, 14, 18, 0, tzinfo=SHANGHAI)
DAY = date(2025, 3, 14)
BORROWER_SIG = hashlib.sha256(b"borrower signature").hexdigest()
AGENT_SIG = hashlib.sha256(b"agent signature").hexdigest()
CREDENTIAL_ID = "00000000-0000-4000-8000-000000000001"
REPORT_ID = "00000000-0000-4000-8000-000000000002"
IDENTITY_ID = "00000000-0000-4000-8000-000000000003"
AGREEMENT_ID = "00000000-0000-4000-8000-000000000004"
OWN_AGREEMENTS = ("00000000-0000-4000-8000-0000000000a1", "00000000-0000-4000-8000-0000000000a2")
OTHER_AGREEMENTS = ("00000000-0000-4000-8000-0000000000b1", "00000000-0000-4000-8000-0000000000b2")
ALL_CODES = frozenset(
    value
    for name, value in vars(rules).items()
    if name.isupper() and isinstance(value, str) and value.islower() and "_" in value
)


# --- the views themselves ----------------------------------------------------------------


def test_every_flag_code_has_an_agent_view_and_no_view_is_for_an_unknown_code():
    assert len(ALL_CODES) == 22
    assert set(AGENT_VIEWS) == ALL_CODES


def test_every_fact_a_view_names_is_a_card_field_or_a_named_visit_fact():
    known = set(CATALOGUE) | CARD_VISIT_FACTS | NEVER_DISCLOSED
    for code, view in AGENT_VIEWS.items():
        named = set(view.needs).union(*view.details.values())
        assert named <= known, (code, named - known)
    assert not NEVER_DISCLOSED & set(CATALOGUE)
    for implied, by in IMPLIED_BY.items():
        assert {implied, *by} <= set(CATALOGUE)


def test_agent_messages_are_fixed_texts_without_numbers():
    for code, view in AGENT_VIEWS.items():
        assert view.message and not any(ch.isdigit() for ch in view.message), code
        assert "{" not in view.message


def test_an_unknown_code_is_withheld_entirely():
    flag = Flag("brand_new_rule", "Raised 12 m from the home.", {"distance_m": 12.0})
    everything = frozenset(CATALOGUE) | CARD_VISIT_FACTS
    assert agent_flag(flag, everything) is None


def test_location_mismatch_never_says_how_far_even_with_the_home_on_the_card():
    flag = Flag(
        rules.LOCATION_MISMATCH,
        "Report made 734 m from the home address.",
        {"distance_m": 734.2, "allowed_m": 515.0, "accuracy_m": 15.0},
    )
    held = card_facts(["home_geo", "home_address"], may_hold_card=True, assigned=True)
    seen = agent_flag(flag, held)
    assert seen == Flag(
        rules.LOCATION_MISMATCH,
        "Report made outside the geofence of the home address.",
        {"allowed_m": 515.0, "accuracy_m": 15.0},
    )
    assert agent_flag(flag, card_facts(["home_geo"], may_hold_card=False, assigned=True)) is None
    assert agent_flag(flag, card_facts(["work_address"], True, True)) is None


def test_frequency_flag_rests_on_the_agents_own_visits_and_lists_no_times():
    others = {
        "visits_in_period": 2,
        "allowed": 1,
        "period_days": 7,
        "other_visits": ["2025-03-12T10:05:00+08:00"],
        "own_visits_in_period": 1,
    }
    held = card_facts(["home_geo"], True, True)
    assert agent_flag(Flag(rules.VISIT_FREQUENCY_EXCEEDED, "m", others), held) is None
    own = {**others, "own_visits_in_period": 2}
    seen = agent_flag(Flag(rules.VISIT_FREQUENCY_EXCEEDED, "m", own), held)
    assert seen is not None
    assert seen.details == {"allowed": 1, "period_days": 7, "own_visits_in_period": 2}
    # A flag stored before the own count existed is not shown: default deny.
    legacy = {k: v for k, v in others.items() if k != "own_visits_in_period"}
    assert agent_flag(Flag(rules.VISIT_FREQUENCY_EXCEEDED, "m", legacy), held) is None


def test_card_facts_come_from_the_policy_fields_only_while_the_card_may_be_held():
    fields = build_policy().allowed_fields("agent", "home_visit")
    held = card_facts(fields, may_hold_card=True, assigned=True)
    assert {"home_geo", "home_address", "time_zone", VISIT_PLAN, ID_CHECK} <= held
    assert "case_flags" not in held and "date_of_birth" not in held
    assert card_facts(fields, may_hold_card=False, assigned=True) == {VISIT_ASSIGNED}
    assert card_facts(fields, may_hold_card=False, assigned=False) == frozenset()
    workplace = build_policy().allowed_fields("agent", "workplace_visit")
    assert "time_zone" not in card_facts(workplace, True, True)


def test_a_record_with_only_withheld_flags_is_answered_accepted_and_its_replay_too():
    location = Flag(rules.LOCATION_MISMATCH, "Report made 3 m from the home.", {"distance_m": 3})
    stored = RecordOutcome(
        REPORT_ID, "flagged", None, "Stored; needs compliance review.", (location,)
    )
    seen = agent_outcome(stored, frozenset())
    assert (seen.status, seen.message, seen.flags) == ("accepted", "Stored.", ())
    replay = RecordOutcome(
        REPORT_ID, "duplicate", None, "m", (location,), original_status="flagged"
    )
    seen = agent_outcome(replay, frozenset())
    assert (seen.status, seen.original_status, seen.flags) == ("duplicate", "accepted", ())


def _facts_vocabulary() -> list[str]:
    return sorted(set(CATALOGUE) | CARD_VISIT_FACTS | NEVER_DISCLOSED)


_VALUES = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.lists(st.text(max_size=8), max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(
    code=st.sampled_from(sorted(ALL_CODES) + ["unknown_rule"]),
    disclosed=st.frozensets(st.sampled_from(_facts_vocabulary())),
    reviewer_keys=st.sets(st.text(min_size=1, max_size=14), max_size=6),
    data=st.data(),
)
def test_every_code_shows_an_agent_only_allowed_keys_and_the_fixed_message(
    code, disclosed, reviewer_keys, data
):
    view = AGENT_VIEWS.get(code)
    keys = reviewer_keys | set(view.details if view else ())
    details_a = {k: data.draw(_VALUES) for k in keys}
    details_b = dict(details_a)
    allowed = {k for k, needs in (view.details.items() if view else ()) if needs <= disclosed}
    for key in keys - allowed:  # what the agent may not know changes freely
        details_b[key] = data.draw(_VALUES)
    seen_a = agent_flag(Flag(code, data.draw(st.text()), details_a), disclosed)
    seen_b = agent_flag(Flag(code, data.draw(st.text()), details_b), disclosed)
    assert seen_a == seen_b
    if seen_a is not None:
        assert view is not None and view.needs <= disclosed
        assert seen_a.message == view.message
        assert set(seen_a.details) <= allowed
        assert all(seen_a.details[k] == details_a[k] for k in seen_a.details)


@settings(max_examples=300, deadline=None)
@given(
    status=st.sampled_from(["accepted", "flagged", "duplicate", "rejected", "retry"]),
    original_status=st.sampled_from([None, "accepted", "flagged", "rejected"]),
    codes=st.lists(st.sampled_from(sorted(ALL_CODES) + ["unknown_rule"]), max_size=4),
    disclosed=st.frozensets(st.sampled_from(_facts_vocabulary())),
    data=st.data(),
)
def test_the_stored_form_read_directly_is_answered_as_the_outcome_object(
    status, original_status, codes, disclosed, data
):
    """agent_outcome_dict (the pull's way) equals agent_outcome(...).to_dict() (the push's)."""
    flags = []
    for code in codes:
        view = AGENT_VIEWS.get(code)
        keys = set(view.details if view else ()) | {"distance_m", "other_visits"}
        keys = data.draw(st.sets(st.sampled_from(sorted(keys))))
        flags.append(
            Flag(code, data.draw(st.text(max_size=8)), {k: data.draw(_VALUES) for k in keys})
        )
    outcome = RecordOutcome(
        REPORT_ID,
        status,
        data.draw(st.sampled_from([None, "malformed"])),
        data.draw(st.text(max_size=8)),
        tuple(flags),
        data.draw(st.sampled_from([None, "ab" * 32])),
        tuple(data.draw(st.lists(st.sampled_from(["cd" * 32, "ef" * 32]), max_size=2))),
        original_status,
    )
    stored = outcome.to_dict()
    expected = agent_outcome(RecordOutcome.from_dict(stored), disclosed).to_dict()
    assert agent_outcome_dict(stored, disclosed) == expected
    assert list(agent_outcome_dict(stored, disclosed)) == list(expected)


# --- the property: an agent's push answer depends only on what its card discloses --------

# Which card fact (server.domain.disclosure.CATALOGUE field or visit fact) discloses each
# borrower fact the engine reads; OTHER_PEOPLE is disclosed by no card.
OTHER_PEOPLE = "other people's records"
FACT_OF = {
    "home": "home_geo",
    "time_zone": "time_zone",
    "case_flags": "case_flags",
    "plan": VISIT_PLAN,
    "id_match": ID_CHECK,
    "status_elsewhere": VISIT_ASSIGNED,
    "other_visits": OTHER_PEOPLE,
    "other_agreements": OTHER_PEOPLE,
}


@dataclass(frozen=True)
class Situation:
    """The agent's side: its card for the visit (from the policy), and its own records."""

    purpose: str
    disclosed: frozenset[str]
    may_hold: bool
    assigned: bool
    own_status: str
    records: tuple[IncomingRecord, ...]
    own_home_visits: tuple[datetime, ...]
    own_agreements: frozenset[str]
    own_credentials: tuple[datetime, ...]
    device_skew_s: int
    replay: bool


def _moment(day_offset_min: int) -> datetime:
    return datetime(2025, 3, 13, 0, 0, tzinfo=SHANGHAI) + timedelta(minutes=day_offset_min)


_TIMES = st.integers(0, 3 * 24 * 60).map(_moment)
_LAT = st.floats(31.0, 31.4, allow_nan=False)
_LON = st.floats(121.2, 121.6, allow_nan=False)


def _record(kind, body, record_id, seq, recorded_at):
    return IncomingRecord.create(
        id=record_id,
        kind=kind,
        visit_id=100,
        device_seq=seq,
        recorded_at=recorded_at,
        body=body,
    )


@st.composite
def _own_records(draw) -> tuple[IncomingRecord, ...]:
    kinds = draw(
        st.sets(st.sampled_from(["credential", "report", "identity", "agreement"]), min_size=1)
    )
    arrived = draw(_TIMES)
    records = []
    if "credential" in kinds:
        body = {
            "confirmation_kind": "agent_credential",
            "badge_number": draw(st.sampled_from(["SH-0042", " sh-0042", "XX-1"])),
            "borrower_acknowledged": True,
        }
        at = arrived + timedelta(minutes=draw(st.integers(-10, 10)))
        records.append(_record("id_confirmation", body, CREDENTIAL_ID, 1, at))
    if "report" in kinds:
        departed = arrived + timedelta(minutes=draw(st.integers(0, 180)))
        location = draw(
            st.none()
            | st.fixed_dictionaries(
                {"lat": _LAT, "lon": _LON, "accuracy_m": st.floats(0, 1500, allow_nan=False)}
            )
        )
        body = {
            "arrived_at": arrived.isoformat(),
            "departed_at": departed.isoformat() if draw(st.booleans()) else None,
            "outcome": draw(st.sampled_from(VISIT_OUTCOMES)),
            "location": location,
            "third_party_present": draw(st.booleans()),
            "debt_discussed_with_third_party": draw(st.booleans()),
        }
        if draw(st.booleans()):
            body["contacted_at"] = (
                arrived + timedelta(minutes=draw(st.integers(0, 30)))
            ).isoformat()
        recorded = departed + timedelta(minutes=draw(st.integers(0, 3000)))
        records.append(_record("visit_report", body, REPORT_ID, 2, recorded))
    if "identity" in kinds:
        body = {"confirmation_kind": "borrower_identity"}
        records.append(_record("id_confirmation", body, IDENTITY_ID, 3, arrived))
    if "agreement" in kinds:
        body = {
            "agreement_id": AGREEMENT_ID,
            "case_id": 40,
            "visit_id": 100,
            "currency": "CNY",
            "total_amount": "3000.00",
            "installments": [{"due_date": "2025-04-15", "amount": "3000.00"}],
            "template_id": "repayment-plan-zh",
            "template_version": 3,
            "borrower_signature_sha256": BORROWER_SIG,
            "agent_signature_sha256": AGENT_SIG,
            "signed_at": arrived.isoformat(),
            "signed_lat": "31.230400",
            "signed_lon": "121.473700",
        }
        body["content_hash"] = agreement_content_hash(body)
        records.append(_record("agreement", body, AGREEMENT_ID, 4, arrived))
    return tuple(records)


@st.composite
def situations(draw) -> Situation:
    purpose = draw(st.sampled_from(VISIT_PURPOSES))
    # The agent's card for this purpose, as a policy file could set it.
    fields = draw(st.lists(st.sampled_from(sorted(CATALOGUE)), unique=True))
    policy = build_policy({"agent": {purpose: fields}})
    may_hold = draw(st.booleans())
    assigned = may_hold or draw(st.booleans())
    return Situation(
        purpose=purpose,
        disclosed=card_facts(policy.allowed_fields("agent", purpose), may_hold, assigned),
        may_hold=may_hold,
        assigned=assigned,
        own_status=draw(st.sampled_from(["planned", "cancelled"])),
        records=draw(_own_records()),
        own_home_visits=tuple(draw(st.lists(_TIMES, max_size=3))),
        own_agreements=frozenset(draw(st.sets(st.sampled_from(OWN_AGREEMENTS)))),
        own_credentials=tuple(draw(st.lists(_TIMES, max_size=2))),
        device_skew_s=draw(st.sampled_from([0, 30, 400, -400])),
        replay=draw(st.booleans()),
    )


_WINDOWS = [(None, None), ("09:00", "11:00"), ("14:00", "16:00"), (None, "12:00")]


@st.composite
def borrower_facts(draw) -> dict:
    """Everything about the borrower and other people that the engine reads."""
    window = draw(st.sampled_from(_WINDOWS))
    return {
        "home": draw(st.none() | st.tuples(_LAT, _LON)),
        "time_zone": draw(st.sampled_from(["Asia/Shanghai", "Asia/Tokyo", "Europe/London"])),
        "case_flags": draw(st.tuples(st.booleans(), st.booleans(), st.booleans())),
        "plan": (
            DAY + timedelta(days=draw(st.integers(-1, 1))),
            *window,
            draw(st.booleans()),
            draw(st.none() | _TIMES),
        ),
        "id_match": draw(st.sampled_from([True, False, None])),
        "status_elsewhere": draw(st.sampled_from(["planned", "cancelled"])),
        "other_visits": tuple(draw(st.lists(_TIMES, max_size=3))),
        "other_agreements": frozenset(draw(st.sets(st.sampled_from(OTHER_AGREEMENTS)))),
    }


def _world(situation: Situation, borrower: dict) -> ServerFacts:
    hardship, do_not_visit, legal_hold = borrower["case_flags"]
    home_lat, home_lon = borrower["home"] or (None, None)
    visit_date, window_start, window_end, notice_given, notice_at = borrower["plan"]
    case = CaseFacts(
        id=40,
        time_zone=borrower["time_zone"],
        home_lat=home_lat,
        home_lon=home_lon,
        hardship=hardship,
        do_not_visit=do_not_visit,
        legal_hold=legal_hold,
        home_visit_times=tuple(sorted(situation.own_home_visits + borrower["other_visits"])),
        agreement_ids=situation.own_agreements | borrower["other_agreements"],
        own_home_visit_times=situation.own_home_visits,
        own_agreement_ids=situation.own_agreements,
    )
    if situation.may_hold:
        agent_id, status = AGENT.id, "planned"
    elif situation.assigned:
        agent_id, status = AGENT.id, situation.own_status
    else:
        agent_id, status = OTHER_AGENT, borrower["status_elsewhere"]
    visit = VisitFacts(
        id=100,
        case=case,
        agent_id=agent_id,
        status=status,
        visit_date=visit_date,
        window_start=window_start,
        window_end=window_end,
        notice_given=notice_given,
        notice_given_at=notice_at,
        home_visit=situation.purpose in HOME_PURPOSES,
        previous_agent_ids=frozenset({AGENT.id, OTHER_AGENT}),
        credential_times=situation.own_credentials,
    )
    return ServerFacts(
        agent=AGENT,
        visits={100: visit},
        id_matches={IDENTITY_ID: borrower["id_match"]},
        complete_blobs=frozenset({BORROWER_SIG, AGENT_SIG}),
        device_sent_at=NOW + timedelta(seconds=situation.device_skew_s),
    )


def _full_outcomes(situation: Situation, borrower: dict) -> list[RecordOutcome]:
    """The outcomes as stored; with `replay`, the answers to the same batch pushed again."""
    world = _world(situation, borrower)
    outcomes = reconcile_batch(list(situation.records), world, POLICY, NOW)
    if not situation.replay:
        return outcomes
    stored = {
        r.id: StoredRecord(AGENT.id, r.digest, o)
        for r, o in zip(situation.records, outcomes, strict=True)
        if o.stored
    }
    again = ServerFacts(**{**vars(world), "stored": stored})
    return reconcile_batch(list(situation.records), again, POLICY, NOW)


def _agent_answer(situation: Situation, borrower: dict, view=outcome_out) -> list[dict]:
    outcomes = _full_outcomes(situation, borrower)
    return [
        view(o, (r.kind, dict(r.body)), None, situation.disclosed)
        for r, o in zip(situation.records, outcomes, strict=True)
    ]


def _vary_undisclosed(situation: Situation, a: dict, b: dict) -> dict:
    """b, except that every fact the agent's card discloses is a's."""
    return {key: a[key] if FACT_OF[key] in situation.disclosed else b[key] for key in a}


def check_agent_answers(situation: Situation, a: dict, b: dict, view=outcome_out) -> None:
    """The agent's answer is the same in both worlds and made only of what it may know."""
    b = _vary_undisclosed(situation, a, b)
    answer = _agent_answer(situation, a, view)
    assert answer == _agent_answer(situation, b, view)
    for outcome in answer:
        if outcome["id_verification"] is not None:
            assert ID_CHECK in situation.disclosed
        for flag in outcome["flags"]:
            agent_view = AGENT_VIEWS[flag["code"]]
            assert agent_view.needs <= situation.disclosed, flag
            assert flag["message"] == agent_view.message
            for key in flag["details"]:
                assert agent_view.details[key] <= situation.disclosed, (flag["code"], key)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(situation=situations(), a=borrower_facts(), b=borrower_facts())
def test_an_agents_push_answer_depends_only_on_what_its_current_card_discloses(situation, a, b):
    check_agent_answers(situation, a, b)


def _far_report_situation(may_hold: bool) -> tuple[Situation, dict, dict]:
    arrived = datetime(2025, 3, 14, 10, 5, tzinfo=SHANGHAI)
    body = {
        "arrived_at": arrived.isoformat(),
        "outcome": "met_borrower",
        "location": {"lat": 31.30, "lon": 121.47, "accuracy_m": 10},
    }
    situation = Situation(
        purpose="home_visit",
        disclosed=card_facts(build_policy().allowed_fields("agent", "home_visit"), may_hold, False),
        may_hold=may_hold,
        assigned=may_hold,
        own_status="planned",
        records=(_record("visit_report", body, REPORT_ID, 1, arrived),),
        own_home_visits=(),
        own_agreements=frozenset(),
        own_credentials=(arrived,),
        device_skew_s=0,
        replay=False,
    )
    a = {
        "home": (31.2304, 121.4737),
        "time_zone": "Asia/Shanghai",
        "case_flags": (False, False, False),
        "plan": (DAY, "10:00", "11:00", True, arrived - timedelta(days=1)),
        "id_match": True,
        "status_elsewhere": "planned",
        "other_visits": (arrived - timedelta(days=2),),
        "other_agreements": frozenset(),
    }
    b = {**a, "home": (31.2404, 121.4737), "other_visits": (arrived - timedelta(days=3),)}
    return situation, a, b


def _leaky_view(outcome, kind_body, receipt, disclosed):
    """The answer as it was before agent views: the stored outcome as is."""
    return {**outcome.to_dict(), "receipt": receipt}


def test_the_property_catches_a_leaky_answer():
    situation, a, b = _far_report_situation(may_hold=False)
    full_a, full_b = _full_outcomes(situation, a), _full_outcomes(situation, b)
    assert full_a != full_b  # the stored outcomes do depend on the home and other visits
    check_agent_answers(situation, a, b)
    with pytest.raises(AssertionError):
        check_agent_answers(situation, a, b, view=_leaky_view)


def test_with_the_card_held_the_agent_is_told_it_was_outside_the_geofence_but_not_how_far():
    situation, a, _ = _far_report_situation(may_hold=True)
    situation = Situation(**{**vars(situation), "assigned": True})
    (answer,) = _agent_answer(situation, a)
    location = next(f for f in answer["flags"] if f["code"] == rules.LOCATION_MISMATCH)
    assert location["details"] == {"allowed_m": 510.0, "accuracy_m": 10.0}
    assert "m from" not in location["message"]
    codes = {f["code"] for f in answer["flags"]}
    assert rules.VISIT_FREQUENCY_EXCEEDED not in codes  # that was another agent's visit
