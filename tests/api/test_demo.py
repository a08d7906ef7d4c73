"""`flask demo`: passwords kept across runs, the logins file, and URLs on the chosen port."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from server import create_app
from server.config import load_settings

SMALL = ["demo", "--borrowers", "60", "--agents", "2", "--visits-per-agent", "2"]
USERNAMES = ["agent01", "agent02", "dispatcher01", "dispatcher02", "privacy01", "admin01"]


def _app(tmp_path: Path, clock, **settings):
    return create_app(
        {
            "DATABASE": str(tmp_path / "data" / "doorstep.db"),
            "CLOCK": clock,
            "PASSWORD_TIME_COST": 1,
            "PASSWORD_MEMORY_COST_KIB": 1024,
            "DOORSTEP_ENV": "development",
            "DEMO_PASSWORD": None,
            "RUN_PORT": 5000,
            "PUBLIC_URL": "",
            **settings,
        }
    )


def _run(app, *extra: str) -> str:
    result = app.test_cli_runner().invoke(args=[*SMALL, *extra])
    assert result.exit_code == 0, result.output
    return result.output


def _logins(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "data" / "demo-logins.json").read_text())


def _passwords(tmp_path: Path) -> dict[str, str]:
    return {a["username"]: a["password"] for a in _logins(tmp_path)["accounts"]}


def _login_status(app, username: str, password: str) -> int:
    body = {"username": username, "password": password}
    if username.startswith("agent"):
        body["device_id"] = f"phone-{username}"
    return app.test_client().post("/api/v1/auth/login", json=body).status_code


@pytest.fixture
def demo_app(tmp_path, clock):
    return _app(tmp_path, clock)


def test_the_logins_file_lists_every_account_in_its_documented_shape(demo_app, tmp_path):
    output = _run(demo_app)

    path = tmp_path / "data" / "demo-logins.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"saved in {path}" in output
    document = _logins(tmp_path)
    assert set(document) == {"base_url", "accounts"}
    assert document["base_url"] == "http://127.0.0.1:5000/api/v1"
    assert [(a["username"], a["role"], a["device_id"]) for a in document["accounts"]] == [
        ("agent01", "agent", "phone-agent01"),
        ("agent02", "agent", "phone-agent02"),
        ("dispatcher01", "dispatcher", None),
        ("dispatcher02", "dispatcher", None),
        ("privacy01", "privacy_officer", None),
        ("admin01", "admin", None),
    ]
    for account in document["accounts"]:
        assert set(account) == {"username", "password", "role", "device_id"}
        assert account["password"] in output
        assert _login_status(demo_app, account["username"], account["password"]) == 200


def test_running_the_demo_again_keeps_every_password(demo_app, tmp_path):
    _run(demo_app)
    first = _passwords(tmp_path)

    output = _run(demo_app, "--agents", "3")

    again = _passwords(tmp_path)
    assert {name: again[name] for name in first} == first
    assert set(again) == {*first, "agent03"}
    assert "Logins (1 new, 6 kept)" in output
    assert _login_status(demo_app, "agent01", first["agent01"]) == 200
    assert _login_status(demo_app, "agent03", again["agent03"]) == 200


def test_reset_passwords_gives_every_account_a_new_one(demo_app, tmp_path):
    _run(demo_app)
    before = _passwords(tmp_path)

    output = _run(demo_app, "--reset-passwords")

    after = _passwords(tmp_path)
    assert set(after) == set(before) == set(USERNAMES)
    assert all(after[name] != before[name] for name in USERNAMES)
    assert "Logins (6 with a new password)" in output
    assert _login_status(demo_app, "dispatcher01", before["dispatcher01"]) == 401
    assert _login_status(demo_app, "dispatcher01", after["dispatcher01"]) == 200


def test_a_smaller_rerun_keeps_the_other_accounts_in_the_file(demo_app, tmp_path):
    _run(demo_app, "--agents", "3")
    first = _passwords(tmp_path)

    _run(demo_app)

    assert _passwords(tmp_path) == first


def test_without_the_file_kept_passwords_are_reported_unknown(demo_app, tmp_path):
    _run(demo_app)
    before = _passwords(tmp_path)
    (tmp_path / "data" / "demo-logins.json").unlink()

    output = _run(demo_app)

    assert "Logins (6 kept but not known here)" in output
    assert "--reset-passwords" in output
    assert _logins(tmp_path)["accounts"] == []
    assert _login_status(demo_app, "admin01", before["admin01"]) == 200
    _run(demo_app, "--reset-passwords")
    assert set(_passwords(tmp_path)) == set(USERNAMES)


def test_a_stale_password_in_the_file_is_not_passed_on(demo_app, tmp_path):
    _run(demo_app)
    path = tmp_path / "data" / "demo-logins.json"
    document = json.loads(path.read_text())
    document["accounts"][0]["password"] = "not-the-password"
    path.write_text(json.dumps(document))

    output = _run(demo_app)

    assert "Logins (5 kept, 1 kept but not known here)" in output
    assert "agent01" not in _passwords(tmp_path)
    assert "not-the-password" not in path.read_text()


def test_an_unreadable_file_is_ignored_with_a_warning(demo_app, tmp_path):
    _run(demo_app)
    (tmp_path / "data" / "demo-logins.json").write_text("{not json")

    output = _run(demo_app)

    assert "cannot read the logins file" in output
    assert "Logins (6 kept but not known here)" in output


def test_a_demo_password_is_given_to_every_account(tmp_path, clock):
    _run(_app(tmp_path, clock))
    fixed = _app(tmp_path, clock, DEMO_PASSWORD="one-for-all-demo")

    output = _run(fixed)

    assert set(_passwords(tmp_path).values()) == {"one-for-all-demo"}
    assert "Logins (6 with a new password)" in output
    assert "Logins (6 kept)" in _run(fixed)
    assert _login_status(fixed, "privacy01", "one-for-all-demo") == 200


def test_urls_are_printed_with_the_chosen_port(tmp_path, clock):
    output = _run(_app(tmp_path, clock, RUN_PORT=5055))

    assert "API:  http://127.0.0.1:5055/api/v1" in output
    assert "Docs: http://127.0.0.1:5055/api/v1/docs" in output
    assert "flask --app wsgi run --port 5055" in output
    assert "curl -s -XPOST http://127.0.0.1:5055/api/v1/auth/login" in output
    assert ":5000" not in output
    assert _logins(tmp_path)["base_url"] == "http://127.0.0.1:5055/api/v1"


def test_a_public_url_replaces_the_local_address(tmp_path, clock):
    output = _run(_app(tmp_path, clock, PUBLIC_URL="https://doorstep.example.org/"))

    assert "API:  https://doorstep.example.org/api/v1" in output
    assert "127.0.0.1" not in output
    assert _logins(tmp_path)["base_url"] == "https://doorstep.example.org/api/v1"


@pytest.mark.parametrize(
    "environ, port",
    [
        ({}, 5000),
        ({"FLASK_RUN_PORT": "5055"}, 5055),
        ({"DOORSTEP_RUN_PORT": "6000", "FLASK_RUN_PORT": "5055"}, 6000),
        ({"DOORSTEP_RUN_PORT": "", "FLASK_RUN_PORT": "5055"}, 5055),
    ],
)
def test_the_run_port_comes_from_flask_run_port_or_doorstep_run_port(environ, port):
    settings = load_settings(environ)
    assert settings["RUN_PORT"] == port
    assert settings["PUBLIC_URL"] == ""


def test_the_logins_file_lands_in_the_stores_own_folder(
    make_app, tmp_path, store_engine, store_target, monkeypatch
):
    """Beside the SQLite file; for PostgreSQL, whose URL names no folder, in the state
    folder (it once went to a folder called `postgresql:` under the working directory)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    app = make_app(DEMO_PASSWORD=None, RUN_PORT=5000, PUBLIC_URL="")
    _run(app)
    folder = tmp_path if store_engine == "postgresql" else Path(store_target).parent
    logins = json.loads((folder / "demo-logins.json").read_text())
    assert {a["username"] for a in logins["accounts"]} >= set(USERNAMES)
    assert list(cwd.iterdir()) == []
