"""Online backups taken while agents are served, and restores that refuse unsound copies."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from server import create_app
from server.services.audit import verify
from server.storage import migrations
from server.storage.backups import open_read_only
from server.storage.connection import open_db
from tests.conftest import TODAY, Auth

AGENTS = ("agent1", "agent2")


def _app_on(database: Path, key_file: Path, clock):
    """The app started on another database file, with the same signing key."""
    return create_app(
        {
            "DATABASE": str(database),
            "SIGNING_KEY_FILE": str(key_file),
            "CLOCK": clock,
            "PASSWORD_TIME_COST": 1,
            "PASSWORD_MEMORY_COST_KIB": 1024,
            "DOORSTEP_ENV": "development",
            "RATE_PER_DEVICE_PER_MIN": 0,
            "RATE_PER_ADDRESS_PER_MIN": 0,
        }
    )


def _key_file(app) -> Path:
    return Path(app.config["DATABASE"]).with_suffix(".signing-key.pem")


def _counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
    finally:
        conn.close()


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def _ledger_report(path: Path, app) -> dict:
    db = open_read_only(path)
    try:
        return verify(db, app.extensions["doorstep"])
    finally:
        db.conn.close()


def _serve(client, auth, rounds: int = 1) -> None:
    for _ in range(rounds):
        for agent in AGENTS:
            response = client.get(f"/api/v1/me/day?date={TODAY}", headers=auth.headers(agent))
            assert response.status_code == 200, response.json


@pytest.fixture
def backup_file(world, app, client, auth, tmp_path) -> Path:
    """A checked backup of a world whose ledger has entries and a signed checkpoint."""
    _serve(client, auth, rounds=2)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["checkpoint"]).exit_code == 0
    _serve(client, auth)
    dest = tmp_path / "backups" / "doorstep-backup.db"
    result = runner.invoke(args=["backup", str(dest)])
    assert result.exit_code == 0, result.output
    return dest


@pytest.fixture
def empty_app(app, tmp_path, clock):
    """A second deployment whose configured database does not hold data yet."""
    return _app_on(tmp_path / "restored" / "doorstep.db", _key_file(app), clock)


def test_backup_while_agents_are_served_is_sound(world, app, auth, tmp_path):
    headers = {agent: auth.headers(agent) for agent in AGENTS}
    stop, statuses = threading.Event(), []

    def serve_agents() -> None:
        client = app.test_client()
        while not stop.is_set():
            for agent in AGENTS:
                url = f"/api/v1/me/day?date={TODAY}"
                statuses.append(client.get(url, headers=headers[agent]).status_code)

    writer = threading.Thread(target=serve_agents)
    writer.start()
    runner, heads, overlapped = app.test_cli_runner(), [], []
    started = time.monotonic()
    try:
        while len(statuses) < 4:
            time.sleep(0.01)
        for n in range(4):
            dest = tmp_path / f"backup-{n}.db"
            served_before = len(statuses)
            result = runner.invoke(args=["backup", str(dest)])
            overlapped.append(len(statuses) > served_before)
            assert result.exit_code == 0, result.output
            assert "integrity: ok" in result.output and ", intact" in result.output
            assert _integrity(dest) == "ok"
            report = _ledger_report(dest, app)
            assert report["intact"] is True, report
            heads.append(report["head_seq"])
            time.sleep(0.3)
    finally:
        stop.set()
        writer.join()
    assert time.monotonic() - started >= 1.0
    assert statuses and set(statuses) == {200}
    # The writer kept committing during and between the backups.
    assert any(overlapped), overlapped
    assert heads == sorted(heads) and len(set(heads)) >= 3, heads
    assert _counts(Path(app.config["DATABASE"]))["exposure_ledger"] > heads[-1]
    assert not list(tmp_path.glob(".*.tmp*"))


def test_restore_into_a_new_deployment_serves_an_intact_ledger(
    backup_file, app, empty_app, tmp_path, clock
):
    in_backup = _counts(backup_file)
    target = Path(empty_app.config["DATABASE"])
    result = empty_app.test_cli_runner().invoke(args=["restore", str(backup_file)])
    assert result.exit_code == 0, result.output
    assert f"restored {target}" in result.output
    assert "integrity: ok" in result.output and ", intact" in result.output
    assert "schema up to date" in result.output
    assert _counts(target) == in_backup
    assert not list(target.parent.glob(".*.tmp*"))

    started = _app_on(target, _key_file(app), clock)
    client = started.test_client()
    response = client.get("/api/v1/audit/verify", headers=Auth(client).headers("privacy"))
    assert response.status_code == 200
    assert response.json["intact"] is True
    assert response.json["head_seq"] == in_backup["exposure_ledger"]
    assert client.get("/api/v1/ready").status_code == 200


def test_restore_refuses_a_backup_whose_ledger_was_tampered(backup_file, empty_app):
    conn = sqlite3.connect(backup_file)
    conn.execute("DROP TRIGGER exposure_ledger_no_update")
    conn.execute("UPDATE exposure_ledger SET purpose = 'marketing' WHERE seq = 2")
    conn.commit()
    conn.close()
    target = Path(empty_app.config["DATABASE"])
    result = empty_app.test_cli_runner().invoke(args=["restore", str(backup_file)])
    assert result.exit_code == 1
    assert "restore refused: the exposure ledger in" in result.output
    assert "does not verify: entry 2: entry content does not match its hash" in result.output
    assert _counts(target)["exposure_ledger"] == 0
    assert not list(target.parent.glob(".*.tmp*"))


def _ledger_root_page(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        sql = "SELECT rootpage FROM sqlite_master WHERE name = 'exposure_ledger'"
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


@pytest.mark.parametrize("where", ["ledger root page", "middle of the file"])
def test_restore_refuses_a_corrupted_file(backup_file, empty_app, where):
    size = backup_file.stat().st_size
    page_size = int.from_bytes(backup_file.read_bytes()[16:18], "big")
    if where == "ledger root page":
        offset = (_ledger_root_page(backup_file) - 1) * page_size
    else:
        offset = size // 2 - (size // 2) % page_size
    with backup_file.open("r+b") as handle:  # flip the bytes of a b-tree page header
        handle.seek(offset)
        flipped = bytes(b ^ 0xFF for b in handle.read(16))
        handle.seek(offset)
        handle.write(flipped)
    target = Path(empty_app.config["DATABASE"])
    result = empty_app.test_cli_runner().invoke(args=["restore", str(backup_file)])
    assert result.exit_code == 1
    assert f"restore refused: {backup_file} fails integrity_check:" in result.output
    assert _counts(target)["users"] == 0
    assert not list(target.parent.glob(".*.tmp*"))


def _leave_a_stale_wal(database: Path) -> None:
    """Commit into the WAL and keep the files a crashed server would have left behind."""
    conn = sqlite3.connect(database)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("INSERT INTO retention_gate (table_name) VALUES ('left by a crash')")
    conn.commit()
    kept = {s: Path(f"{database}{s}").read_bytes() for s in ("-wal", "-shm")}
    conn.close()
    for suffix, data in kept.items():
        Path(f"{database}{suffix}").write_bytes(data)


def test_restore_over_a_database_with_data_needs_force(backup_file, app, client, auth):
    live = Path(app.config["DATABASE"])
    _serve(client, auth, rounds=2)  # the live database moves on after the backup
    before = _counts(live)
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["restore", str(backup_file)])
    assert refused.exit_code == 1
    assert "already holds data; pass --force" in refused.output
    assert _counts(live) == before

    _leave_a_stale_wal(live)
    forced = runner.invoke(args=["restore", str(backup_file), "--force"])
    assert forced.exit_code == 0, forced.output
    assert not Path(f"{live}-wal").exists() and not Path(f"{live}-shm").exists()
    assert _integrity(live) == "ok"
    assert _counts(live) == _counts(backup_file) != before
    response = client.get("/api/v1/audit/verify", headers=auth.headers("privacy"))
    assert response.json["intact"] is True


def test_an_older_backup_is_upgraded_on_restore(empty_app, tmp_path, monkeypatch):
    old = tmp_path / "old.db"
    db = open_db(str(old))
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:3])
    migrations.migrate(db, "2025-01-01T00:00:00Z")
    db.conn.close()
    monkeypatch.undo()
    result = empty_app.test_cli_runner().invoke(args=["restore", str(old)])
    assert result.exit_code == 0, result.output
    upgrades = list(range(4, len(migrations.MIGRATIONS) + 1))
    assert f"migrations applied: {upgrades}" in result.output
    restored = open_db(empty_app.config["DATABASE"])
    try:
        assert "raw_digest" in restored["sync_records"].columns_dict
    finally:
        restored.conn.close()


def test_backup_refuses_its_own_database_and_can_skip_checks(app, tmp_path):
    runner = app.test_cli_runner()
    same = runner.invoke(args=["backup", app.config["DATABASE"]])
    assert same.exit_code == 1 and "is the live database itself" in same.output
    quick = runner.invoke(args=["backup", str(tmp_path / "quick.db"), "--no-verify"])
    assert quick.exit_code == 0, quick.output
    assert "integrity: not checked" in quick.output and "not verified" in quick.output
    assert _integrity(tmp_path / "quick.db") == "ok"


def test_restore_refuses_a_file_that_is_not_a_doorstep_database(empty_app, tmp_path):
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    result = empty_app.test_cli_runner().invoke(args=["restore", str(other)])
    assert result.exit_code == 1 and "is not a Doorstep database" in result.output
