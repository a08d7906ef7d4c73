"""Push the golden corpus through the real API and write down everything a push decides.

For each compliance profile: build the world (world.py), send every push of the corpus
(corpus.py) through the Flask test client as the phone would, and record, as JSON lines:

- per push: the HTTP status, and either the error body or the answer's `server_time` and
  `purges_confirmed`; then one line per outcome (status, reason, message, flags with their
  details as the agent is shown them, content hash, missing blobs, receipt, id_verification);
- at the end, the store rows the pushes wrote or moved: sync_records, sync_rejections,
  agreement_receipts, visits (status, last_outcome, attempts, last_attempt_at), the exposure
  ledger entries of the push endpoint, blob_owners, device_sync and the purge columns of
  device_cards.

Normalisation, all of it:
- The exposure ledger's `seq`, `prev_hash` and `hash` are left out: they chain each entry to
  every earlier one, the world's set-up entries included, so they would change with any
  set-up endpoint's ledgering; the ledger tests check the chain itself.
- Columns holding JSON text (sync_records.outcome and .body, exposure_ledger.fields) are
  written as parsed values, and every line is dumped with sorted keys: a change of JSON
  library or spacing is not a change of outcome. Response bodies likewise.
Nothing else is normalised: request ids are the corpus's own (X-Request-Id), the clock and
the receipt signing key are fixed, and record ids are drawn from the corpus's seeded
generator, so every other value is compared exactly.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sync.compliance import PROFILES

from .build import build_world, midway_changes
from .corpus import Midway, Push, steps
from .world import World

PUSH_PATH = "/api/v1/sync/push"


def line(data: dict[str, Any]) -> str:
    """One JSON line: sorted keys, ASCII only, no spaces."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def run_profile(tmp: Path, profile: str, database: str | None = None) -> Iterator[str]:
    """Every line the corpus gives under one compliance profile (on a SQLite file under
    `tmp`, or on the empty PostgreSQL schema at `database`)."""
    world = build_world(tmp, profile, database)
    yield line(
        {"profile": profile, "world": {"visits": len(world.visits), "cases": len(world.cases)}}
    )
    for step in steps(world):
        world.clock.now = step.at
        if isinstance(step, Midway):
            for change in midway_changes(world):
                yield line({"profile": profile, "change": change})
            continue
        yield from _push(world, step)
    yield from store_lines(world)


def _push(world: World, push: Push) -> Iterator[str]:
    headers = {
        "Authorization": f"Bearer {world.tokens[push.device]}",
        "X-Device-Id": push.device,
        "X-Request-Id": f"golden-push-{push.index:04d}",
    }
    response = world.client.post(PUSH_PATH, json=push.body, headers=headers)
    head: dict[str, Any] = {
        "profile": world.profile,
        "push": push.index,
        "device": push.device,
        "note": push.note,
        "status": response.status_code,
    }
    answer = response.get_json()
    if response.status_code != 200:
        yield line({**head, "error": answer})
        return
    sent = push.body["records"]
    head["records"] = len(sent)
    head["server_time"] = answer["server_time"]
    head["purges_confirmed"] = answer["purges_confirmed"]
    yield line(head)
    for index, outcome in enumerate(answer["outcomes"]):
        yield line({"profile": world.profile, "push": push.index, "i": index, "outcome": outcome})


# (table, columns, JSON columns, WHERE/ORDER BY)
STORE_QUERIES: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    (
        "sync_records",
        "seq, id, kind, agent_id, device_id, visit_id, case_id, device_seq, recorded_at, "
        "received_at, digest, raw_digest, status, outcome, body",
        ("outcome", "body"),
        "ORDER BY seq",
    ),
    (
        "sync_rejections",
        "id, record_id, digest, agent_id, device_id, reason, message, received_at",
        (),
        "ORDER BY id",
    ),
    (
        "agreement_receipts",
        "agreement_id, content_hash, received_at, key_id, signature",
        (),
        "ORDER BY agreement_id",
    ),
    ("visits", "id, status, last_outcome, attempts, last_attempt_at", (), "ORDER BY id"),
    (
        "exposure_ledger",
        "occurred_at, user_id, role, device_id, borrower_id, case_id, visit_id, fields, "
        "purpose, endpoint, request_id, outcome",
        ("fields",),
        f"WHERE endpoint LIKE '%{PUSH_PATH}' ORDER BY seq",
    ),
    (
        "blob_owners",
        "sha256, user_id, device_id, content_type, created_at, referenced_at",
        (),
        "ORDER BY sha256, user_id",
    ),
    (
        "device_sync",
        "device_id, last_push_at, clock_skew_s, queued_count, oldest_queued_at, reported_at",
        (),
        "ORDER BY device_id",
    ),
    (
        "device_cards",
        "device_id, visit_id, purge_reason, purge_ordered_at, purge_confirmed_at",
        (),
        "ORDER BY device_id, visit_id",
    ),
)


def store_lines(world: World) -> Iterator[str]:
    """The rows the pushes left in the store, table by table."""
    from server.storage.connection import open_db

    db = open_db(world.app.config["DATABASE"])
    try:
        for table, columns, json_columns, tail in STORE_QUERIES:
            for data in db.query(f"SELECT {columns} FROM {table} {tail}"):  # noqa: S608
                for name in json_columns:
                    data[name] = json.loads(data[name])
                yield line({"profile": world.profile, "table": table, "row": data})
    finally:
        db.conn.close()


def golden_lines(
    profiles: tuple[str, ...] | None = None,
    store: Callable[[], AbstractContextManager[str]] | None = None,
) -> list[str]:
    """The whole golden output: every profile of sync.compliance, in name order. Each
    profile runs on a SQLite file, or on the PostgreSQL schema `store()` gives (the same
    lines are expected from both engines)."""
    names = profiles or tuple(sorted(PROFILES))
    out: list[str] = []
    # In memory where the machine offers it: the store's fsyncs are most of the run's time.
    # (mkdtemp makes a private directory there, so the shared location is safe.)
    shared_memory = Path("/dev/shm")  # noqa: S108
    base = str(shared_memory) if shared_memory.is_dir() else None
    with tempfile.TemporaryDirectory(prefix="doorstep-golden-", dir=base) as tmp:
        for name in names:
            if store is None:
                out.extend(run_profile(Path(tmp), name))
                continue
            with store() as database:
                out.extend(run_profile(Path(tmp), name, database))
    return out


GOLDEN = Path(__file__).with_name("golden.jsonl.gz")


def write_golden(lines: list[str], path: Path = GOLDEN) -> None:
    """Store the lines gzip'd, with no timestamp in the header, so equal lines give equal
    bytes."""
    data = ("\n".join(lines) + "\n").encode("ascii")
    with (
        path.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9) as out,
    ):
        out.write(data)


def read_golden(path: Path = GOLDEN) -> list[str]:
    """The stored lines."""
    return gzip.decompress(path.read_bytes()).decode("ascii").splitlines()
