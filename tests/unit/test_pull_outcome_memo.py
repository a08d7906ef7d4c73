"""The pull's outcomes, dumped once per stored row and handed on by the answer's dump
(sync_pull._outcome, fast_dump.dumped): the same answer, byte for byte, as building and
dumping them afresh, whether the memo is hit or not, and no answer shares with it a
container the ledger may remove a fact from."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import Schema

from schemas.fast_dump import dumped, written_type
from schemas.sync import OutcomeSchema, PullResultSchema
from server.services import sync_pull
from sync import compliance as rules
from sync.flag_views import AGENT_VIEWS, CARD_VISIT_FACTS, ID_CHECK
from sync.records import Flag, RecordOutcome

CODES = sorted(
    value for name, value in vars(rules).items() if name.isupper() and isinstance(value, str)
)
FACTS = sorted(
    CARD_VISIT_FACTS | {"time_zone", "home_geo", "home_address", "case_flags", "display_name"}
)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
    st.lists(st.integers(0, 9), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(0, 9), max_size=2),
)


@st.composite
def rows(draw) -> dict:
    """A stored record row as pull_reads.outcomes_after reads it."""
    flags = []
    for code in draw(st.lists(st.sampled_from([*CODES, "unknown_rule"]), max_size=4)):
        view = AGENT_VIEWS.get(code)
        keys = sorted(set(view.details if view else ()) | {"distance_m", "other_visits"})
        details = {key: draw(VALUES) for key in draw(st.sets(st.sampled_from(keys)))}
        flags.append(Flag(code, draw(st.text(max_size=8)), details))
    outcome = RecordOutcome(
        draw(st.sampled_from(["00000000-0000-4000-8000-000000000002", "A-Record"])),
        draw(st.sampled_from(["accepted", "flagged", "duplicate", "rejected", "retry"])),
        draw(st.sampled_from([None, "malformed"])),
        draw(st.text(max_size=8)),
        tuple(flags),
        draw(st.sampled_from([None, "ab" * 32])),
        tuple(draw(st.lists(st.sampled_from(["cd" * 32, "ef" * 32]), max_size=2))),
        draw(st.sampled_from([None, "accepted", "flagged"])),
    )
    kind = draw(st.sampled_from(["visit_report", "id_confirmation", "agreement"]))
    body = None
    if kind == "id_confirmation":
        body = json.dumps(
            {"confirmation_kind": draw(st.sampled_from(["borrower_identity", "credential"]))}
        )
    return {
        "id": outcome.record_id,
        "kind": kind,
        "outcome": json.dumps(outcome.to_dict()),
        "body": body,
    }


def _text(outcome: dict) -> bytes:
    """The answer's text of a pull carrying this one outcome (keys in the order written)."""
    return json.dumps(PullResultSchema().dump({"outcomes": [outcome]}), default=str).encode()


# Generating a row draws many values: on a loaded machine it is slow, which is no fault.
RELAXED = settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)


@RELAXED
@given(row=rows(), seen=st.frozensets(st.sampled_from([*FACTS, ID_CHECK])), hits=st.integers(1, 3))
def test_a_memoised_outcome_is_answered_as_one_built_and_dumped_afresh(row, seen, hits):
    sync_pull._OUTCOME_MEMO.clear()
    fresh = sync_pull._agent_outcome(row, seen, None)
    expected = _text(fresh)
    # Marshmallow itself writes the same outcome (the compiled plan's own promise).
    assert Schema.dump(OutcomeSchema(), fresh) == json.loads(expected)["outcomes"][0]
    for _ in range(hits):  # a miss, then hits
        handed = sync_pull._outcome(row, seen, None)
        assert type(handed) is written_type(OutcomeSchema)
        assert _text(handed) == expected
        # Dumped again by marshmallow it is itself (test_fast_dump compares the two dumps).
        assert json.dumps(Schema.dump(OutcomeSchema(), handed)) == json.dumps(handed)
        # The ledger may remove a fact from the outcome or a flag: never from the memo's.
        handed.pop("id_verification", None)
        for flag in handed["flags"]:
            flag.clear()
    assert _text(sync_pull._outcome(row, seen, None)) == expected


@RELAXED
@given(row=rows(), seen=st.frozensets(st.sampled_from(FACTS)))
def test_an_outcome_with_a_receipt_is_built_afresh_and_dumped_with_the_answer(row, seen):
    receipt = {
        "agreement_id": row["id"],
        "content_hash": "ab",
        "received_at": "t",
        "key_id": "k",
        "signature": "s",
    }
    handed = sync_pull._outcome(row, seen, receipt)
    assert type(handed) is dict
    assert _text(handed) == _text(sync_pull._agent_outcome(row, seen, receipt))


def test_dumped_marks_only_what_a_compiled_plan_can_hand_on():
    class Hooked(OutcomeSchema):
        from marshmallow import post_dump

        @post_dump
        def _upper(self, data, **kwargs):
            return {**data, "status": str(data.get("status")).upper()}

    outcome = {"record_id": "r", "status": "accepted", "flags": []}
    assert dumped(Hooked, outcome) is outcome  # dumped again by its (hooked) schema
    marked = dumped(OutcomeSchema, outcome)
    assert type(marked) is written_type(OutcomeSchema)
    assert marked == OutcomeSchema().dump(outcome)
    # Another schema's plan does not take it for its own.
    assert type(marked) is not written_type(Hooked)
