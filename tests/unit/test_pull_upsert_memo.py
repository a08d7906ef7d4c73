"""The pull's visits, dumped once per card content and expiry and handed on by the answer's
dump (sync_pull._upsert, fast_dump.dumped): the same answer, byte for byte, as dumping
visit_view afresh, whether the memo is hit or not, and no answer shares with it a container
the ledger may remove a fact from."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest

from schemas.sync import PullResultSchema
from server.services import sync_pull
from server.services.sync_pull import _card_entry, _upsert
from server.services.views import visit_view
from tests.unit.test_pull_card_memo import CHANGES, RT, _parts

EXPIRES = datetime(2026, 12, 4, 22, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _empty_memo():
    sync_pull._CARD_MEMO.clear()
    yield
    sync_pull._CARD_MEMO.clear()


def _served(parts: dict, computed: dict, expires_at: datetime) -> tuple[dict, dict | None]:
    """The agent's card as serve_cards hands it out (the built card with its ids and
    expiry), and its content's memo of dumped visits."""
    built, _, upserts = _card_entry(RT, parts, computed)
    card = dict(built)
    card.update(borrower_id=parts["borrower"]["id"], case_id=parts["case"]["id"])
    card["expires_at"] = expires_at
    return card, upserts


def _text(upserts: list) -> str:
    answer = {"cursor": "c", "has_more": False, "upserts": upserts, "purges": [], "outcomes": []}
    return json.dumps(PullResultSchema().dump(answer), sort_keys=False)


def _fresh(parts: dict, card: dict) -> str:
    return _text([visit_view(parts, copy.deepcopy(card))])


@pytest.mark.parametrize("expires_at", [EXPIRES, EXPIRES + timedelta(hours=1)])
@pytest.mark.parametrize(("part", "name", "value"), [(None, None, None), *CHANGES])
def test_a_visit_is_dumped_as_afresh_whether_the_memo_is_hit_or_not(part, name, value, expires_at):
    parts = _parts()
    card, upserts = _served(parts, {}, EXPIRES)
    assert _text([_upsert(parts, card, upserts)]) == _fresh(parts, card)
    if part is not None:
        parts = copy.deepcopy(parts)
        parts[part][name] = value
    for _ in range(2):  # a miss, then a hit
        card, upserts = _served(parts, {}, expires_at)
        assert upserts is not None
        assert _text([_upsert(parts, card, upserts)]) == _fresh(parts, card)


def test_computed_facts_are_part_of_the_memo():
    parts = _parts()
    due = {"repayment_status": {"kind": "promise", "amount_due": "10.00", "currency": "CNY"}}
    for computed in ({}, due, {"repayment_status": None}, {}, due):
        card, upserts = _served(parts, computed, EXPIRES)
        assert _text([_upsert(parts, card, upserts)]) == _fresh(parts, card)


def test_the_ledger_removing_a_fact_from_one_answer_changes_nothing_for_the_next():
    parts = _parts()
    card, upserts = _served(parts, {}, EXPIRES)
    first = _upsert(parts, card, upserts)
    first["borrower"].pop("display_name")
    first.pop("purpose")
    card, upserts = _served(parts, {}, EXPIRES)
    second = _upsert(parts, card, upserts)
    assert "display_name" in second["borrower"] and "purpose" in second
    assert _text([second]) == _fresh(parts, card)


def test_without_a_memo_the_visit_is_left_to_the_answers_dump():
    parts = _parts()
    parts["borrower"]["phones"] = ["13812345678"]  # unhashable: the card has no memo
    card, upserts = _served(parts, {}, EXPIRES)
    assert upserts is None
    assert _upsert(parts, card, None) == visit_view(parts, card)
