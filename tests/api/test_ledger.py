"""The exposure ledger: append-only in the store, hash-chained, verifiable."""

import sqlite3

import pytest

from tests.conftest import TODAY


@pytest.fixture
def served(world, client, auth):
    """Serve some cards so the ledger has entries."""
    for agent in ("agent1", "agent2"):
        assert (
            client.get(f"/api/v1/me/day?date={TODAY}", headers=auth.headers(agent)).status_code
            == 200
        )
    client.get("/api/v1/visits", headers=auth.headers("dispatcher"))
    return world


def _verify(client, auth):
    response = client.get("/api/v1/audit/verify", headers=auth.headers("privacy"))
    assert response.status_code == 200
    return response.json


def test_clean_chain_verifies(served, client, auth, db):
    report = _verify(client, auth)
    count = db.execute("SELECT count(*) FROM exposure_ledger").fetchone()[0]
    assert count == 8
    assert report["intact"] is True
    assert report["entries_checked"] == count
    assert report["first_broken_seq"] is None


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE exposure_ledger SET fields = '[]' WHERE seq = 2",
        "DELETE FROM exposure_ledger WHERE seq = 2",
    ],
)
def test_store_refuses_updates_and_deletes(served, db, statement):
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute(statement)


def _tamper(db, *statements):
    """What an attacker with the database file could do: drop the guards, then edit."""
    db.execute("DROP TRIGGER exposure_ledger_no_update")
    db.execute("DROP TRIGGER exposure_ledger_no_delete")
    for statement in statements:
        db.execute(statement)


def test_altered_entry_is_detected(served, client, auth, db):
    _tamper(db, "UPDATE exposure_ledger SET fields = '[\"display_name\"]' WHERE seq = 3")
    report = _verify(client, auth)
    assert report["intact"] is False
    assert report["first_broken_seq"] == 3
    assert "hash" in report["problem"]


def test_deleted_entry_is_detected(served, client, auth, db):
    _tamper(db, "DELETE FROM exposure_ledger WHERE seq = 4")
    report = _verify(client, auth)
    assert report["intact"] is False
    assert report["first_broken_seq"] == 4


def test_inserted_entry_is_detected(served, client, auth, db):
    row = dict(next(db.query("SELECT * FROM exposure_ledger WHERE seq = 5")))
    _tamper(
        db,
        "UPDATE exposure_ledger SET seq = seq + 1000 WHERE seq >= 5",
        "UPDATE exposure_ledger SET seq = seq - 999 WHERE seq >= 1000",
    )
    row["borrower_id"] = 999
    columns = ", ".join(row)
    db.execute(
        f"INSERT INTO exposure_ledger ({columns}) VALUES ({', '.join('?' * len(row))})",
        list(row.values()),
    )
    report = _verify(client, auth)
    assert report["intact"] is False
    assert report["first_broken_seq"] == 5


def test_rehashed_forgery_breaks_the_link_to_the_next_entry(served, client, auth, db):
    from server.domain.ledger import entry_hash

    row = dict(next(db.query("SELECT * FROM exposure_ledger WHERE seq = 2")))
    row["fields"] = '["display_name"]'
    new_hash = entry_hash(row)
    _tamper(
        db,
        f"UPDATE exposure_ledger SET fields = '[\"display_name\"]', hash = '{new_hash}' "
        "WHERE seq = 2",
    )
    report = _verify(client, auth)
    assert report["intact"] is False
    assert report["first_broken_seq"] == 3


def test_exposure_queries_filter_and_page(served, client, auth, db):
    headers = auth.headers("privacy")
    agent1 = served.users["agent1"]
    mine = client.get(f"/api/v1/audit/exposures?user_id={agent1}", headers=headers).json["items"]
    assert len(mine) == 2 and {e["user_id"] for e in mine} == {agent1}
    borrower = mine[0]["borrower_id"]
    about = client.get(f"/api/v1/audit/exposures?borrower_id={borrower}", headers=headers).json
    assert {e["borrower_id"] for e in about["items"]} == {borrower}
    assert len(about["items"]) == 2  # the agent's day and the dispatcher's list
    device = client.get("/api/v1/audit/exposures?device_id=phone-agent2", headers=headers).json
    assert len(device["items"]) == 2
    by_field = client.get("/api/v1/audit/exposures?field=case_flags", headers=headers).json
    assert len(by_field["items"]) == 4  # only the dispatcher view carries case flags
    page = client.get("/api/v1/audit/exposures?limit=3", headers=headers).json
    assert [e["seq"] for e in page["items"]] == [1, 2, 3] and page["next_after"] == 3
    rest = client.get("/api/v1/audit/exposures?after=3&limit=10", headers=headers).json
    assert [e["seq"] for e in rest["items"]] == [4, 5, 6, 7, 8] and rest["next_after"] is None
    later = client.get("/api/v1/audit/exposures?since=2030-01-01T00:00:00Z", headers=headers)
    assert later.json["items"] == []


def test_privacy_officer_sees_field_names_never_values(served, client, auth, db):
    body = client.get("/api/v1/audit/exposures?limit=100", headers=auth.headers("privacy"))
    text = body.get_data(as_text=True)
    for row in db.query("SELECT full_name, home_address FROM borrowers"):
        assert row["full_name"] not in text
        assert row["home_address"] not in text
