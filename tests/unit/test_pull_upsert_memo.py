"""The pull's upserts, dumped once per card content and expiry and handed on by the
answer's dump (sync_pull._upsert): the same text as visit_view dumped afresh for any change
of the rows, the computed facts or the expiry, and no answer shares with the memo the
containers the ledger may remove a fact from."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from schemas.fast_dump import written_type
from schemas.sync import PullResultSchema
from schemas.visits import AgentVisitSchema
from server.services import sync_pull
from server.services.views import visit_view
from tests.unit.test_pull_card_memo import RT, _parts

EXPIRES = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)


def _served(parts: dict, computed: dict, expires: datetime) -> tuple[dict, tuple | None]:
    """The card as serve_cards hands it to the pull (the memoised card, with the ids of
    its rows and its expiry), and its content key."""
    card, _, key = sync_pull._built(RT, parts, computed)
    card.update(borrower_id=parts["borrower"]["id"], case_id=parts["case"]["id"])
    card["expires_at"] = expires
    return card, key


def _text(upsert: dict) -> str:
    return json.dumps(PullResultSchema().dump({"upserts": [upsert]}), default=str)


def _check(parts: dict, computed: dict, expires: datetime) -> None:
    card, key = _served(parts, computed, expires)
    expected = _text(visit_view(parts, copy.deepcopy(card)))
    for _ in range(2):  # a miss, then a hit
        handed = sync_pull._upsert(parts, card, key)
        assert type(handed) is written_type(AgentVisitSchema)
        assert _text(handed) == expected
        handed["borrower"].clear()  # the ledger removes facts from the card: not the memo's
        handed.clear()


@pytest.fixture(autouse=True)
def _empty_memos():
    sync_pull._CARD_MEMO.clear()
    sync_pull._UPSERT_MEMO.clear()


def test_an_upsert_is_written_as_visit_view_dumped_afresh():
    _check(_parts(), {}, EXPIRES)


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p["visit"].update(status="completed"),
        lambda p: p["visit"].update(window_start=None),
        lambda p: p["case"].update(external_id="CASE-9"),
        lambda p: p["case"].update(days_past_due=30.0),  # the same number, written otherwise
        lambda p: p["borrower"].update(home_lat=31.3),
        lambda p: p["borrower"].update(id=701),
    ],
)
def test_any_change_of_the_rows_is_written_afresh(change):
    parts = _parts()
    _check(parts, {}, EXPIRES)
    changed = _parts()
    change(changed)
    _check(changed, {}, EXPIRES)
    _check(parts, {}, EXPIRES)


def test_a_change_of_computed_facts_or_expiry_is_written_afresh():
    parts = _parts()
    status = {"kind": "promise", "state": "due", "due_date": "2026-12-04",
              "amount_due": "10.00", "currency": "CNY"}  # fmt: skip
    _check(parts, {}, EXPIRES)
    _check(parts, {"repayment_status": status}, EXPIRES)
    _check(parts, {}, EXPIRES + timedelta(hours=1))
    # The same instant at another offset is another text.
    _check(parts, {}, EXPIRES.astimezone(timezone(timedelta(hours=8))))
    _check(parts, {}, EXPIRES)
