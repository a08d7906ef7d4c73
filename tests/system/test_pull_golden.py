"""Pull answers after the golden push corpus, byte for byte as recorded (tests/golden/pull):
a change to how a pull is computed must not change a byte it serves, a card digest it
stores or a ledger entry it writes."""

from __future__ import annotations

import difflib
import json

import pytest

from tests.golden.pull.driver import pull_lines, read_golden


def test_every_pull_body_card_digest_and_ledger_entry_is_as_recorded():
    expected, lines = read_golden(), pull_lines()
    if lines == expected:
        return
    diff = difflib.unified_diff(expected, lines, "recorded", "now", n=0, lineterm="")
    pytest.fail("\n".join(d[:400] for d in list(diff)[:24]), pytrace=False)


def test_the_recorded_pulls_carry_cards_with_every_repayment_state():
    states, upserts = set(), 0
    for text in read_golden():
        data = json.loads(text)
        if data.get("status") != 200:
            continue
        for card in json.loads(data["body"])["upserts"]:
            upserts += 1
            status = (card.get("borrower") or {}).get("repayment_status")
            states.add(status["state"] if status else None)
    assert upserts > 50
    assert {None, "pending", "broken", "partly_kept"} <= states, states
