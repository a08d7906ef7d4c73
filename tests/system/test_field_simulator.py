"""The reference client and the field simulator against a real server process on loopback."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sync.client import CHUNK_BYTES, FieldClient, HttpTransport

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PASSWORD = "field-sim-password"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not come up")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("server")
    env = {
        **os.environ,
        "DOORSTEP_DATABASE": str(folder / "doorstep.db"),
        "DOORSTEP_DEMO_PASSWORD": PASSWORD,
        # Cheap password hashing: every simulated phone logs in, some twice.
        "DOORSTEP_PASSWORD_TIME_COST": "1",
        "DOORSTEP_PASSWORD_MEMORY_COST_KIB": "1024",
        # Tokens that expire during the run (1 s + the server's 5 s leeway): phones offline
        # longer than that must refresh and lose nothing.
        "DOORSTEP_ACCESS_TOKEN_TTL_S": "1",
    }
    demo = [
        str(BIN / "flask"),
        "--app",
        "wsgi",
        "demo",
        "--borrowers",
        "200",
        "--agents",
        "4",
        "--visits-per-agent",
        "5",
    ]
    subprocess.run(demo, cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    port = _free_port()
    server = [
        str(BIN / "gunicorn"),
        "-w",
        "2",
        "-b",
        f"127.0.0.1:{port}",
        "--no-control-socket",
        "wsgi:app",
    ]
    with open(folder / "server.log", "wb") as log:
        process = subprocess.Popen(server, cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        _wait_until_up(f"http://127.0.0.1:{port}/api/v1/health", process)
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_simulated_day_loses_and_duplicates_nothing(base_url):
    command = [
        sys.executable,
        "-m",
        "sync.simulator",
        "--base-url",
        base_url,
        "--agents",
        "4",
        "--password",
        PASSWORD,
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
    assert re.search(r"event: admin revoked sim-\w+-agent04", report)
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
        "system-test-phone-agent03",
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
