"""GET /api/v1/me/day for an agent with 25 visits, on 100,000 borrowers and 2,000 visits today.

Prints p50/p95 over sequential requests through a real gunicorn process, and the share of
server time spent writing ledger entries (from the Server-Timing header).

    .venv/bin/python bench/day_view.py [--requests 500] [--borrowers 100000]
"""

from __future__ import annotations

import argparse
import time

import requests

from bench.common import bench_env, flask, login, scratch_dir, server, summary


def parse_timing(header: str) -> dict[str, float]:
    phases = {}
    for part in header.split(","):
        name, _, dur = part.strip().partition(";dur=")
        if dur:
            phases[name] = float(dur)
    return phases


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--borrowers", type=int, default=100_000)
    parser.add_argument("--agents", type=int, default=80)
    parser.add_argument("--visits-per-agent", type=int, default=25)
    args = parser.parse_args()
    with scratch_dir() as workdir:
        env = bench_env(workdir)
        started = time.monotonic()
        flask(
            env,
            "demo",
            "--borrowers",
            str(args.borrowers),
            "--agents",
            str(args.agents),
            "--visits-per-agent",
            str(args.visits_per_agent),
        )
        print(
            f"demo data: {args.borrowers} borrowers, {args.agents * args.visits_per_agent} "
            f"visits today, loaded in {time.monotonic() - started:.1f} s"
        )
        with server(env, workers=1) as base:
            headers = login(base, "agent01")  # a new phone, enrolled at this login
            session = requests.Session()
            first = session.get(f"{base}/me/day", headers=headers, timeout=30)
            visits = len(first.json()["visits"])
            latencies, ledger_ms = [], []
            for _ in range(args.requests):
                t0 = time.perf_counter()
                response = session.get(f"{base}/me/day", headers=headers, timeout=30)
                latencies.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200
                phases = parse_timing(response.headers.get("Server-Timing", ""))
                ledger_ms.append(phases.get("ledger", 0.0))
            print(
                f"GET /me/day ({visits} visits, {args.requests} sequential requests): "
                f"{summary(latencies)}"
            )
            share = sum(ledger_ms) / sum(latencies)
            print(
                f"ledger writes: {sum(ledger_ms) / len(ledger_ms):.2f} ms per request, "
                f"{share:.1%} of client-observed time"
            )


if __name__ == "__main__":
    main()
