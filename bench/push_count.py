"""Count what a push and its replay cost, for `valgrind --tool=callgrind` (instruction
counts are steady on a shared machine, wall times are not).

Builds (once, cached under --cache) a demo store of `--agents` agents, copies it, logs the
agents in, and pushes `--rounds` rounds of one batch of 100 visit reports per agent
(`--mode push`: fresh records each round) or pushes one round and then replays it
`--rounds` times (`--mode replay`). The cost of a batch is the count of a run with 2
rounds minus the count of a run with 0, divided by 2 x agents:

    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p \\
        .venv/bin/python -m bench.push_count --mode push --rounds 2

The garbage collector is off while batches run, so its pauses do not blur the figures.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench.common import bench_env, flask
from bench.profile_push import batch_body, log_in_agents


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2, help="at most 2 with --mode push")
    parser.add_argument("--mode", choices=("push", "replay"), default="push")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "doorstep-push-count"))
    args = parser.parse_args()
    cache = Path(args.cache) / f"agents{args.agents}"
    template = cache / "template.db"
    if not template.exists():
        cache.mkdir(parents=True, exist_ok=True)
        env = bench_env(cache)
        env["DOORSTEP_DATABASE"] = str(template)
        flask(env, "demo", "--borrowers", "5000", "--agents", str(args.agents))
    work = cache / f"run{os.getpid()}"
    work.mkdir()
    try:
        shutil.copy(template, work / "bench.db")
        env = bench_env(work)
        env["DOORSTEP_SIGNING_KEY_FILE"] = str(cache / "template.signing-key.pem")
        os.environ.update(env)
        run(args)
    finally:
        shutil.rmtree(work)


def run(args: argparse.Namespace) -> None:
    from server import create_app

    app = create_app()
    client = app.test_client()
    agents = log_in_agents(client, args.agents)
    rng = random.Random(12)
    now = datetime.now(UTC)
    fresh = args.mode == "push"
    # The bodies of two rounds are written whatever --rounds says, so that writing them
    # cancels out of "2 rounds minus 0".
    rounds = [[(h, batch_body(v, now, rng)) for h, v in agents] for _ in range(2 if fresh else 1)]

    def send(batches, expect: set[str]) -> None:
        for headers, body in batches:
            answer = client.post("/api/v1/sync/push", data=body, headers=headers)
            assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
            statuses = {o["status"] for o in answer.get_json()["outcomes"]}
            assert statuses <= expect, statuses

    if not fresh:
        send(rounds[0], {"accepted", "flagged"})
    gc.collect()
    gc.disable()
    if fresh:
        for batches in rounds[: args.rounds]:
            send(batches, {"accepted", "flagged"})
    else:
        for _ in range(args.rounds):
            send(rounds[0], {"duplicate"})
    gc.enable()


if __name__ == "__main__":
    main()
