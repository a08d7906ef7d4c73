"""The README's start command on another port: `flask demo` then `flask run`, both given
FLASK_RUN_PORT, and a login with what the demo wrote to its logins file."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _post_json(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, json.load(response)


def _wait_until_up(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"flask run exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("flask run did not come up")


def test_flask_run_port_reaches_the_demo_printout_the_logins_file_and_the_server(tmp_path):
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DOORSTEP_RUN_PORT", "DOORSTEP_PUBLIC_URL", "DOORSTEP_DEMO_PASSWORD"}
    }
    env.update(
        DOORSTEP_DATABASE=str(tmp_path / "instance" / "doorstep.db"),
        DOORSTEP_PASSWORD_TIME_COST="1",
        DOORSTEP_PASSWORD_MEMORY_COST_KIB="1024",
        FLASK_RUN_PORT=str(port),
    )
    flask = [str(BIN / "flask"), "--app", "wsgi"]
    demo = [*flask, "demo", "--borrowers", "60", "--agents", "1", "--visits-per-agent", "2"]
    printed = subprocess.run(
        demo, cwd=ROOT, env=env, check=True, capture_output=True, text=True, timeout=120
    ).stdout

    base_url = f"http://127.0.0.1:{port}/api/v1"
    assert f"API:  {base_url}" in printed
    logins = json.loads((tmp_path / "instance" / "demo-logins.json").read_text())
    assert logins["base_url"] == base_url
    agent = next(a for a in logins["accounts"] if a["role"] == "agent")

    with open(tmp_path / "server.log", "wb") as log:
        server = subprocess.Popen(
            [*flask, "run"], cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True
        )
    try:
        _wait_until_up(f"{logins['base_url']}/health", server)
        status, tokens = _post_json(
            f"{logins['base_url']}/auth/login",
            {
                "username": agent["username"],
                "password": agent["password"],
                "device_id": agent["device_id"],
            },
        )
        assert status == 200 and tokens["access_token"]
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
