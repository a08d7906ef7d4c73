"""A Doorstep server for a load test: gunicorn on 127.0.0.1, its database, its demo data.

`Gunicorn` runs a master and its workers in their own process group on a fixed loopback
port; a worker or the master can be SIGKILLed and the server started again on the same
database and port. Only the processes it started are ever signalled, by PID or by the
process group it created.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync.client import HttpTransport, TransportError

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# Every demo account of a load-test server has this password (DOORSTEP_DEMO_PASSWORD).
PASSWORD = "reliability-password"


def server_env(folder: Path, **overrides: str) -> dict[str, str]:
    """The environment of a load-test server: its own database, limits out of the way."""
    return {
        **os.environ,
        "DOORSTEP_DATABASE": str(folder / "doorstep.db"),
        "DOORSTEP_DEMO_PASSWORD": PASSWORD,
        # Argon2 stays in the path, at a cost that lets hundreds of phones log in quickly.
        "DOORSTEP_PASSWORD_TIME_COST": "1",
        "DOORSTEP_PASSWORD_MEMORY_COST_KIB": "1024",
        "DOORSTEP_ACCESS_TOKEN_TTL_S": "86400",
        # The buckets are per worker and would answer 429 to a load test; 429 is tested apart.
        "DOORSTEP_RATE_PER_DEVICE_PER_MIN": "1000000",
        "DOORSTEP_RATE_PER_ADDRESS_PER_MIN": "1000000",
        "DOORSTEP_LOGIN_MAX_FAILURES_PER_ADDRESS": "100000",
        **overrides,
    }


def store_env(folder: Path, database_url: str | None = None, **overrides: str) -> dict[str, str]:
    """server_env on the SQLite file in `folder`, or on the PostgreSQL store at
    `database_url`; then every server process (and node) shares one signing key file."""
    if database_url is None:
        return server_env(folder, **overrides)
    key_file = folder / "signing-key.pem"
    if not key_file.exists():
        key_file.write_bytes(
            Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return server_env(
        folder,
        DOORSTEP_DATABASE_URL=database_url,
        DOORSTEP_SIGNING_KEY_FILE=str(key_file),
        DOORSTEP_STATE_DIR=str(folder),
        **overrides,
    )


def load_demo(
    env: Mapping[str, str], *, agents: int, visits_per_agent: int = 3, borrowers: int = 2000
) -> None:
    """`flask demo` into the server's database: agents agent01…, each with a planned day."""
    command = [str(BIN / "flask"), "--app", "wsgi", "demo", "--agents", str(agents)]
    command += ["--visits-per-agent", str(visits_per_agent), "--borrowers", str(borrowers)]
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)


def free_port() -> int:
    """A port nobody listens on now, on the loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def log_mentions(log_path: Path, text: str) -> int:
    """How many lines of a server log mention `text`."""
    if not log_path.exists():
        return 0
    lines = log_path.read_text(errors="replace").splitlines()
    return sum(text in line for line in lines)


class _PortTaken(Exception):
    """Another process bound the port chosen for this server first."""


class Gunicorn:
    """gunicorn in its own process group on 127.0.0.1:port; killable, restartable."""

    def __init__(
        self,
        env: Mapping[str, str],
        log_path: Path,
        *,
        workers: int,
        worker_class: str = "sync",
        threads: int = 1,
        extra: Sequence[str] = (),
    ) -> None:
        self.env = dict(env)
        self.log_path = log_path
        self.workers = workers
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/api/v1"
        self.command = [
            str(BIN / "gunicorn"),
            f"--workers={workers}",
            f"--worker-class={worker_class}",
            f"--threads={threads}",
            f"--bind=127.0.0.1:{self.port}",
            "--graceful-timeout=1",
            "--no-control-socket",
            "--log-level=info",  # "Listening at: ... (pid)" tells our master holds the port
            *extra,
            "wsgi:app",
        ]
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.ready_answers: list[dict[str, Any]] = []  # /ready's store settings, per start

    def start(self, within_s: float = 30.0) -> None:
        """Start the master and wait until it listens on the port and /ready answers 200.
        Between choosing a free port and binding it, another test's server may take the
        port (and answer /ready): ours then gives up binding, and is started again on a new
        port."""
        for _ in range(3):
            try:
                self._start_once(within_s)
                return
            except _PortTaken:
                self._kill_group()
                self._move_to(free_port())
        raise RuntimeError("gunicorn found no free port to bind")

    def _move_to(self, port: int) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}/api/v1"
        self.command = [
            f"--bind=127.0.0.1:{port}" if part.startswith("--bind=") else part
            for part in self.command
        ]

    def _listening(self) -> bool:
        """Our master, not another process, holds the port (gunicorn's own log line)."""
        assert self.process is not None
        line = f"Listening at: http://127.0.0.1:{self.port} ({self.process.pid})"
        return log_mentions(self.log_path, line) > 0

    def _start_once(self, within_s: float) -> None:
        taken_before = log_mentions(self.log_path, "Connection in use")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own process group: killpg reaches only it
            )
        self.starts += 1
        probe = HttpTransport(self.base_url, timeout=2)
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if log_mentions(self.log_path, "Connection in use") > taken_before:
                    self.starts -= 1
                    raise _PortTaken(self.port)
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}")
            if not self._listening():
                time.sleep(0.1)
                continue
            try:
                answer = probe.request("GET", "/ready")
                if answer.status == 200:
                    self.ready_answers.append(answer.body["store"])
                    return
            except TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer /ready within {within_s} s")

    @property
    def master_pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def worker_pids(self) -> list[int]:
        """Live children of the current master."""
        return [pid for pid, ppid, _ in _live_processes() if ppid == self.master_pid]

    def group_pids(self) -> list[int]:
        """Live members of the process group this object created (orphans included)."""
        return [pid for pid, _, group in _live_processes() if group == self.master_pid]

    def wait_for_workers(self, within_s: float = 20.0) -> bool:
        """Wait until the master has its full pool again."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if len(self.worker_pids()) >= self.workers:
                return True
            time.sleep(0.1)
        return False

    def kill_worker(self, rng: random.Random) -> int | None:
        """SIGKILL one worker chosen at random; None when none is alive right now."""
        pids = self.worker_pids()
        if not pids:
            return None
        victim = rng.choice(pids)
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            return None
        return victim

    def kill_master(self, orphan_grace_s: float = 0.0) -> None:
        """SIGKILL the master; after `orphan_grace_s`, SIGKILL its orphaned workers too,
        as a supervisor killing the service's control group would."""
        assert self.process is not None, "not started"
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        time.sleep(orphan_grace_s)  # orphans may still answer (and commit) meanwhile
        self._kill_group()

    def stop(self) -> None:
        """SIGTERM the group, then SIGKILL whatever is left; always safe to call."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._kill_group()

    def crash(self) -> None:
        """SIGKILL the master and every worker at once: the file is left as a crash leaves it."""
        if self.process is not None and self.process.poll() is None:
            self.kill_master()
        self._kill_group()

    def _kill_group(self) -> None:
        deadline = time.monotonic() + 10
        while self.group_pids() and time.monotonic() < deadline:
            try:
                os.killpg(self.master_pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def _live_processes() -> list[tuple[int, int, int]]:
    """(pid, ppid, process group) of every live process, from /proc; zombies left out."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid, group = stat.rsplit(")", 1)[1].split()[:3]
        if state not in ("Z", "X"):
            found.append((int(entry.name), int(ppid), int(group)))
    return found
