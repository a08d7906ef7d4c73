"""Profile a batch push and a pull in process (Flask test client) with pyinstrument.

Builds a demo database of `--agents` agents (25 visits each), pushes one batch of 100
visit reports per agent (notes of ~300 characters, like the peers workload), replays
them, and pulls one agent's day; prints per-phase milliseconds per batch and, with
`--profile push|replay|pull`, a pyinstrument tree of that phase.

    .venv/bin/python -m bench.profile_push [--agents 30] [--profile push] [--html out.html]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import string
import time
import uuid
from datetime import UTC, datetime, timedelta

from bench.common import PASSWORD, bench_env, flask, scratch_dir


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def notes(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_lowercase + "    ") for _ in range(300))


def batch_body(
    visits: list[dict], now: datetime, rng: random.Random, size: int = 100, weeks_back: int = 0
) -> bytes:
    records = []
    for j in range(size):
        visit = visits[j % len(visits)]
        home = visit["borrower"]["home_geo"]
        arrived = now - timedelta(hours=3, weeks=weeks_back) + timedelta(minutes=j)
        records.append(
            {
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "kind": "visit_report",
                "visit_id": visit["id"],
                "device_seq": j + 1,
                "recorded_at": iso(arrived + timedelta(minutes=5)),
                "body": {
                    "arrived_at": iso(arrived),
                    "departed_at": iso(arrived + timedelta(minutes=4)),
                    "outcome": "not_home",
                    "notes": notes(rng),
                    "location": {"lat": home["lat"], "lon": home["lon"], "accuracy_m": 12},
                },
            }
        )
    return json.dumps({"device_time": iso(now), "records": records}).encode()


def log_in_agents(client, count: int) -> list[tuple[dict[str, str], list[dict]]]:
    """agent01..agentNN logged in through the Flask test client, each on its own phone:
    the headers of its requests and the visits of its day (a first pull)."""
    agents = []
    for n in range(1, count + 1):
        answer = client.post(
            "/api/v1/auth/login", json={"username": f"agent{n:02d}", "password": PASSWORD}
        ).get_json()
        headers = {
            "Authorization": f"Bearer {answer['access_token']}",
            "X-Device-Id": answer["device_id"],
            "Content-Type": "application/json",
        }
        day = client.get("/api/v1/sync/pull?limit=200", headers=headers).get_json()
        agents.append((headers, day["upserts"]))
    return agents


def trace_one(app, client, headers) -> None:
    """Print the statements one pull runs (first 90 characters each)."""
    seen: list[str] = []
    db = app.extensions["doorstep_connections"].db
    db.conn.set_trace_callback(seen.append)
    client.get("/api/v1/sync/pull?limit=200", headers=headers)
    db.conn.set_trace_callback(None)
    for statement in seen:
        print("  SQL", " ".join(statement.split())[:110])
    print(f"  {len(seen)} statements")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=30)
    parser.add_argument("--profile", choices=("push", "replay", "pull"), default=None)
    parser.add_argument("--html", default=None)
    parser.add_argument("--cprofile", action="store_true", help="cProfile, by cumulative time")
    parser.add_argument("--pulls", type=int, default=100)
    parser.add_argument(
        "--replays",
        type=int,
        default=1,
        help="replay the stored batches this many rounds (replays store nothing new, so "
        "every round answers the same); the figures are the median round's",
    )
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        help="first push this many rounds of a batch per agent, each a week further back "
        "(an older store: every case gains 4 home visits per round), CPU per batch printed "
        "for the first and last rounds",
    )
    args = parser.parse_args()
    rng = random.Random(12)
    with scratch_dir() as workdir:
        env = bench_env(workdir)
        flask(
            env,
            "demo",
            "--borrowers",
            "5000",
            "--agents",
            str(args.agents),
            "--visits-per-agent",
            "25",
        )
        os.environ.update(env)
        from server import create_app

        app = create_app()
        client = app.test_client()
        agents = log_in_agents(client, args.agents)
        now = datetime.now(UTC)
        for week in range(args.history, 0, -1):
            cpu = time.process_time()
            for headers, visits in agents:
                body = batch_body(visits, now, rng, weeks_back=week)
                answer = client.post("/api/v1/sync/push", data=body, headers=headers)
                assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
            if week in (args.history, 1):
                cpu = (time.process_time() - cpu) * 1000 / len(agents)
                print(f"history round {args.history - week + 1}: cpu {cpu:.2f} ms/batch")
        bodies = [(h, batch_body(v, now, rng)) for h, v in agents]

        def run(label: str, expect: set[str]) -> float:
            profiler = None
            if args.profile == label:
                profiler = start_profiler()
            phases: dict[str, float] = {}
            started, cpu = time.perf_counter(), time.process_time()
            for headers, body in bodies:
                answer = client.post("/api/v1/sync/push", data=body, headers=headers)
                assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
                statuses = {o["status"] for o in answer.get_json()["outcomes"]}
                assert statuses <= expect, statuses
                for part in filter(None, answer.headers.get("Server-Timing", "").split(", ")):
                    name, dur = part.split(";dur=")
                    phases[name] = phases.get(name, 0.0) + float(dur)
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu
            if profiler:
                profiler.stop()
                finish(profiler)
            per = {k: round(v / len(bodies), 2) for k, v in phases.items()}
            print(
                f"{label}: {len(bodies) * 100 / elapsed:,.0f} rec/s, "
                f"{elapsed * 1000 / len(bodies):.2f} ms/batch, "
                f"cpu {cpu * 1000 / len(bodies):.2f} ms/batch; phases ms/batch {per}"
            )
            return elapsed

        def start_profiler():
            if args.cprofile:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
                profiler.stop = profiler.disable
                return profiler
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005)
            profiler.start()
            return profiler

        def finish(profiler) -> None:
            if args.cprofile:
                import pstats

                pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(
                    60
                )
                return
            if args.html:
                with open(args.html, "w") as out:
                    out.write(profiler.output_html())
            print(profiler.output_text(unicode=False, color=False, short_mode=False))

        pushed = run("push", {"accepted", "flagged"})
        rounds = sorted(run("replay", {"duplicate"}) for _ in range(max(1, args.replays)))
        print(f"replay/push wall ratio (median round): {pushed / rounds[len(rounds) // 2]:.2f}x")
        headers = agents[0][0]
        profiler = None
        if args.profile == "pull":
            profiler = start_profiler()
        times = []
        cpu = time.process_time()
        for _ in range(args.pulls):
            t0 = time.perf_counter()
            answer = client.get("/api/v1/sync/pull?limit=200", headers=headers)
            assert answer.status_code == 200
            times.append((time.perf_counter() - t0) * 1000)
        if profiler:
            profiler.stop()
            finish(profiler)
        if os.environ.get("TRACE_SQL"):
            trace_one(app, client, headers)
        cpu = (time.process_time() - cpu) * 1000 / args.pulls
        times.sort()
        print(
            f"pull: cpu {cpu:.2f} ms/pull, p50 {times[len(times) // 2]:.2f} ms, "
            f"p95 {times[int(len(times) * 0.95)]:.2f} ms"
        )


if __name__ == "__main__":
    main()
