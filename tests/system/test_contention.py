"""Contention and slow clients against gunicorn on loopback.

The figures go to docs/reliability.md; `python -m bench.soak` runs the long version
(200 agents). Run with `-s` to see them.
"""

from __future__ import annotations

import socket

from loadtest.server_process import Gunicorn, server_env
from loadtest.slow_clients import slow_client_trial
from loadtest.trials import contention_trial
from sync.client import HttpTransport


def test_agents_pushing_and_pulling_at_once_meet_no_lock_and_no_5xx(tmp_path, server_database):
    report = contention_trial(
        tmp_path, agents=50, seconds=8, workers=4, database_url=server_database
    )
    print("\n" + "\n".join(report.lines()))

    assert report.meter.server_errors == []
    assert report.meter.locked == 0 and report.locked_in_log == 0
    assert report.errors_in_log == 0
    assert report.meter.lost == 0  # every request got an answer
    assert set(report.meter.statuses) <= {200, 201}
    assert len(report.meter.acknowledged) > 0 and report.meter.rejected == {}
    assert report.store.missing == [] and report.store.duplicated == []
    assert report.store.intact, report.store.integrity  # on PostgreSQL: amcheck over every index
    assert report.phone_errors == []


def test_slow_clients_do_not_starve_other_requests_on_gthread_workers(tmp_path):
    # 3 slow sockets hold at most 3 of a worker's 4 threads, wherever the kernel sends them.
    report = slow_client_trial(tmp_path, slow_clients=3, seconds=4, workers=2, threads=4)
    print("\n" + "\n".join(report.lines()))

    assert report.slow_still_open == 3  # they really were holding their threads
    assert report.served == sum(report.statuses.values()) >= 12
    assert max(report.latencies_ms) < 3000


def test_a_server_whose_port_was_taken_meanwhile_starts_on_another(tmp_path):
    """Another process binds the chosen port before gunicorn does (parallel tests do): the
    harness must not take that process's answers for ours, and moves to a free port."""
    server = Gunicorn(server_env(tmp_path), tmp_path / "server.log", workers=1)
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", server.port))
    squatter.listen()
    taken = server.port
    try:
        server.start()
        assert server.port != taken
        assert HttpTransport(server.base_url, timeout=5).request("GET", "/ready").status == 200
    finally:
        server.stop()
        squatter.close()
