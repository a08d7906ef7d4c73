"""Pull answers after the golden push corpus, byte for byte: the pull golden.

Builds the push corpus's world (tests/golden/push) under the default profile, sends every
push of the corpus, imports payments against a third of the cases (paid in full, in part,
late, before and after promises fall due) so the cards' repayment statuses take every
state, then lets every phone pull: its pages from its last cursor (7 cards a page, following
`has_more`), a fresh pull with no cursor, and one after a reassignment moves a visit away.
Records, as JSON lines: each pull's HTTP status and its response body exactly as the server
wrote it (the text, not a parse of it), then the rows the pulls wrote: device_cards (the
card digests a later pull compares against) and the pull endpoint's exposure ledger entries
(without `seq`, `prev_hash` and `hash`, which chain to every earlier entry).
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import tempfile
from datetime import timedelta
from pathlib import Path

from tests.golden.push.build import build_world, midway_changes
from tests.golden.push.corpus import Midway, steps
from tests.golden.push.driver import _push, line, write_golden
from tests.golden.push.plans import AGENTS
from tests.golden.push.world import World

PULL_PATH = "/api/v1/sync/pull"
GOLDEN = Path(__file__).with_name("golden.jsonl.gz")
PAGE = 7


def _old_promises(world: World) -> list[dict]:
    """Each phone reports promises made two weeks ago and already due, on three of its
    agent's visits; the first is paid in part on time (partly kept), the second not at all
    (broken), the third in full (kept). Payments for them, as import rows."""
    conn = sqlite3.connect(world.app.config["DATABASE"])
    payments = []
    try:
        for agent, _, phones in AGENTS:
            for n, phone in enumerate(phones):
                visits = conn.execute(
                    "SELECT v.id, c.external_id FROM visits v JOIN cases c ON c.id = v.case_id "
                    "WHERE v.agent_id = ? ORDER BY v.id LIMIT 3 OFFSET ?",
                    [world.users[agent], 3 * n],
                ).fetchall()
                records = []
                for seq, (visit_id, external_id) in enumerate(visits):
                    records.append(
                        {
                            "id": f"00000000-0000-4000-8000-{visit_id:06d}{seq:06d}",
                            "kind": "visit_report",
                            "visit_id": visit_id,
                            "device_seq": 900 + seq,
                            "recorded_at": "2026-11-10T03:00:00Z",
                            "body": {
                                "arrived_at": "2026-11-10T02:00:00Z",
                                "outcome": "promise_to_pay",
                                "promise_amount": "200.00",
                                "promise_date": "2026-11-14",
                            },
                        }
                    )
                    if seq != 1:
                        payments.append(
                            {
                                "payment_id": f"GOLDEN-OLD-{visit_id}",
                                "case_external_id": external_id,
                                "amount": "80.00" if seq == 0 else "200.00",
                                "currency": "CNY",
                                "paid_at": "2026-11-12T10:00:00+08:00",
                                "source": "bank_transfer",
                            }
                        )
                body = {"device_time": world.clock.now.isoformat(), "records": records}
                world.call("POST", "/api/v1/sync/push", phone, (200,), json=body)
    finally:
        conn.close()
    return payments


def _payments(world: World) -> None:
    conn = sqlite3.connect(world.app.config["DATABASE"])
    try:
        cases = [r[0] for r in conn.execute("SELECT external_id FROM cases ORDER BY id")]
    finally:
        conn.close()
    rows = _old_promises(world)
    for index, external_id in enumerate(cases[::3]):
        for part in range(index % 3 + 1):
            day = 10 + (index * 7 + part * 5) % 20
            rows.append(
                {
                    "payment_id": f"GOLDEN-PAY-{index}-{part}",
                    "case_external_id": external_id,
                    "amount": f"{50 + (index * 37 + part * 91) % 400}.{index % 10}0",
                    "currency": "CNY",
                    "paid_at": f"2026-11-{day:02d}T10:00:00+08:00",
                    "source": "bank_transfer",
                }
            )
    world.call(
        "POST",
        "/api/v1/payments/import",
        "dispatcher",
        (200,),
        data="\n".join(json.dumps(r) for r in rows),
        headers={"Content-Type": "application/x-ndjson"},
    )


def _pull(world: World, phone: str, label: str, cursor: str | None) -> tuple[list[str], str]:
    """A phone's pages from `cursor`: lines, and the last cursor."""
    lines = []
    for page in range(100):
        query = {"limit": PAGE, **({"cursor": cursor} if cursor else {})}
        headers = {
            "Authorization": f"Bearer {world.tokens[phone]}",
            "X-Device-Id": phone,
            "X-Request-Id": f"golden-pull-{phone}-{label}-{page}",
        }
        response = world.client.get(PULL_PATH, query_string=query, headers=headers)
        text = response.get_data(as_text=True)
        lines.append(
            line(
                {
                    "phone": phone,
                    "pull": label,
                    "page": page,
                    "status": response.status_code,
                    "body": text,
                }
            )
        )
        if response.status_code != 200 or not json.loads(text)["has_more"]:
            break
        cursor = json.loads(text)["cursor"]
    return lines, cursor or ""


def _rows(world: World) -> list[str]:
    conn = sqlite3.connect(world.app.config["DATABASE"])
    conn.row_factory = sqlite3.Row
    try:
        cards = conn.execute("SELECT * FROM device_cards ORDER BY device_id, visit_id")
        ledger = conn.execute(
            "SELECT occurred_at, user_id, role, device_id, borrower_id, case_id, visit_id, "
            "fields, purpose, endpoint, request_id, outcome FROM exposure_ledger "
            f"WHERE endpoint LIKE '%{PULL_PATH}' ORDER BY seq"
        )
        return [line({"table": "device_cards", "row": dict(r)}) for r in cards] + [
            line({"table": "exposure_ledger", "row": dict(r)}) for r in ledger
        ]
    finally:
        conn.close()


def pull_lines() -> list[str]:
    """The whole pull golden output."""
    shared_memory = Path("/dev/shm")  # noqa: S108
    base = str(shared_memory) if shared_memory.is_dir() else None
    with tempfile.TemporaryDirectory(prefix="doorstep-golden-pull-", dir=base) as tmp:
        world = build_world(Path(tmp), "default")
        for step in steps(world):
            world.clock.now = step.at
            if isinstance(step, Midway):
                list(midway_changes(world))
            else:
                list(_push(world, step))
        _payments(world)
        phones = [phone for _, _, agent_phones in AGENTS for phone in agent_phones]
        out: list[str] = []
        cursors = {}
        for phone in phones:
            lines, cursors[phone] = _pull(world, phone, "catch-up", None)
            out += lines
        world.clock.now += timedelta(hours=2)
        for phone in phones:
            out += _pull(world, phone, "later", cursors[phone])[0]
            out += _pull(world, phone, "fresh", None)[0]
        world.clock.now += timedelta(days=1)
        for phone in phones:
            out += _pull(world, phone, "next-day", cursors[phone])[0]
        out += _rows(world)
        return out


def read_golden(path: Path = GOLDEN) -> list[str]:
    """The stored lines."""
    return gzip.decompress(path.read_bytes()).decode("ascii").splitlines()


def write(path: Path = GOLDEN) -> None:
    """Regenerate on purpose: `python -m tests.golden.pull.driver` (say why in the commit)."""
    lines = pull_lines()
    write_golden(lines, path)
    print(f"wrote {len(lines)} lines to {path}")


if __name__ == "__main__":
    write()
