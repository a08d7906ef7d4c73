"""The README's first session, pasted as a newcomer would, against a real server on loopback.

The block under "A first session over HTTP" is `docs/first-session.sh` wrapped in a here
document; it is run as pasted (by bash) after `flask demo` and `flask run`, reading the
demo logins from a file shaped like instance/demo-logins.json. Every step must answer 2xx.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from server.storage.connection import open_db

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SCRIPT = ROOT / "docs" / "first-session.sh"
PASSWORD = "first-session-password"
STEPS = 7  # the "== …" headings the script prints


def readme_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## A first session over HTTP") :]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1, "one block to paste, nothing else to type"
    return blocks[0]


def test_the_readme_block_is_the_script_in_a_here_document():
    script = SCRIPT.read_text()
    assert script.startswith("#!/bin/sh\n")
    body = script.removeprefix("#!/bin/sh\n")
    assert readme_block() == f"sh <<'SESSION'\n{body}SESSION\n"
    assert "\nSESSION\n" not in body  # the here document would end early
    assert os.access(SCRIPT, os.X_OK)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
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
def demo_server(tmp_path_factory):
    """`flask demo` then `flask run` on a free loopback port; yields (folder, base_url)."""
    folder = tmp_path_factory.mktemp("first-session")
    port = _free_port()
    env = {
        **os.environ,
        "DOORSTEP_DATABASE": str(folder / "doorstep.db"),
        "DOORSTEP_DEMO_PASSWORD": PASSWORD,
        "FLASK_RUN_PORT": str(port),  # `flask run` listens there
    }
    flask = [str(BIN / "flask"), "--app", "wsgi"]
    demo = [*flask, "demo", "--borrowers", "200", "--agents", "2", "--visits-per-agent", "3"]
    subprocess.run(demo, cwd=ROOT, env=env, check=True, capture_output=True, timeout=180)
    with open(folder / "server.log", "wb") as log:
        process = subprocess.Popen(
            [*flask, "run", "--host", "127.0.0.1"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
        )
    try:
        base_url = f"http://127.0.0.1:{port}/api/v1"
        _wait_until_up(f"{base_url}/health", process)
        yield folder, base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _demo_logins(folder: Path, base_url: str) -> Path:
    """The logins file the demo writes beside the database; a demo that writes none gets
    one of the same shape (one account per role, agents with a phone) written here."""
    path = folder / "demo-logins.json"
    if not path.exists():
        accounts = [
            {"username": "admin01", "role": "admin", "device_id": None},
            {"username": "dispatcher01", "role": "dispatcher", "device_id": None},
            {"username": "agent02", "role": "agent", "device_id": "phone-agent02"},
            {"username": "agent01", "role": "agent", "device_id": "phone-agent01"},
            {"username": "privacy01", "role": "privacy_officer", "device_id": None},
        ]
        accounts = [{**account, "password": PASSWORD} for account in accounts]
        path.write_text(json.dumps({"base_url": base_url, "accounts": accounts}))
    assert json.loads(path.read_text())["base_url"] == base_url
    return path


@pytest.mark.skipif(not shutil.which("curl"), reason="the README's session needs curl")
def test_the_first_session_runs_as_pasted(demo_server):
    folder, base_url = demo_server
    logins = _demo_logins(folder, base_url)
    agent = next(a for a in json.loads(logins.read_text())["accounts"] if a["role"] == "agent")
    name, phone = agent["username"], agent["device_id"] or f"phone-{agent['username']}"
    pasted = subprocess.run(
        ["bash", "-c", readme_block()],
        cwd=ROOT,
        env={**os.environ, "LOGINS": str(logins)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pasted.returncode == 0, (pasted.stdout, pasted.stderr)
    assert "answered" not in pasted.stderr and "no answer" not in pasted.stderr, pasted.stderr
    out = pasted.stdout
    assert out.count("\n== ") + out.startswith("== ") == STEPS, out
    assert f"{name} on {phone}" in out
    pushed = re.search(r"^record ([0-9a-f-]{36}): (accepted|flagged) ", out, re.MULTILINE)
    assert pushed, out
    assert f"visit_report not_home from {phone}" in out
    assert re.search(rf"{name} \(agent\) via GET /api/v1/me/day, for \w+: .*home_address", out)
    assert "intact: True" in out

    db = open_db(str(folder / "doorstep.db"))
    try:
        stored = db.execute(
            "SELECT kind, device_id FROM sync_records WHERE id = ?", [pushed.group(1)]
        ).fetchall()
    finally:
        db.conn.close()
    assert stored == [("visit_report", phone)]


def test_a_missing_logins_file_says_what_to_run(tmp_path):
    missing = tmp_path / "demo-logins.json"
    run = subprocess.run(
        ["sh", str(SCRIPT)],
        cwd=ROOT,
        env={**os.environ, "LOGINS": str(missing)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 1
    assert f"{missing} not found" in run.stderr and "flask --app wsgi demo" in run.stderr
