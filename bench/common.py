"""Shared bench plumbing: a scratch database, a real server process on loopback, figures."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PASSWORD = "bench-password-1"


def bench_env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DOORSTEP_DATABASE=str(workdir / "bench.db"),
        DOORSTEP_DEMO_PASSWORD=PASSWORD,
        DOORSTEP_SERVER_TIMING="1",
        DOORSTEP_LOGIN_MAX_FAILURES_PER_ADDRESS="100000",
        # One load generator on loopback is one address and a few devices: lift the limits.
        DOORSTEP_RATE_PER_DEVICE_PER_MIN="1000000",
        DOORSTEP_RATE_PER_ADDRESS_PER_MIN="1000000",
    )
    return env


def flask(env: dict[str, str], *args: str, timeout: float = 1800, root: Path = ROOT) -> str:
    """`flask --app wsgi ARGS` of the tree at `root` on the bench's store; its output."""
    result = subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "wsgi", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return result.stdout


def demo(
    env: dict[str, str], borrowers: int, agents: int, visits_per_agent: int = 25, root: Path = ROOT
) -> None:
    """The demo world (`flask demo`) in the bench's store, built by the tree at `root`."""
    flask(
        env,
        "demo",
        "--borrowers",
        str(borrowers),
        "--agents",
        str(agents),
        "--visits-per-agent",
        str(visits_per_agent),
        root=root,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def server(env: dict[str, str], workers: int = 2):
    """gunicorn on 127.0.0.1, stopped by PID when the block ends."""
    with server_process(env, workers) as (base, _pid):
        yield base


@contextmanager
def server_process(env: dict[str, str], workers: int = 2, root: Path = ROOT):
    """As server(), yielding (base URL, the gunicorn master's PID); `root` is the tree whose
    app it serves."""
    port = free_port()
    process = subprocess.Popen(
        [
            str(VENV_BIN / "gunicorn"),
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "wsgi:app",
        ],
        cwd=root,
        env=env,
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/health", timeout=1).ok:
                    break
            except requests.RequestException:  # still starting (refused or slow)
                time.sleep(0.1)
        else:
            raise RuntimeError("server did not start")
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def scratch_dir():
    with tempfile.TemporaryDirectory(prefix="doorstep-bench-") as name:
        yield Path(name)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def summary(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 50):.2f} ms, p95 {percentile(values, 95):.2f} ms, "
        f"mean {statistics.fmean(values):.2f} ms, n={len(values)}"
    )


def login(base: str, username: str, device_id: str | None = None) -> dict[str, str]:
    """Headers for this user; an agent without a device_id enrols a new phone."""
    body = {"username": username, "password": PASSWORD}
    if device_id:
        body["device_id"] = device_id
    answer = requests.post(f"{base}/auth/login", json=body, timeout=30).json()
    headers = {"Authorization": f"Bearer {answer['access_token']}"}
    if answer["device_id"]:
        headers["X-Device-Id"] = answer["device_id"]
    return headers


def agent_days(base: str, agents: int) -> list[tuple[dict[str, str], list[dict]]]:
    """Each demo agent's headers (logged in on its phone) and the cards of its day."""
    http = requests.Session()
    days = []
    for n in range(1, agents + 1):
        headers = login(base, f"agent{n:02d}")
        day = http.get(f"{base}/sync/pull", params={"limit": 200}, headers=headers, timeout=60)
        days.append((headers, day.json()["upserts"]))
    return days
