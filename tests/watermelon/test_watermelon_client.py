"""The real WatermelonDB client against a real server: `@nozbe/watermelondb`'s synchronize()
(LokiJS adapter, Node) drives an agent's day through the WatermelonDB front door of a
gunicorn server (scenarios.js), and the store is read afterwards.

Node comes from the machine; the library from the pinned package-lock.json (`npm ci`, run
only when node_modules does not match the lock). Without node the test fails under CI=true
and is skipped, loudly, elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from loadtest.server_process import PASSWORD, Gunicorn, load_demo, server_env
from server.demo import data as demo_data
from sync.canonical import agreement_content_hash
from sync.visits import VISIT_PURPOSES
from sync.watermelon import SCHEMA_VERSION, TABLES

HERE = Path(__file__).resolve().parent
LOCK = HERE / "package-lock.json"
MARK = HERE / "node_modules" / ".doorstep-lock-sha256"
PNG = b"\x89PNG\r\n\x1a\n"


def _node() -> str:
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node and npm:
        return node
    message = "node and npm (Node 20) are needed to run the WatermelonDB client proof"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    warnings.warn(f"SKIPPED: {message}", stacklevel=2)
    pytest.skip(message)


def _npm_ci() -> None:
    """Install the pinned library, unless node_modules already holds this lock's tree."""
    wanted = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if MARK.exists() and MARK.read_text().strip() == wanted:
        return
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=HERE,
        check=True,
        timeout=600,
        capture_output=True,
    )
    MARK.write_text(wanted)


def _app_schema() -> dict:
    """The schema of docs/watermelondb.md (`sync.watermelon.app_schema_js`), as data."""
    return {
        "version": SCHEMA_VERSION,
        "tables": [
            {
                "name": table.name,
                "columns": [
                    {
                        "name": c.name,
                        "type": c.type,
                        "isOptional": True,
                        **({"isIndexed": True} if c.name in ("visit_id", "record_id") else {}),
                    }
                    for c in table.columns
                ],
            }
            for table in TABLES
        ],
    }


def _one(db: sqlite3.Connection, sql: str, *params):
    return db.execute(sql, params).fetchone()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("watermelon")
    env = server_env(folder)
    load_demo(env, agents=2, visits_per_agent=3, borrowers=60)
    process = Gunicorn(env, folder / "server.log", workers=1)
    process.start()
    try:
        yield process, folder / "doorstep.db"
    finally:
        process.stop()


def _config(db: sqlite3.Connection, base_url: str) -> tuple[dict, dict]:
    # The demo plans the day in its borrowers' time zone (a UTC date is yesterday there
    # in the first hours of a Shanghai morning).
    today = datetime.now(ZoneInfo(demo_data.TIME_ZONE)).date()
    agent_id, badge = _one(
        db,
        "SELECT u.id, a.badge_number FROM users u JOIN agents a ON a.user_id = u.id "
        "WHERE u.username = 'agent01'",
    )
    visit_id, case_id, national_id = _one(
        db,
        "SELECT v.id, v.case_id, b.national_id FROM visits v JOIN cases c ON c.id = v.case_id "
        "JOIN borrowers b ON b.id = c.borrower_id WHERE v.agent_id = ? AND v.visit_date = ? "
        "ORDER BY v.id",
        agent_id,
        today.isoformat(),
    )
    other_agent = _one(db, "SELECT id FROM users WHERE username = 'agent02'")[0]
    blobs = {"borrower": PNG + b"borrower-signature", "agent": PNG + b"agent-signature"}
    agreement_id = str(uuid.uuid4())
    signed_at = (datetime.now(UTC) - timedelta(minutes=12)).strftime("%Y-%m-%dT%H:%M:%SZ")
    columns = {
        "case_id": case_id,
        "currency": "CNY",
        "total_amount": "1200.00",
        "installments": [
            {"due_date": (today + timedelta(days=30)).isoformat(), "amount": "600.00"},
            {"due_date": (today + timedelta(days=60)).isoformat(), "amount": "600.00"},
        ],
        "template_id": "repayment-plan-zh",
        "template_version": 1,
        "borrower_signature_sha256": hashlib.sha256(blobs["borrower"]).hexdigest(),
        "agent_signature_sha256": hashlib.sha256(blobs["agent"]).hexdigest(),
        "signed_at": signed_at,
        "signed_lat": "31.193801",
        "signed_lon": "121.551980",
    }
    body = {**columns, "agreement_id": agreement_id, "visit_id": visit_id}
    columns["content_hash"] = agreement_content_hash(body)
    columns["installments"] = json.dumps(columns["installments"])
    account = {"password": PASSWORD}
    config = {
        "base_url": base_url,
        "schema": _app_schema(),
        "agent": {**account, "username": "agent01", "badge": badge},
        "dispatcher": {**account, "username": "dispatcher01"},
        "admin": {**account, "username": "admin01"},
        "other_agent_id": other_agent,
        "id_last6": national_id[-6:],
        "agreement": {"id": agreement_id, "visit_id": visit_id, "columns": columns},
        "blobs": [
            {
                "sha256": hashlib.sha256(data).hexdigest(),
                "base64": base64.b64encode(data).decode(),
                "content_type": "image/png",
            }
            for data in blobs.values()
        ],
    }
    facts = {"agent_id": agent_id, "visit_id": visit_id, "national_id": national_id}
    return config, facts


def test_synchronize_drives_an_agents_day(server, tmp_path):
    node = _node()
    _npm_ci()
    process, db_path = server
    db = sqlite3.connect(db_path)
    try:
        config, facts = _config(db, process.base_url)
        (tmp_path / "config.json").write_text(json.dumps(config))
        run = subprocess.run(
            [
                node,
                str(HERE / "scenarios.js"),
                str(tmp_path / "config.json"),
                str(tmp_path / "out.json"),
            ],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=300,
        )
        written = tmp_path / "out.json"
        assert written.exists(), f"node exited {run.returncode}: {run.stderr[-3000:]}"
        out = json.loads(written.read_text())
        assert out["ok"], (out.get("error"), run.stderr[-2000:])
        device = out["device_id"]
        _check(db, out, config, facts, device)
    finally:
        db.close()


def _check(db: sqlite3.Connection, out: dict, config: dict, facts: dict, device: str) -> None:
    first = out["first_pull"]
    assert str(facts["visit_id"]) in first["visits"] and len(first["visits"]) >= 2
    assert first["with_card"] == len(first["visits"])
    assert "display_name" in first["columns"] and "home_lat" in first["columns"]
    # the borrower's ID number is nowhere on the phone's tables
    assert not [c for c in first["columns"] if "national" in c or c == "id_number"]

    ids = out["offline"]["ids"]
    assert out["offline"]["pending"] == 4
    assert out["push"]["pending_after"] == 0

    outcomes = out["outcomes"]["by_record"]
    for name in ("credential", "identity", "report", "agreement"):
        assert outcomes[name] and outcomes[name]["status"] in ("accepted", "flagged"), outcomes
    assert outcomes["identity"]["id_verification"] == "match"
    assert outcomes["report"]["kind"] == "visit_report"
    assert outcomes["agreement"]["receipt"]["agreement_id"] == ids["agreement"]
    # the typed characters were cleared on the phone once answered, without a new push
    assert out["outcomes"]["typed_id_left_on_phone"] is None
    assert out["outcomes"]["identity_status"] == "synced"

    moved = out["reassigned"]
    assert moved["present_after"] is False
    confirmed = _one(
        db,
        "SELECT purge_reason, purge_confirmed_at FROM device_cards "
        "WHERE device_id = ? AND visit_id = ?",
        device,
        int(moved["visit_id"]),
    )
    assert confirmed[0] == "reassigned" and confirmed[1] is not None

    replay = out["replay"]
    assert replay["lost"] and replay["pending_after_lost_answer"] == 1
    assert replay["pending_after_retry"] == 0
    assert replay["replay_answer"]["experimentalRejectedIds"] == {}

    stored = dict(
        db.execute("SELECT id, kind FROM sync_records WHERE device_id = ?", [device]).fetchall()
    )
    assert stored == {
        ids["credential"]: "id_confirmation",
        ids["identity"]: "id_confirmation",
        ids["report"]: "visit_report",
        ids["agreement"]: "agreement",
        ids["contact"]: "contact",
    }
    assert _one(db, "SELECT count(*) FROM sync_rejections WHERE device_id = ?", device)[0] == 0
    assert (
        _one(
            db, "SELECT count(*) FROM agreement_receipts WHERE agreement_id = ?", ids["agreement"]
        )[0]
        == 1
    )
    # the typed characters were compared, never kept
    bodies = " ".join(row[0] for row in db.execute("SELECT body FROM sync_records"))
    assert config["id_last6"] not in bodies and facts["national_id"] not in bodies

    revoked = out["revoked"]
    assert revoked["refusal"]["status"] == 401
    assert revoked["refusal"]["error"]["code"] == "device_revoked"
    assert revoked["refusal"]["error"]["details"]["wipe"] is True
    assert revoked["rows_left"] == 0

    # the cards and outcomes the phone received are in the exposure ledger, for this device
    entries = db.execute(
        "SELECT fields, purpose FROM exposure_ledger WHERE device_id = ? AND endpoint = ?",
        [device, "GET /api/v1/sync/watermelon/pull"],
    ).fetchall()
    facts_served = set().union(*(json.loads(fields) for fields, _ in entries))
    assert {"display_name", "id_result"} <= facts_served
    # as for a native pull: a card under its visit's purpose, an outcome as compliance evidence
    assert {purpose for _, purpose in entries} <= {*VISIT_PURPOSES, "compliance_evidence"}
