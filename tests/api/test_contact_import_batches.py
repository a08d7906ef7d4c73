"""The import's batched path (rows matched before they are judged, only new entries judged,
only the calls the rules look back at read from the log) stores exactly what judging every
row against the whole log stores."""

from __future__ import annotations

import json
import random
import sqlite3
from datetime import timedelta

import pytest

from server.cli_context import cli_caller, open_database, runtime
from server.services import contact_compliance, contact_import
from tests.api.test_contacts import call, log
from tests.conftest import T0

OUTCOMES = {
    "phone_call": ("reached", "no_answer", "busy", "voicemail", "promise", "disconnected"),
    "sms": ("sent", "delivered", "received"),
}


def dialer_file(logged: list[dict]) -> list[str]:
    """Calls and messages on three cases over ten days at any hour, with repeats: rows
    logged already, rows twice in the file, the same dialer id twice, inbound contacts."""
    rng = random.Random(5)
    rows = []
    for n in range(60):
        channel = rng.choice(("phone_call", "phone_call", "sms"))
        row = {
            "case_external_id": rng.choice(("C-0001", "C-0002", "C-0003")),
            "channel": channel,
            "direction": rng.choice(("outbound", "outbound", "outbound", "inbound")),
            "occurred_at": (T0 - timedelta(minutes=rng.randrange(10, 4_000))).isoformat(),
            "outcome": rng.choice(OUTCOMES[channel]),
            "agent": rng.choice(("dispatcher", "DISPATCHER", "seat-1", " Seat-1 ")),
            "duration_s": rng.randrange(0, 600),
        }
        if n % 4 == 0:
            row["external_ref"] = f"REF-{rng.randrange(10)}"
        rows.append(row)
    for body in logged:  # the calls staff logged, as the dialer reports them
        rows.append({"case_external_id": "C-0002", "agent": "dispatcher", **body})
    rng.shuffle(rows)
    # The same contact again, next to the first (in the same chunk), as a conversation.
    repeated = []
    for n, row in enumerate(rows):
        repeated.append(row)
        if n % 5 == 0:
            repeated.append({**row, "outcome": OUTCOMES[row["channel"]][0]})
    return [json.dumps(row) for row in repeated]


def _stored(path: str) -> tuple[list, list]:
    conn = sqlite3.connect(path)
    try:
        contacts = conn.execute("SELECT * FROM contacts ORDER BY id").fetchall()
        sources = conn.execute(
            "SELECT contact_id, source, reference FROM contact_sources ORDER BY 1, 2, 3"
        ).fetchall()
    finally:
        conn.close()
    return contacts, sources


def _import(app, lines):
    with app.app_context():
        return contact_import.import_contacts(
            open_database(), runtime(), cli_caller("test"), lines, "jsonl", "test"
        )


@pytest.mark.sqlite_only  # compares two SQLite files copied with the backup API
def test_an_import_stores_what_judging_every_row_against_the_whole_log_stores(
    make_app, app, client, auth, world, db, tmp_path, monkeypatch
):
    logged = []
    for n in range(7):
        body = call(at=T0 - timedelta(days=6 - n, hours=1), outcome=("reached", "no_answer")[n % 2])
        assert log(client, auth, world.cases["C-0002"], body).status_code == 201
        logged.append(body)
    reference_path = tmp_path / "reference.db"
    with sqlite3.connect(reference_path) as copy:
        db.conn.backup(copy)
    copy.close()
    lines = dialer_file(logged)
    monkeypatch.setattr(contact_import, "CHUNK_ROWS", 25)  # matches across chunk boundaries

    report = _import(app, lines)

    judge_all = contact_compliance.contact_flags
    monkeypatch.setattr(
        contact_import,
        "contact_flags",
        lambda db, rt, candidates, judged=None, memo=None: judge_all(db, rt, candidates),
    )
    monkeypatch.setattr(
        contact_compliance,
        "_facts_for_flags",
        lambda db, rt, held, memo: contact_compliance.facts_of_cases(
            db, rt, [c.case_id for c in held]
        ),
    )
    twin = make_app(
        DATABASE=str(reference_path),
        SIGNING_KEY_FILE=str(tmp_path / "doorstep.signing-key.pem"),  # the same server key
    )
    reference = _import(twin, lines)

    assert report == reference
    assert report["already_logged"] >= 7 and report["flagged"] > 0 and report["rejected"] == 0
    assert _stored(app.config["DATABASE"]) == _stored(str(reference_path))
    # Idempotent: the same file again adds nothing.
    again = _import(app, lines)
    assert (again["created"], again["already_logged"]) == (0, again["total_rows"])


def test_a_call_logged_by_someone_else_between_two_chunks_counts_for_the_later_rows(
    app, client, auth, world, db, monkeypatch
):
    """The import remembers the calls it read from chunk to chunk; an entry another source
    logs meanwhile (here a conversation over the API) still reaches the rules of the rows
    after it."""
    monkeypatch.setattr(contact_import, "CHUNK_ROWS", 1)
    case_id = world.cases["C-0001"]
    rows = [
        {
            "case_external_id": "C-0001",
            "channel": "phone_call",
            "occurred_at": (T0 - timedelta(hours=hours)).isoformat(),
            "outcome": "no_answer",
            "agent": "seat-1",
        }
        for hours in (5, 1)
    ]

    def between_chunks(_count):
        if between_chunks.calls == 0:  # after the first row: a conversation two hours ago
            body = call(at=T0 - timedelta(hours=2), outcome="reached")
            assert log(client, auth, case_id, body).status_code == 201
        between_chunks.calls += 1

    between_chunks.calls = 0
    with app.app_context():
        report = contact_import.import_contacts(
            open_database(),
            runtime(),
            cli_caller("test"),
            [json.dumps(r) for r in rows],
            "jsonl",
            "test",
            progress=between_chunks,
        )
    assert (report["created"], report["rejected"]) == (2, 0)
    flagged = {
        row[0]: {f["code"] for f in json.loads(row[1])}
        for row in db.execute(
            "SELECT occurred_at, flags FROM contacts WHERE case_id = ? AND agent_name = ?",
            [case_id, "seat-1"],
        )
    }
    assert len(flagged) == 2
    early, late = sorted(flagged)
    assert "call_after_conversation" not in flagged[early]
    assert "call_after_conversation" in flagged[late]
