"""A replayed record's answer, kept already dumped (sync_push._answer, kept_outcomes): the
same answer, byte for byte, as building it afresh with outcome_out, on a miss and on hits,
and no answer shares with the kept one a container the ledger may remove a fact from."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from schemas.fast_dump import written_type
from schemas.sync import OutcomeSchema
from server.services import sync_push
from server.services.push_facts import stored_outcome
from sync.flag_views import ID_CHECK
from sync.reconcile import replay_outcome
from tests.unit.test_pull_outcome_memo import FACTS, RELAXED, _text, rows


def _replay(row: dict) -> tuple:
    """The Replay push_facts.known_replays makes of a stored row."""
    body = json.loads(row["body"]) if row["body"] is not None else {}
    return (
        replay_outcome(row["id"], stored_outcome(row["outcome"])),
        (row["kind"], body),
        7,
        (row["outcome"], row["body"]),
    )


@RELAXED
@given(
    row=rows(),
    seen=st.frozensets(st.sampled_from([*FACTS, ID_CHECK])),
    upper=st.booleans(),
    hits=st.integers(1, 3),
)
def test_a_kept_replay_answer_is_the_one_built_afresh(row, seen, upper, hits):
    sync_push._REPLAY_MEMO.clear()
    replay = _replay(row)
    outcome = sync_push._as_sent(replay[0], row["id"].upper() if upper else row["id"])
    expected = _text(sync_push.outcome_out(outcome, replay[1], None, seen))
    for _ in range(hits):  # a miss, then hits
        handed = sync_push._answer(outcome, replay[1], None, seen, replay)
        assert type(handed) is written_type(OutcomeSchema)
        assert _text(handed) == expected
        # The ledger may remove a fact from the outcome or a flag: never from the kept one.
        handed.pop("id_verification", None)
        for flag in handed["flags"]:
            flag.clear()
    assert _text(sync_push._answer(outcome, replay[1], None, seen, replay)) == expected


def test_a_record_not_answered_from_the_store_or_with_a_receipt_is_not_kept():
    sync_push._REPLAY_MEMO.clear()
    row = {
        "id": "00000000-0000-4000-8000-000000000002",
        "kind": "agreement",
        "outcome": json.dumps(
            {"record_id": "00000000-0000-4000-8000-000000000002", "status": "accepted"}
        ),
        "body": None,
    }
    replay = _replay(row)
    receipt = {"agreement_id": row["id"], "content_hash": "ab", "received_at": "t"}
    with_receipt = sync_push._answer(replay[0], replay[1], receipt, frozenset(), replay)
    assert type(with_receipt) is dict and with_receipt["receipt"] == receipt
    reconciled = sync_push._answer(replay[0], replay[1], None, frozenset(), None)
    assert type(reconciled) is dict
    assert len(sync_push._REPLAY_MEMO) == 0
