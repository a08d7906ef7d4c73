"""Slowloris: sockets trickle a request's headers in while normal requests are timed.

A slow socket holds a gthread thread, or a whole sync worker, for as long as it trickles;
this trial measures what that costs everyone else.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sync.client import HttpTransport, TransportError

from .figures import percentile, statuses_text
from .server_process import Gunicorn, server_env


@dataclass
class SlowClientReport:
    """What normal requests saw while slow clients trickled their headers in."""

    slow_clients: int
    worker_class: str
    workers: int
    threads: int
    seconds: float
    latencies_ms: list[float]
    statuses: Counter[str]
    slow_still_open: int

    @property
    def served(self) -> int:
        """Normal requests answered 200."""
        return self.statuses["200"]

    def lines(self) -> list[str]:
        """The figures, one per line."""
        return [
            f"{self.slow_clients} slow clients (one header byte every 0.5 s) against "
            f"{self.workers} {self.worker_class} workers x {self.threads} threads for "
            f"{self.seconds:.0f} s: "
            f"{self.slow_still_open} still connected at the end",
            f"normal requests: {self.served}/{sum(self.statuses.values())} answered 200 "
            f"({statuses_text(self.statuses)}), p50 {percentile(self.latencies_ms, 50):.0f} ms, "
            f"max {max(self.latencies_ms, default=0):.0f} ms",
        ]


def slow_client_trial(
    folder: Path,
    *,
    slow_clients: int = 3,
    seconds: float = 6.0,
    worker_class: str = "gthread",
    workers: int = 2,
    threads: int = 4,
    request_timeout_s: float = 5.0,
) -> SlowClientReport:
    """Sockets send a request's headers a byte every 0.5 s while /ready is asked for every
    0.2 s."""
    server = Gunicorn(
        server_env(folder),
        folder / "server.log",
        workers=workers,
        worker_class=worker_class,
        threads=threads,
        extra=["--timeout=30", "--keep-alive=2"],
    )
    probe = HttpTransport(server.base_url, timeout=request_timeout_s)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    slow: list[socket.socket] = []
    try:
        server.start()
        for _ in range(slow_clients):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=2)
            sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            slow.append(sock)
        started = time.monotonic()
        next_byte = started
        for _ in range(int(seconds / 0.2) + 1):
            if time.monotonic() - started > seconds:
                break
            if time.monotonic() >= next_byte:
                for sock in slow:
                    _send_quietly(sock, b"a")
                next_byte += 0.5
            began = time.perf_counter()
            try:
                status = str(probe.request("GET", "/ready").status)
            except TransportError as error:
                status = f"lost ({error})"
            latencies.append((time.perf_counter() - began) * 1000)
            statuses[status] += 1
            time.sleep(0.2)
        still_open = sum(_still_open(sock) for sock in slow)
    finally:
        for sock in slow:
            sock.close()
        server.stop()
    return SlowClientReport(
        slow_clients, worker_class, workers, threads, seconds, latencies, statuses, still_open
    )


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the server may hang up on a slow client
        sock.sendall(data)


def _still_open(sock: socket.socket) -> bool:
    """True when the server has neither answered nor closed this connection."""
    sock.setblocking(False)
    try:
        sock.recv(1)  # b"" (closed) or an answer: either way not held open
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False
