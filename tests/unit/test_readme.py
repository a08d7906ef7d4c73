"""The README's configuration table is the whole truth about server/config.py's settings."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path

from server.config import DEFAULTS

README = Path(__file__).parents[2] / "README.md"
ROW = re.compile(r"^\|(?P<cells>.*)\|\s*$")


def env_name(key: str) -> str:
    """The environment variable that sets this key (as server/config.py reads it)."""
    return key if key.startswith("DOORSTEP_") else f"DOORSTEP_{key}"


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def configuration_rows() -> list[list[str]]:
    """The cells of each data row of the table under '## Configuration'."""
    rows = []
    for line in _section(README.read_text(), "Configuration").splitlines():
        match = ROW.match(line)
        if match:
            rows.append([cell.strip() for cell in match.group("cells").split("|")])
    header, rule, *data = rows
    assert header == ["variable", "default", "meaning"], header
    assert set("".join(rule)) <= {"-", ":"}, rule
    return data


def test_the_table_lists_exactly_the_settings_one_row_each():
    rows = configuration_rows()
    names = []
    for variable, _, _ in rows:
        match = re.fullmatch(r"`(DOORSTEP_[A-Z0-9_]+)`", variable)
        assert match, f"one variable per row, in backticks: {variable!r}"
        names.append(match.group(1))
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    expected = {env_name(key) for key in DEFAULTS}
    assert set(names) - expected == set(), "in the README but not in DEFAULTS"
    assert expected - set(names) == set(), "in DEFAULTS but not in the README"


def as_written(value: object) -> str:
    """A default as the table writes it: times as HH:MM, lists comma-separated."""
    if value in (None, ""):
        return "unset"
    if isinstance(value, time):
        return f"`{value:%H:%M}`"
    if isinstance(value, tuple):
        return f"`{','.join(value)}`"
    return f"`{value}`"


def test_each_row_gives_the_real_default_and_a_meaning():
    by_name = {row[0].strip("`"): row for row in configuration_rows()}
    for key, value in DEFAULTS.items():
        _, default, meaning = by_name[env_name(key)]
        assert default == as_written(value), (key, default)
        assert len(meaning) > 10, (key, meaning)


def test_every_variable_the_readme_mentions_is_a_setting():
    text = README.read_text()
    mentioned = set(re.findall(r"\bDOORSTEP_[A-Z0-9_]*[A-Z0-9]\b", text))
    # The test run's own variable (where the PostgreSQL half runs), not a server setting.
    mentioned.discard("DOORSTEP_TEST_POSTGRES_URL")
    assert mentioned - {env_name(key) for key in DEFAULTS} == set()


def test_ci_runs_exactly_the_readme_test_command():
    section = _section(README.read_text(), "Test it")
    command = re.search(r"```sh\n(.+?)\n```", section, re.S).group(1)
    ci = (README.parent / ".ci" / "run").read_text().splitlines()
    assert command in ci
