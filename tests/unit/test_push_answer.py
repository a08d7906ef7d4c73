"""The agent's wire form of an outcome, written directly (flag_views.agent_outcome_wire), is
sync.flag_views.agent_outcome(...).to_dict(): for every status, original status, flag code
(known or not), detail key and card; and a stored outcome read in one step
(push_facts.stored_outcome) is the one RecordOutcome.from_dict rebuilds."""

from __future__ import annotations

import itertools
import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from server.domain.disclosure import CATALOGUE
from server.services.push_facts import stored_outcome
from sync.compliance import Flag
from sync.flag_views import (
    AGENT_VIEWS,
    CARD_VISIT_FACTS,
    NEVER_DISCLOSED,
    agent_outcome,
    agent_outcome_wire,
    card_facts,
)
from sync.records import RecordOutcome

STATUSES = ("accepted", "flagged", "duplicate", "rejected", "retry")
ORIGINALS = (None, "accepted", "flagged", "rejected")
CODES = (*sorted(AGENT_VIEWS), "no_such_code")
DETAIL_KEYS = sorted(
    {key for view in AGENT_VIEWS.values() for key in view.details}
    | {"distance_m", "arrived_local", "visits_in_period", "other_agreements"}
)
DETAIL_VALUES = (0, 1, 2, 3, 5, -1, True, None, "x", 2.5, [1, 2], {"a": 1})
FACTS = st.sets(st.sampled_from(sorted(set(CATALOGUE) | CARD_VISIT_FACTS | NEVER_DISCLOSED)))


def _details(rng: random.Random) -> dict:
    keys = rng.sample(DETAIL_KEYS, rng.randint(0, 5))
    return {key: rng.choice(DETAIL_VALUES) for key in keys}


flags = st.lists(
    st.builds(
        lambda code, seed: Flag(code, f"full text of {code}", _details(random.Random(seed))),
        st.sampled_from(CODES),
        st.integers(0, 2**32),
    ),
    max_size=4,
)


@settings(max_examples=600, deadline=None)
@given(
    status=st.sampled_from(STATUSES),
    original=st.sampled_from(ORIGINALS),
    flags=flags,
    facts=FACTS,
    content_hash=st.sampled_from((None, "ab" * 32)),
    missing=st.sampled_from(((), ("cd" * 32,))),
    reason=st.sampled_from((None, "malformed", "missing_blobs")),
)
def test_agent_wire_is_the_agent_outcome(
    status, original, flags, facts, content_hash, missing, reason
):
    outcome = RecordOutcome(
        "00000000-0000-4000-8000-00000000000A",
        status,
        reason,
        "the server's message",
        tuple(flags),
        content_hash,
        missing,
        original,
    )
    facts = frozenset(facts)
    assert agent_outcome_wire(outcome, facts) == agent_outcome(outcome, facts).to_dict()


def test_every_code_on_every_card_the_policy_can_grant():
    fields = sorted(CATALOGUE)
    cards = {frozenset()} | {
        card_facts(chosen, may_hold, assigned)
        for size in (0, 1, 2, len(fields))
        for chosen in itertools.islice(itertools.combinations(fields, size), 40)
        for may_hold, assigned in itertools.product((True, False), repeat=2)
    }
    rng = random.Random(5)
    for facts, code, status in itertools.product(cards, CODES, STATUSES):
        flag = Flag(code, "full", _details(rng))
        outcome = RecordOutcome("r", status, flags=(flag,), original_status="flagged")
        assert agent_outcome_wire(outcome, facts) == agent_outcome(outcome, facts).to_dict()


@settings(max_examples=300, deadline=None)
@given(
    status=st.sampled_from(STATUSES),
    original=st.sampled_from(ORIGINALS),
    flags=flags,
    content_hash=st.sampled_from((None, "ab" * 32)),
    missing=st.sampled_from(((), ("cd" * 32,))),
)
def test_a_stored_outcome_reads_back_as_from_dict_reads_it(
    status, original, flags, content_hash, missing
):
    outcome = RecordOutcome("r", status, None, "m", tuple(flags), content_hash, missing, original)
    text = json.dumps(outcome.to_dict())
    assert stored_outcome(text) == RecordOutcome.from_dict(json.loads(text)) == outcome


def test_a_stored_outcome_msgspec_refuses_is_read_as_before():
    texts = [
        '{"record_id": "r", "status": "flagged", "flags": [{"code": "c", "message": "m", '
        '"details": {"d": NaN}}]}',
        '{"record_id": "r", "status": "someday", "message": null}',
        '{"record_id": "r", "status": "accepted", "flags": [{"code": "c", "message": "m"}]}',
        '{"record_id": "r", "status": "accepted", "extra": 1}',
    ]
    for text in texts:
        got, want = stored_outcome(text), RecordOutcome.from_dict(json.loads(text))
        assert json.dumps(got.to_dict()) == json.dumps(want.to_dict())
