"""The pull tells the ledger whose each of its records is (pull_reads.outcomes_after,
exposure.note_owners) instead of accounting reading it again: the owners are those
ledger.subjects reads, and the ledger entries are the same as without them."""

from __future__ import annotations

import json

from server.services import exposure
from server.storage import ledger as ledger_rows
from server.storage import pull_reads
from tests.api.test_sync import credential, push, report

_SAME = ("user_id", "role", "device_id", "borrower_id", "case_id", "visit_id", "fields")


def _records(world):
    records = [
        report(world.visits["v1"], 1),
        credential(world.visits["v1"], 2),
        # Far from the home: flagged (location_mismatch), a fact the ledger accounts for.
        report(world.visits["v2"], 3, location={"lat": 31.5, "lon": 121.7, "accuracy_m": 10}),
        report(world.visits["v3"], 4),  # another agent's visit: rejected, no owner noted
    ]
    records[2]["id"] = records[2]["id"].upper()  # answered as sent, stored in lower case
    return records


def test_the_owners_the_pull_reads_are_those_ledger_subjects_reads(world, client, auth, db):
    push(client, auth, _records(world))
    rows = pull_reads.outcomes_after(db, "phone-agent1", 0, 200)
    assert rows
    owners = {r["id"]: (r["borrower_id"], r["case_id"], r["visit_id"]) for r in rows}
    assert ledger_rows.subjects(db, "record", list(owners)) == owners


def _pull_entries(client, auth, db):
    start = db.execute("SELECT COALESCE(MAX(seq), 0) FROM exposure_ledger").fetchone()[0]
    answer = client.get("/api/v1/sync/pull?limit=200", headers=auth.headers("agent1"))
    assert answer.status_code == 200
    rows = db.execute(
        f"SELECT {', '.join(_SAME)} FROM exposure_ledger WHERE seq > ? ORDER BY seq", [start]
    ).fetchall()
    body = answer.json
    body.pop("cursor"), body.pop("server_time")
    return rows, json.dumps(body, sort_keys=True)


def test_a_pull_ledgers_the_same_with_or_without_the_owners_noted(
    world, client, auth, db, monkeypatch
):
    push(client, auth, _records(world))
    noted = _pull_entries(client, auth, db)
    monkeypatch.setattr(exposure, "note_owners", lambda kind, owners: None)
    read = _pull_entries(client, auth, db)
    assert noted == read
    assert noted[0] and any("flag_details" in row[-1] for row in noted[0])
