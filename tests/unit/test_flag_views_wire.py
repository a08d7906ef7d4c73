"""The agent's view of an outcome written straight to its wire form (sync.flag_views.
agent_outcome_wire) is the agent's outcome's own to_dict, and card facts of a policy's
tuple of fields (kept once worked out) are those of the same fields in any iterable."""

from __future__ import annotations

import json
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from sync.flag_views import ID_CHECK, agent_outcome, agent_outcome_wire, card_facts
from tests.unit.test_pull_outcome_memo import FACTS, RELAXED
from tests.unit.test_push_replay_kept import stored

STATUSES = ["accepted", "flagged", "duplicate", "rejected", "retry"]


@RELAXED
@given(
    outcome=stored(),
    status=st.sampled_from(STATUSES),
    original=st.sampled_from([None, "accepted", "flagged"]),
    seen=st.frozensets(st.sampled_from([*FACTS, ID_CHECK])),
)
def test_the_wire_form_is_the_agent_outcomes_own(outcome, status, original, seen):
    outcome = replace(outcome, status=status, original_status=original)
    wire = agent_outcome_wire(outcome, seen)
    expected = agent_outcome(outcome, seen).to_dict()
    assert json.dumps(wire, default=repr) == json.dumps(expected, default=repr)
    for flag in wire["flags"]:  # each answer's own details: nothing shared with the outcome
        assert all(flag["details"] is not f.details for f in outcome.flags)


@given(
    fields=st.lists(st.sampled_from([*FACTS, "work_address", "phone"]), max_size=6),
    may_hold=st.booleans(),
    assigned=st.booleans(),
)
def test_card_facts_of_a_tuple_are_those_of_any_iterable(fields, may_hold, assigned):
    kept = card_facts(tuple(fields), may_hold, assigned)
    assert kept == card_facts(list(fields), may_hold, assigned)
    assert kept is card_facts(tuple(fields), may_hold, assigned)
