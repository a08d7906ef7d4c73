"""The pull's memo of cards and digests: the same answer as building them afresh, for any
change of any input, and no caller shares a container with it."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest

from server.domain.disclosure import build_policy
from server.services import sync_pull
from server.services.sync_pull import _agent_card, _built_card, _card_digest

RT = SimpleNamespace(disclosure=build_policy())


def _parts() -> dict:
    return {
        "visit": {
            "id": 7,
            "case_id": 70,
            "agent_id": 3,
            "visit_date": "2026-12-03",
            "window_start": "09:00",
            "window_end": "10:00",
            "route_order": 1,
            "purpose": "home_visit",
            "notes": "Bring the form.",
            "status": "planned",
            "version": 2,
            "updated_at": "2026-12-03T08:00:00Z",
        },
        "case": {
            "id": 70,
            "external_id": "CASE-000070",
            "product": "Personal loan",
            "overdue_amount": "1200.50",
            "currency": "CNY",
            "days_past_due": 30,
            "hardship": 0,
            "do_not_visit": 0,
        },
        "borrower": {
            "id": 700,
            "full_name": "Li Lei",
            "phones": '["13812345678"]',
            "home_address": "Room 1, Lane 2",
            "home_lat": 31.2,
            "home_lon": 121.5,
            "time_zone": "Asia/Shanghai",
        },
    }


def _fresh_answer(parts: dict, computed: dict) -> tuple[dict, str]:
    card = _agent_card(RT, parts, computed)
    return card, _card_digest(parts, card)


@pytest.fixture(autouse=True)
def _empty_memo():
    sync_pull._CARD_MEMO.clear()
    yield
    sync_pull._CARD_MEMO.clear()


CHANGES = [
    ("visit", "window_start", "11:00"),
    ("visit", "purpose", "agreement_signing"),
    ("visit", "notes", "Other notes."),
    ("visit", "route_order", 1.0),  # equal to 1 as a key, written differently
    ("case", "external_id", "CASE-000071"),
    ("case", "days_past_due", 30.0),
    ("case", "hardship", True),
    ("case", "overdue_amount", "1200.5"),
    ("borrower", "phones", '["13912345678"]'),
    ("borrower", "home_lat", 31.25),
    ("borrower", "full_name", "Han Meimei"),
]


@pytest.mark.parametrize(("part", "name", "value"), CHANGES)
def test_any_changed_input_is_answered_as_built_afresh(part, name, value):
    parts = _parts()
    assert _built_card(RT, parts, {}) == _fresh_answer(parts, {})
    changed = copy.deepcopy(parts)
    changed[part][name] = value
    assert _built_card(RT, changed, {}) == _fresh_answer(changed, {})
    _, digest = _built_card(RT, changed, {})
    assert digest == _card_digest(changed, _agent_card(RT, changed, {}))


def test_computed_facts_are_part_of_the_key():
    parts = _parts()
    due = {"repayment_status": {"kind": "promise", "amount_due": "10.00", "currency": "CNY"}}
    for computed in ({}, due, {"repayment_status": None}, {"repayment_status": {**due}}):
        assert _built_card(RT, parts, computed) == _fresh_answer(parts, computed)
    more = {"repayment_status": {**due["repayment_status"], "amount_due": "20.00"}}
    assert _built_card(RT, parts, more) == _fresh_answer(parts, more)


def test_a_caller_changing_its_card_changes_nothing_for_the_next():
    parts = _parts()
    first, _ = _built_card(RT, parts, {})
    first["home_geo"]["lat"] = 0.0
    first["phone_masked"].append("000")
    first.pop("display_name")
    second, _ = _built_card(RT, parts, {})
    assert second == _fresh_answer(parts, {})[0]
    second["home_geo"]["lon"] = 0.0
    assert _built_card(RT, parts, {})[0] == _fresh_answer(parts, {})[0]


def test_the_memo_stays_within_its_bound(monkeypatch):
    monkeypatch.setattr(sync_pull, "CARD_MEMO_SIZE", 3)
    parts = _parts()
    for n in range(10):
        parts["visit"]["version"] = n
        assert _built_card(RT, parts, {}) == _fresh_answer(parts, {})
    assert len(sync_pull._CARD_MEMO) == 3


def test_an_unhashable_value_is_built_without_the_memo():
    parts = _parts()
    parts["borrower"]["phones"] = ["13812345678"]  # as a JSON column could arrive
    assert _built_card(RT, parts, {}) == _fresh_answer(parts, {})
    assert not sync_pull._CARD_MEMO
