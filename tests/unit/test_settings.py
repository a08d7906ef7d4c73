"""Every setting the server reads is declared in server/config.py, and the environment sets it."""

import ast
from dataclasses import fields
from datetime import time
from pathlib import Path

import pytest

from server import create_app
from server.config import DEFAULTS, load_settings
from server.domain.anomaly_rules import AnomalyThresholds, setting_name
from server.domain.retention import RetentionRules

ROOT = Path(__file__).resolve().parents[2]
# Readers whose key is computed; each maps to the keys it can read.
DYNAMIC_READERS = {
    "server/domain/anomaly_rules.py": {setting_name(f.name) for f in fields(AnomalyThresholds)},
}


def _is_settings(node: ast.expr) -> bool:
    """`settings`, `rt.settings`, `self.rt.settings`, ..."""
    if isinstance(node, ast.Name):
        return node.id == "settings"
    return isinstance(node, ast.Attribute) and node.attr == "settings"


def _reads(path: Path) -> tuple[set[str], list[int]]:
    """Literal keys read from a settings mapping in one module, and lines of computed reads."""
    keys: set[str] = set()
    computed: list[int] = []
    taken: set[int] = set()  # the `.get` of calls already looked at

    def take(key: ast.expr, line: int) -> None:
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            keys.add(key.value)
        else:
            computed.append(line)

    # ast.walk visits a call before the attribute it calls.
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and _is_settings(node.func.value)
            and node.args
        ):
            taken.add(id(node.func))
            take(node.args[0], node.lineno)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            if _is_settings(node.value):
                take(node.slice, node.lineno)
        elif (
            isinstance(node, ast.Attribute)
            and _is_settings(node.value)
            and node.attr in ("get", "items", "keys", "values")
            and id(node) not in taken
        ):
            computed.append(node.lineno)
    return keys, computed


def _server_reads() -> tuple[dict[str, set[str]], dict[str, list[int]]]:
    keys, computed = {}, {}
    for path in sorted((ROOT / "server").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if name == "server/config.py":  # the module that declares and loads them
            continue
        keys[name], lines = _reads(path)
        if lines:
            computed[name] = lines
    return keys, computed


def test_the_scan_finds_reads_of_every_shape(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "a = rt.settings['A']\nb = settings.get('B', 1)\nc = self.rt.settings['C']\n"
        "d = settings[name]\nsettings['E'] = 1\nget = rt.settings.get\n"
    )
    keys, computed = _reads(module)
    assert keys == {"A", "B", "C"}
    assert computed == [4, 6]


def test_every_setting_read_is_declared_with_a_default():
    keys, computed = _server_reads()
    assert set(computed) <= set(DYNAMIC_READERS), computed
    read = set().union(*keys.values(), *DYNAMIC_READERS.values())
    undeclared = {k: [m for m, ks in keys.items() if k in ks] for k in read - set(DEFAULTS)}
    assert undeclared == {}


def test_every_declared_setting_is_read_somewhere():
    keys, _ = _server_reads()
    read = set().union(*keys.values(), *DYNAMIC_READERS.values())
    assert sorted(set(DEFAULTS) - read) == []


def test_retention_and_anomaly_defaults_live_only_in_config():
    rules = RetentionRules.from_settings(DEFAULTS)
    assert (rules.ledger_days, rules.evidence_days, rules.personal_days) == (365, 1095, 180)
    thresholds = AnomalyThresholds.from_settings(DEFAULTS)
    assert (thresholds.work_start, thresholds.work_end) == (time(7, 0), time(22, 0))
    with pytest.raises(TypeError):
        RetentionRules()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        AnomalyThresholds()  # type: ignore[call-arg]


def _as_env_text(value: object) -> str:
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, tuple):
        return ", ".join(value)
    return str(value)


@pytest.mark.parametrize("key", sorted(k for k, v in DEFAULTS.items() if v is not None))
def test_each_setting_is_parsed_to_its_defaults_type(key):
    name = key if key.startswith("DOORSTEP_") else f"DOORSTEP_{key}"
    parsed = load_settings({name: _as_env_text(DEFAULTS[key])})[key]
    assert parsed == DEFAULTS[key] and type(parsed) is type(DEFAULTS[key])


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("DOORSTEP_ANOMALY_WORK_START", "06:30", time(6, 30)),
        ("DOORSTEP_ANOMALY_VOLUME_FACTOR", "2.5", 2.5),
        ("DOORSTEP_ANOMALY_VOLUME_FLOOR", "50", 50),
        ("DOORSTEP_ANOMALY_WORK_START", "08:15", time(8, 15)),
        ("DOORSTEP_BLOB_CONTENT_TYPES", "image/jpeg, image/png,", ("image/jpeg", "image/png")),
        ("DOORSTEP_CONTROLLER_NAME", "Acme Lending", "Acme Lending"),
    ],
)
def test_environment_values_are_typed(name, raw, expected):
    key = name.removeprefix("DOORSTEP_")
    assert load_settings({name: raw})[key] == expected
    assert load_settings({name: ""})[key] == DEFAULTS[key]  # empty means unset


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("DOORSTEP_ANOMALY_WORK_START", "half past six"),
        ("DOORSTEP_ANOMALY_WORK_START", "06:30+08:00"),
        ("DOORSTEP_ANOMALY_VOLUME_FACTOR", "nan"),
        ("DOORSTEP_ANOMALY_VOLUME_FACTOR", "two"),
        ("DOORSTEP_ANOMALY_VOLUME_FLOOR", "2.5"),
        ("DOORSTEP_CHECKPOINT_EVERY", "many"),
    ],
)
def test_unreadable_environment_values_name_the_variable(name, raw):
    with pytest.raises(ValueError, match=name):
        load_settings({name: raw})


def test_text_in_test_config_is_parsed_like_the_environment():
    settings = load_settings({}, {"ANOMALY_WORK_END": "23:45", "ANOMALY_VOLUME_FLOOR": 12})
    assert (settings["ANOMALY_WORK_END"], settings["ANOMALY_VOLUME_FLOOR"]) == (time(23, 45), 12)


def test_environment_reaches_the_runtime_and_it_is_read_only(tmp_path, monkeypatch):
    monkeypatch.setenv("DOORSTEP_ANOMALY_WORK_START", "06:30")
    monkeypatch.setenv("DOORSTEP_ANOMALY_CARDS_PER_REPORT_RATIO", "4.5")
    monkeypatch.setenv("DOORSTEP_PERSONAL_DATA_RETENTION_DAYS", "90")
    monkeypatch.setenv("DOORSTEP_CONTROLLER_NAME", "Acme Lending")
    app = create_app({"DATABASE": str(tmp_path / "env.db")})
    rt = app.extensions["doorstep"]
    thresholds = AnomalyThresholds.from_settings(rt.settings)
    assert thresholds.work_start == time(6, 30)
    assert thresholds.cards_per_report_ratio == 4.5
    assert RetentionRules.from_settings(rt.settings).personal_days == 90
    assert rt.settings["CONTROLLER_NAME"] == "Acme Lending"
    with pytest.raises(TypeError):
        rt.settings["ANOMALY_WORK_START"] = time(5, 0)  # type: ignore[index]
