"""Push answers and what they leave in the store, byte for byte as recorded: the golden corpus.

The corpus (tests/golden/push/) pushes a few thousand records of every kind through the
API under every compliance profile: every outcome, rejection reason and flag, replays,
reused ids, malformed and forged records, typed ID checks and agreements with receipts.
This test pushes it again and compares every line with tests/golden/push/golden.jsonl.gz.
It runs on both engines (tests/system/conftest.py): the PostgreSQL store must give the same
bytes. A difference is a change of behaviour: if it is intended, regenerate with
`python -m tests.golden.push.make` and say why in the commit (docs/sync.md, "Golden corpus").
"""

from __future__ import annotations

import difflib
import json
from typing import Any

import pytest

from tests.golden.push import coverage
from tests.golden.push.driver import GOLDEN, golden_lines, read_golden
from tests.system.conftest import fresh_postgres_store

MAX_SHOWN = 12  # differing lines described in a failure


@pytest.fixture(scope="module")
def lines(server_engine) -> list[str]:
    """The corpus's lines on SQLite files, and (a second run) on PostgreSQL schemas: both
    engines must give the recorded bytes."""
    if server_engine == "sqlite":
        return golden_lines()
    return golden_lines(store=fresh_postgres_store)


def test_every_push_answer_and_stored_row_is_as_recorded(lines):
    expected = read_golden()
    if lines == expected:
        return
    pytest.fail(describe_difference(expected, lines), pytrace=False)


def test_corpus_produces_every_code_the_code_defines(lines):
    wanted, found = coverage.required(), coverage.produced(lines)
    missing = {name: sorted(wanted[name] - found[name]) for name in wanted}
    missing = {name: codes for name, codes in missing.items() if codes}
    assert not missing, (
        f"the golden corpus never produces {missing}: add pushes that do to LATER in "
        "tests/golden/push/scripted.py (docs/sync.md, Golden corpus), then regenerate with "
        "`python -m tests.golden.push.make`"
    )


def test_profiles_answer_differently_where_their_rules_differ(lines):
    # cn-bank allows visits until 22:00 where default stops at 21:00: the same corpus must
    # raise outside_visit_hours less often under it, or the profile was not applied.
    def hours_flags(profile: str) -> int:
        return sum(
            text.count('"code":"outside_visit_hours"')
            for text in lines
            if f'"profile":"{profile}"' in text and '"table":"sync_records"' in text
        )

    assert 0 < hours_flags("cn-bank") < hours_flags("default")
    assert hours_flags("us-regf") == hours_flags("default")


def describe_difference(expected: list[str], actual: list[str]) -> str:
    """Where the run differs from the recorded lines: a count, then each differing line
    pair with the JSON paths whose values differ, then a unified diff of the first lines."""
    matcher = difflib.SequenceMatcher(None, expected, actual, autojunk=False)
    parts = [
        f"push golden corpus differs from {GOLDEN.name}: "
        f"{len(expected)} lines recorded, {len(actual)} now"
    ]
    shown = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        for old, new in zip(expected[i1:i2], actual[j1:j2], strict=False):
            if shown < MAX_SHOWN:
                parts.append(f"line {i1 + 1}: {_where(new)}")
                parts.extend(
                    f"    {path}" for path in json_differences(json.loads(old), json.loads(new))
                )
            shown += 1
        for extra, label in (
            (expected[i1 + (j2 - j1) : i2], "only recorded"),
            (actual[j1 + (i2 - i1) : j2], "only now"),
        ):
            for text in extra:
                if shown < MAX_SHOWN:
                    parts.append(f"{label} ({_where(text)}): {text[:300]}")
                shown += 1
    parts.append(f"{shown} line(s) differ in all")
    diff = list(difflib.unified_diff(expected, actual, "recorded", "now", n=0, lineterm=""))
    parts.append("\n".join(text[:300] for text in diff[:40]))
    parts.append("intended? regenerate: python -m tests.golden.push.make")
    return "\n".join(parts)


def _where(text: str) -> str:
    data = json.loads(text)
    keys = ("profile", "push", "i", "table", "change")
    return " ".join(f"{k}={data[k]}" for k in keys if k in data)


def json_differences(old: Any, new: Any, path: str = "") -> list[str]:
    """The paths at which two JSON values differ, with both values (at most 10)."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(old.keys() | new.keys()):
            found += json_differences(
                old.get(key, "<absent>"), new.get(key, "<absent>"), f"{path}.{key}"
            )
        return found[:10]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        found = []
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            found += json_differences(a, b, f"{path}[{index}]")
        return found[:10]
    if old == new:
        return []
    return [f"{path or '.'}: recorded {json.dumps(old)[:200]} now {json.dumps(new)[:200]}"]
