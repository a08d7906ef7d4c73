"""A replay answered from the store (sync_push.prepare, push_facts.known_replays) answers and
stores what reconciling it answers and stores: the golden corpus (tests/golden/push), whose
replays are sent exactly, reordered, cut short and from the agent's other device, gives the
recorded bytes with the store's answer turned off. With it turned off every replay goes
through validation, the facts, reconciliation and the store again, so the shortcuts taken
for replays (an all-replay batch reading no facts and storing nothing, receipts read for
agreements only) are each held to the path they skip."""

from __future__ import annotations

import pytest

from server.services import sync_push
from tests.golden.push.driver import golden_lines, read_golden
from tests.system.test_push_golden import describe_difference


def test_replays_reconciled_give_the_recorded_corpus(monkeypatch):
    monkeypatch.setattr(sync_push, "known_replays", lambda *_args: {})
    lines = golden_lines()
    expected = read_golden()
    if lines != expected:
        pytest.fail(describe_difference(expected, lines), pytrace=False)
