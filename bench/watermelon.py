"""The WatermelonDB front door against the native protocol, on one real server.

- First pull of a 25-visit day: a fresh phone (enrolled by logging in without a device id)
  asks `GET /sync/watermelon/pull?last_pulled_at=null`; the same for the native
  `GET /sync/pull` (no cursor, limit 50), in alternating rounds.
- Push of 100 records (a third each credentials, visit reports, contact attempts, new ids
  every round): `POST /sync/watermelon/push` with WatermelonDB rows against
  `POST /sync/push` with the same records in native form, alternating.

Prints p50/p95 of each and the ratio WatermelonDB / native (target for the push: within
1.5x). A figure, never a pass/fail.

    .venv/bin/python -m bench.watermelon [--rounds 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import requests

from bench.common import bench_env, flask, login, percentile, scratch_dir, server

VISITS = 25


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _batch(visit_ids: list[int], badge: str) -> tuple[dict, dict]:
    """The same 100 records as a native push body and as a WatermelonDB push body (each
    with its own fresh ids, so neither is a replay of the other)."""
    now = datetime.now(UTC)
    native, rows = [], {"id_confirmations": [], "visit_reports": [], "contact_attempts": []}
    for n in range(100):
        visit = visit_ids[n % len(visit_ids)]
        at = now - timedelta(minutes=100 - n)
        kind = ("id_confirmation", "visit_report", "contact")[n % 3]
        if kind == "id_confirmation":
            body = {
                "confirmation_kind": "agent_credential",
                "badge_number": badge,
                "borrower_acknowledged": True,
            }
            row = dict(body)
        elif kind == "visit_report":
            body = {
                "arrived_at": _iso(at - timedelta(minutes=5)),
                "departed_at": _iso(at),
                "outcome": "not_home",
                "notes": "Nobody answered; left a card.",
                "location": {"lat": 31.2, "lon": 121.4, "accuracy_m": 12.0},
            }
            row = {
                "arrived_at": _ms(at - timedelta(minutes=5)),
                "departed_at": _ms(at),
                "outcome": "not_home",
                "notes": "Nobody answered; left a card.",
                "location_lat": 31.2,
                "location_lon": 121.4,
                "location_accuracy_m": 12.0,
            }
        else:
            body = {
                "channel": "phone_call",
                "occurred_at": _iso(at),
                "outcome": "no_answer",
                "duration_s": 20,
            }
            row = {**body, "occurred_at": _ms(at)}
        native.append(
            {
                "id": str(uuid.uuid4()),
                "kind": kind,
                "visit_id": visit,
                "device_seq": n + 1,
                "recorded_at": _iso(at),
                "body": body,
            }
        )
        table = {"id_confirmation": "id_confirmations", "visit_report": "visit_reports"}.get(
            kind, "contact_attempts"
        )
        rows[table].append(
            {
                "id": str(uuid.uuid4()),
                "_status": "created",
                "_changed": "",
                "visit_id": str(visit),
                "device_seq": n + 1,
                "recorded_at": _ms(at),
                **row,
            }
        )
    changes = {t: {"created": r, "updated": [], "deleted": []} for t, r in rows.items()}
    return {"device_time": _iso(now), "records": native}, {"changes": changes}


def _timed(call) -> tuple[float, requests.Response]:
    start = time.perf_counter()
    answer = call()
    return (time.perf_counter() - start) * 1000, answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with scratch_dir() as folder:
        env = bench_env(folder)
        flask(env, "demo", "--agents", "1", "--visits-per-agent", str(VISITS), "--borrowers", "120")
        with server(env, workers=1) as base:
            pulls: dict[str, list[float]] = {"watermelon": [], "native": []}
            sizes = set()
            for _ in range(args.rounds):
                for name in ("watermelon", "native"):
                    headers = login(base, "agent01")  # a fresh phone each time
                    path = (
                        "/sync/watermelon/pull?last_pulled_at=null"
                        if name == "watermelon"
                        else "/sync/pull?limit=50"
                    )
                    took, answer = _timed(
                        lambda path=path, headers=headers: requests.get(
                            base + path, headers=headers, timeout=60
                        )
                    )
                    answer.raise_for_status()
                    pulls[name].append(took)
                    body = answer.json()
                    sizes.add(
                        len(body["changes"]["visits"]["created"])
                        if name == "watermelon"
                        else len(body["upserts"])
                    )
            headers = login(base, "agent01")
            first = requests.get(f"{base}/sync/pull?limit=200", headers=headers, timeout=60).json()
            visit_ids = [v["id"] for v in first["upserts"]]
            me = requests.get(f"{base}/me", headers=headers, timeout=30).json()
            badge = me.get("badge_number") or "B-1001"
            stamp = requests.get(
                f"{base}/sync/watermelon/pull?last_pulled_at=null", headers=headers, timeout=60
            ).json()["timestamp"]
            pushes: dict[str, list[float]] = {"watermelon": [], "native": []}
            for _ in range(args.rounds):
                native, melon = _batch(visit_ids, badge)
                melon["last_pulled_at"] = stamp
                melon["device_time"] = native["device_time"]
                for name, path, body in (
                    ("native", "/sync/push", native),
                    ("watermelon", "/sync/watermelon/push", melon),
                ):
                    took, answer = _timed(
                        lambda path=path, body=body: requests.post(
                            base + path, json=body, headers=headers, timeout=120
                        )
                    )
                    answer.raise_for_status()
                    pushes[name].append(took)
    print(
        f"first pull of a {VISITS}-visit day, cards per pull {sorted(sizes)}, {args.rounds} rounds"
    )
    for name, values in pulls.items():
        print(_line(name, values))
    ratio = percentile(pulls["watermelon"], 95) / percentile(pulls["native"], 95)
    print(f"  ratio watermelon/native p95 {ratio:.2f}x")
    print(f"push of 100 records, {args.rounds} rounds, alternating")
    for name, values in pushes.items():
        print(_line(name, values))
    ratio = statistics.median(pushes["watermelon"]) / statistics.median(pushes["native"])
    print(f"  ratio watermelon/native p50 {ratio:.2f}x (target: within 1.5x)")


def _line(name: str, values: list[float]) -> str:
    p50, p95 = percentile(values, 50), percentile(values, 95)
    return f"  {name:10} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms"


if __name__ == "__main__":
    main()
