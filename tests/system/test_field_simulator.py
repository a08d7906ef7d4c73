"""The reference client and the field simulator against a real server process on loopback."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from loadtest.logins import demo_logins
from loadtest.server_process import PASSWORD, ROOT, Gunicorn, load_demo, store_env
from sync.client import CHUNK_BYTES, FieldClient, HttpTransport
from tests import postgres


@pytest.fixture(scope="module")
def base_url(tmp_path_factory, server_engine) -> str:
    """A server for the module, on SQLite and (a second module run) on PostgreSQL."""
    folder = tmp_path_factory.mktemp("server")
    database = None
    if server_engine == "postgresql":
        schema, database = postgres.create_schema(postgres.server_url())
    # Tokens that expire during the run (1 s + the server's 5 s leeway): phones offline
    # longer than that must refresh and lose nothing.
    env = store_env(folder, database, DOORSTEP_ACCESS_TOKEN_TTL_S="1")
    load_demo(env, agents=4, visits_per_agent=5, borrowers=200)
    server = Gunicorn(env, folder / "server.log", workers=2)
    try:
        server.start()
        yield server.base_url
    finally:
        server.stop()
        if database is not None:
            postgres.drop_schema(postgres.server_url(), schema)


def _write_logins(path, base_url: str) -> None:
    """The demo's logins file, as `flask demo` writes it."""
    accounts = [
        {
            "username": login.username,
            "password": login.password,
            "role": login.role,
            "device_id": f"phone-{login.username}" if login.role == "agent" else None,
        }
        for login in demo_logins(PASSWORD, 4).accounts
    ]
    path.write_text(json.dumps({"base_url": base_url, "accounts": accounts}))


def test_the_simulated_day_loses_and_duplicates_nothing(base_url, tmp_path):
    logins = tmp_path / "demo-logins.json"
    _write_logins(logins, base_url)
    command = [
        sys.executable,
        "-m",
        "loadtest.simulator",
        "--logins",
        str(logins),
        "--agents",
        "4",
        "--seed",
        "7",
        "--fault-rate",
        "0.35",
        "--offline-seconds",
        "2.5",
        "--max-seconds",
        "20",
    ]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert run.returncode == 0, run.stdout + run.stderr
    report = run.stdout
    table = [
        line.replace(" (wiped)", "").split()
        for line in report.splitlines()
        if line.startswith(("agent", "total"))
    ]
    rows = {row[0]: dict(zip(table[0], row, strict=True)) for row in table[1:]}
    assert sorted(rows) == ["agent01", "agent02", "agent03", "agent04", "total"]
    totals = rows.pop("total")
    assert totals["missing"] == "0" and totals["dup"] == "0" and totals["card_issues"] == "0"
    assert int(totals["acked"]) > 0 and int(totals["faults"]) > 0
    for name in ("agent01", "agent02", "agent03"):  # drained on a good network at the end
        assert rows[name]["queued"] == "0"
        assert rows[name]["stored"] == rows[name]["acked"] == rows[name]["recorded"]
    assert rows["agent04"]["cards"] == "0" and rows["agent04"]["queued"] == "0"
    assert re.search(r"event: dispatcher reassigned visit \d+ to agent02", report)
    assert re.search(r"event: admin revoked dev-[\w-]+ \(agent04, \d+ queued\)", report)
    assert "agent04 (wiped)" in report
    refreshes = int(re.search(r"tokens: \d+ logins, (\d+) refreshes", report).group(1))
    assert refreshes > 0  # tokens expired while the phones were offline
    assert report.rstrip().splitlines()[-1].startswith("OK: 4 agents")


def test_a_large_photo_uploads_in_chunks_and_its_report_is_accepted(base_url, tmp_path):
    client = FieldClient(
        HttpTransport(base_url),
        tmp_path / "phone.db",
        "agent03",
        PASSWORD,
        None,  # enrols at its first login
    )
    client.sync()
    visit = client.cards()[0]
    photo = b"\xff\xd8\xff\xe0" + os.urandom(2 * CHUNK_BYTES + 1000)
    sha256 = client.add_blob(photo, "image/jpeg")
    now = datetime.now(UTC)
    record_id = client.record_visit_report(
        visit["id"],
        arrived_at=now - timedelta(minutes=3),
        outcome="not_home",
        attachments=[sha256],
    )

    result = client.sync()

    assert (result.stopped, result.blobs_uploaded, result.acknowledged) == (None, 1, [record_id])
    assert hashlib.sha256(photo).hexdigest() == sha256
    assert client.report().blobs_pending == 0 and client.report().queued == 0
    client.close()
