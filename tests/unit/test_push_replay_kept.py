"""A replay's answer kept by the push that stored the record (sync_push._stored_answer,
_replayed_answer): the push answers as outcome_out does, the replay answers byte for byte
as building its answer from the stored outcome does (sync.reconcile.replay_outcome of
push_facts.stored_outcome, then outcome_out), whether kept or not (as on the other worker,
where it is read from the stored text), and no answer shares with the kept one a container
the ledger may remove a fact from."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from schemas.fast_dump import written_type
from schemas.sync import OutcomeSchema, PushResultSchema
from server.services import sync_push
from server.services.push_facts import stored_outcome
from sync.flag_views import AGENT_VIEWS, ID_CHECK
from sync.reconcile import replay_outcome
from sync.records import Flag, RecordOutcome
from tests.unit.test_pull_outcome_memo import CODES, FACTS, RELAXED

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=6),
    st.lists(st.integers(0, 9), max_size=3),
    st.tuples(st.integers(0, 9)),
    st.dictionaries(st.text(max_size=4), st.integers(0, 9), max_size=2),
)
KINDS = ["visit_report", "contact", "id_confirmation", "agreement"]
SENT_IDS = ["00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000A"]


@st.composite
def stored(draw) -> RecordOutcome:
    """The outcome of a record a push stores, with the id as sent."""
    flags = []
    for code in draw(st.lists(st.sampled_from([*CODES, "unknown_rule"]), max_size=4)):
        view = AGENT_VIEWS.get(code)
        keys = sorted(set(view.details if view else ()) | {"distance_m"})
        details = {key: draw(VALUES) for key in draw(st.sets(st.sampled_from(keys)))}
        flags.append(Flag(code, draw(st.text(max_size=8)), details))
    return RecordOutcome(
        draw(st.sampled_from(SENT_IDS)),
        draw(st.sampled_from(["accepted", "flagged"])),
        draw(st.sampled_from([None, "late"])),
        draw(st.text(max_size=8)),
        tuple(flags),
        draw(st.sampled_from([None, "ab" * 32])),
        tuple(draw(st.lists(st.sampled_from(["cd" * 32, "ef" * 32]), max_size=2))),
        draw(st.sampled_from([None, None, "accepted"])),
    )


def _text(outcome: dict) -> bytes:
    """The answer's text of a push answering this one outcome (keys in the order written)."""
    return json.dumps(PushResultSchema().dump({"outcomes": [outcome]}), default=str).encode()


@RELAXED
@given(
    outcome=stored(),
    kind=st.sampled_from(KINDS),
    identity=st.booleans(),
    receipt=st.booleans(),
    seen=st.frozensets(st.sampled_from([*FACTS, ID_CHECK])),
    replays=st.integers(1, 3),
)
def test_a_replay_is_answered_as_from_the_store(outcome, kind, identity, receipt, seen, replays):
    sync_push._KEPT_ANSWERS.clear()
    body = {"confirmation_kind": "borrower_identity" if identity else "credential"}
    signed = {"agreement_id": outcome.record_id, "content_hash": "ab", "received_at": "t"}
    signed = signed if receipt or kind == "agreement" else None
    text = sync_push._outcome_json(outcome)
    pushed = sync_push._stored_answer(outcome, (kind, body), signed, seen, text)
    assert _text(pushed) == _text(sync_push.outcome_out(outcome, (kind, body), signed, seen))
    pushed.pop("id_verification", None)  # the ledger may remove a fact from the push's
    for flag in pushed["flags"]:
        flag.clear()
    # What known_replays reads: the stored outcome; an ID confirmation's stored body only.
    replayed = sync_push._as_sent(
        replay_outcome(outcome.record_id.lower(), stored_outcome(text)), outcome.record_id
    )
    kind_body = (kind, body if kind == "id_confirmation" else {})
    expected = _text(sync_push.outcome_out(replayed, kind_body, signed, seen))
    replay = (outcome.record_id.lower(), kind_body, 7, text)
    for _ in range(replays):
        handed = sync_push._replayed_answer(replay, outcome.record_id, signed, seen)
        assert _text(handed) == expected
        handed.pop("id_verification", None)  # ... and from the replay's, never the kept one
        for flag in handed["flags"]:
            flag.clear()
    sync_push._KEPT_ANSWERS.clear()  # as on the worker that did not serve the push
    assert _text(sync_push._replayed_answer(replay, outcome.record_id, signed, seen)) == expected
    keepable = (
        kind in ("visit_report", "contact")
        and signed is None
        and outcome.original_status is None
        and all(
            sync_push.plain_json(flag["details"])
            for flag in sync_push.outcome_out(outcome, (kind, body), signed, seen)["flags"]
        )
    )
    if keepable:
        assert type(handed) is written_type(OutcomeSchema)
    else:
        assert type(handed) is dict


def test_a_replay_under_other_card_facts_is_built_afresh():
    sync_push._KEPT_ANSWERS.clear()
    outcome = RecordOutcome(SENT_IDS[0], "flagged", None, "m", (Flag("location_mismatch", "x"),))
    text = sync_push._outcome_json(outcome)
    sync_push._stored_answer(outcome, ("visit_report", {}), None, frozenset({"home_geo"}), text)
    replay = (outcome.record_id, ("visit_report", {}), 7, text)
    handed = sync_push._replayed_answer(replay, outcome.record_id, None, frozenset())
    assert type(handed) is dict
    assert handed["flags"] == [] and handed["original_status"] == "accepted"


def test_the_kept_answers_are_bounded(monkeypatch):
    sync_push._KEPT_ANSWERS.clear()
    monkeypatch.setattr(sync_push, "REPLAY_ANSWERS_KEPT", 3)
    for n in range(5):
        outcome = RecordOutcome(f"{SENT_IDS[0][:-1]}{n}", "accepted", None, "m")
        text = sync_push._outcome_json(outcome)
        sync_push._stored_answer(outcome, ("visit_report", {}), None, frozenset(), text)
    assert [key[2][-1] for key in sync_push._KEPT_ANSWERS] == ["2", "3", "4"]
