"""Closing 1,000 cases at once (POST /api/v1/cases/bulk-change) whose cards are on two phones
each: every planned visit cancelled and every purge order issued in one transaction.

The demo plans one visit today for each of N cases (40 agents x 25 visits by default); each
agent pulls its day on two phones, so every case has a card on two devices. Then one request
closes every one of those cases. Prints the wall time of that request, the server's phases
for it (Server-Timing), and checks in the store that every card got its order, all with the
same timestamp (one transaction), and that a phone's next pull carries them.

    .venv/bin/python -m bench.case_close [--agents 40] [--visits-per-agent 25]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from pathlib import Path

import requests

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_env, flask, login, scratch_dir, server
from bench.day_view import parse_timing


def _pull_everything(session: requests.Session, base: str, headers: dict[str, str]) -> int:
    """Pull until has_more is false; the number of cards received."""
    cursor, cards = None, 0
    for _ in range(100):
        query = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = session.get(f"{base}/sync/pull", params=query, headers=headers, timeout=60).json()
        cards += len(page["upserts"])
        cursor = page["cursor"]
        if not page["has_more"]:
            break
    return cards


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=40)
    parser.add_argument("--visits-per-agent", type=int, default=25)
    parser.add_argument("--borrowers", type=int, default=5000)
    args = parser.parse_args()
    with scratch_dir() as workdir:
        env = bench_env(workdir)
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
        store = sqlite3.connect(workdir / "bench.db")
        with server(env, workers=1) as base:
            session = requests.Session()
            agents = [
                name
                for (name,) in store.execute(
                    "SELECT username FROM users WHERE role = 'agent' ORDER BY username"
                )
            ]
            cards = 0
            for agent in agents:
                for phone in ("a", "b"):
                    headers = login(base, agent, f"bench-{agent}-{phone}")
                    cards += _pull_everything(session, base, headers)
            cases = store.execute(
                "SELECT DISTINCT c.id, c.version FROM device_cards d "
                "JOIN cases c ON c.id = d.case_id ORDER BY c.id"
            ).fetchall()
            print(f"{len(cases)} cases with {cards} cards on {2 * len(agents)} phones")

            dispatcher = login(base, "dispatcher01")
            changes = [
                {"case_id": case_id, "version": version, "status": "closed_paid", "reason": "paid"}
                for case_id, version in cases
            ]
            started = time.perf_counter()
            response = session.post(
                f"{base}/cases/bulk-change",
                json={"changes": changes},
                headers=dispatcher,
                timeout=120,
            )
            wall = time.perf_counter() - started
            body = response.json()
            assert response.status_code == 200, body
            # The server's phases: the changes and purge orders, the ledger entries of the
            # answer; the one transaction commits after both (Server-Timing).
            phases = parse_timing(response.headers.get("Server-Timing", ""))

            orders = store.execute(
                "SELECT count(*), count(DISTINCT purge_ordered_at) FROM device_cards "
                "WHERE purge_reason = 'case_closed'"
            ).fetchone()
            phone = login(base, agents[0], f"bench-{agents[0]}-a")
            pulled = session.get(
                f"{base}/sync/pull", params={"limit": 200}, headers=phone, timeout=60
            ).json()
            print(
                f"closed {body['changed']} cases in one request: {body['visits_cancelled']} "
                f"visits cancelled, {body['purges_ordered']} purge orders "
                f"({orders[0]} in the store, {orders[1]} timestamp: one transaction)"
            )
            timing = ", ".join(f"{name} {ms:.0f} ms" for name, ms in phases.items())
            print(f"bulk close of {len(cases)} cases: {wall:.2f} s wall (target < 2 s); {timing}")
            print(
                f"{agents[0]}'s next pull: {len(pulled['purges'])} purge orders, "
                f"{len(pulled['upserts'])} cards"
            )
        store.close()


if __name__ == "__main__":
    main()
