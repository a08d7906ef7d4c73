"""Push validation alone, in one process: the marshmallow path against the msgspec fast path.

Builds batches of 100 records of each kind (and one of all kinds mixed), then times, in
alternating rounds so both paths see the same machine load:

- `marshmallow`: push_validation.check_record for every record (today's path);
- `fast`: push_fast.fast_check, falling back to check_record, as sync_push calls them;
- `fast, no digest`: the fast decode and checks alone, without IncomingRecord.create's
  record digest (which both paths pay).

Prints the median ms per batch of 100 for each. A figure, never a pass/fail.

    .venv/bin/python -m bench.push_validation [--rounds 30]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from server.services import push_fast
from server.services.push_fast import fast_check
from server.services.push_validation import check_record

SHA = "ab" * 32


def _record(kind: str, n: int, body: dict) -> dict:
    at = datetime(2026, 3, 2, 8, tzinfo=UTC) + timedelta(minutes=n)
    return {
        "id": str(uuid.UUID(int=n + 1)),
        "kind": kind,
        "visit_id": 1 + n % 25,
        "device_seq": n,
        "recorded_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "body": body,
    }


def bodies(kind: str, n: int) -> dict:
    """A typical body of the kind, as the reference client sends it."""
    at = (datetime(2026, 3, 2, 8, tzinfo=UTC) + timedelta(minutes=n)).isoformat()
    if kind == "visit_report":
        return {
            "arrived_at": at,
            "departed_at": at,
            "outcome": "promise_to_pay" if n % 3 == 0 else "not_home",
            "promise_amount": "1200.50" if n % 3 == 0 else None,
            "promise_date": "2026-03-20" if n % 3 == 0 else None,
            "notes": f"attempt {n}",
            "location": {"lat": -1.2921, "lon": 36.8219, "accuracy_m": 12},
            "attachments": [SHA],
        }
    if kind == "id_confirmation":
        return {"confirmation_kind": "agent_credential", "badge_number": "B-1001"}
    if kind == "contact":
        return {"channel": "phone_call", "occurred_at": at, "outcome": "reached"}
    return {
        "agreement_id": str(uuid.UUID(int=n + 1)),
        "case_id": 3,
        "visit_id": 1 + n % 25,
        "currency": "KES",
        "total_amount": "3000.00",
        "installments": [
            {"due_date": "2026-04-01", "amount": "1500.00"},
            {"due_date": "2026-05-01", "amount": "1500.00"},
        ],
        "template_id": "plan-v1",
        "template_version": 1,
        "borrower_signature_sha256": SHA,
        "agent_signature_sha256": SHA,
        "signed_at": at,
        "signed_lat": "-1.2921",
        "signed_lon": "36.8219",
        "content_hash": SHA,
    }


KINDS = ("visit_report", "id_confirmation", "agreement", "contact")


def batch_of(kinds: tuple[str, ...]) -> list[dict]:
    """100 records cycling through the given kinds."""
    return [_record(kinds[n % len(kinds)], n, bodies(kinds[n % len(kinds)], n)) for n in range(100)]


def _decode_only(raw: Any) -> object:
    record = msgspec.convert(raw, push_fast._RECORDS[raw["kind"]])
    return push_fast._BODY_CHECKS[type(record.body)](record.body)


PATHS: dict[str, Callable[[Any], object]] = {
    "marshmallow": check_record,
    "fast": lambda raw: fast_check(raw) or check_record(raw),
    "fast, no digest": _decode_only,
}


def measure(batch: list[dict], rounds: int) -> dict[str, float]:
    """Median ms per batch for each path, the paths taking turns every round."""
    times: dict[str, list[float]] = {name: [] for name in PATHS}
    for _ in range(rounds):
        for name, check in PATHS.items():
            started = time.perf_counter()
            for raw in batch:
                check(raw)
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    fast_taken = sum(fast_check(raw) is not None for raw in batch_of(KINDS))
    print(f"records answered by the fast path: {fast_taken} of 100")
    for label, kinds in [*((kind, (kind,)) for kind in KINDS), ("mixed", KINDS)]:
        result = measure(batch_of(kinds), args.rounds)
        figures = ", ".join(f"{name} {ms:.2f}" for name, ms in result.items())
        speedup = result["marshmallow"] / result["fast"]
        print(f"{label:>15}: ms per batch of 100: {figures} ({speedup:.1f}x)")


if __name__ == "__main__":
    main()
