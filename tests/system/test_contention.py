"""Contention and slow clients against gunicorn on loopback.

The figures go to docs/reliability.md; `python -m bench.soak` runs the long version
(200 agents). Run with `-s` to see them.
"""

from __future__ import annotations

from loadtest.slow_clients import slow_client_trial
from loadtest.trials import contention_trial


def test_agents_pushing_and_pulling_at_once_meet_no_lock_and_no_5xx(tmp_path):
    report = contention_trial(tmp_path, agents=50, seconds=8, workers=4)
    print("\n" + "\n".join(report.lines()))

    assert report.meter.server_errors == []
    assert report.meter.locked == 0 and report.locked_in_log == 0
    assert report.errors_in_log == 0
    assert report.meter.lost == 0  # every request got an answer
    assert set(report.meter.statuses) <= {200, 201}
    assert len(report.meter.acknowledged) > 0 and report.meter.rejected == {}
    assert report.store.missing == [] and report.store.duplicated == []
    assert report.store.integrity == ["ok"]
    assert report.phone_errors == []


def test_slow_clients_do_not_starve_other_requests_on_gthread_workers(tmp_path):
    # 3 slow sockets hold at most 3 of a worker's 4 threads, wherever the kernel sends them.
    report = slow_client_trial(tmp_path, slow_clients=3, seconds=4, workers=2, threads=4)
    print("\n" + "\n".join(report.lines()))

    assert report.slow_still_open == 3  # they really were holding their threads
    assert report.served == sum(report.statuses.values()) >= 12
    assert max(report.latencies_ms) < 3000
