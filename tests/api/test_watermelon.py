"""The WatermelonDB front door through the API: change sets in and out, the native
guarantees kept (outcomes, idempotency, purges, disclosure, the ledger)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

import click
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.keys import development_key_path
from server.services import watermelon as watermelon_service
from sync.watermelon import TABLES, app_schema_js
from tests.conftest import T0, Auth

PULL = "/api/v1/sync/watermelon/pull"
PUSH = "/api/v1/sync/watermelon/push"


def ms(moment) -> int:
    return int(moment.timestamp() * 1000)


def pull(client, headers, stamp=None, **args):
    query = {"last_pulled_at": "null" if stamp is None else stamp, "schema_version": 1, **args}
    answer = client.get(PULL, query_string=query, headers=headers)
    assert answer.status_code == 200, answer.json
    return answer.json


def push(client, headers, stamp, changes, status=200):
    answer = client.post(
        PUSH,
        json={"last_pulled_at": stamp, "device_time": T0.isoformat(), "changes": changes},
        headers=headers,
    )
    assert answer.status_code == status, answer.json
    return answer.json


def credential_row(visit_id, seq=1):
    return {
        "id": str(uuid.uuid4()),
        "_status": "created",
        "_changed": "",
        "visit_id": str(visit_id),
        "device_seq": seq,
        "recorded_at": ms(T0 - timedelta(minutes=41)),
        "confirmation_kind": "agent_credential",
        "badge_number": "B-1",
        "borrower_acknowledged": True,
        "id_last6": None,
        "attachments": None,
    }


def report_row(visit_id, seq=2, **columns):
    row = {
        "id": str(uuid.uuid4()),
        "_status": "created",
        "_changed": "",
        "visit_id": str(visit_id),
        "device_seq": seq,
        "recorded_at": ms(T0 - timedelta(minutes=20)),
        "arrived_at": ms(T0 - timedelta(minutes=40)),
        "departed_at": ms(T0 - timedelta(minutes=20)),
        "contacted_at": None,
        "outcome": "met_borrower",
        "promise_amount": None,
        "promise_date": None,
        "notes": "Spoke at the door.",
        "location_lat": 31.201,
        "location_lon": 121.401,
        "location_accuracy_m": 12,
        "third_party_present": False,
        "debt_discussed_with_third_party": False,
        "attachments": "[]",
    }
    row.update(columns)
    return row


def test_first_pull_sends_the_days_visits_with_cards_as_created_rows(world, client, auth, db):
    body = pull(client, auth.headers("agent1"))
    visits = body["changes"]["visits"]
    ids = {row["id"] for row in visits["created"]}
    assert ids == {str(world.visits["v1"]), str(world.visits["v2"])}
    assert visits["updated"] == [] and visits["deleted"] == []
    row = next(r for r in visits["created"] if r["id"] == str(world.visits["v1"]))
    assert row["display_name"] and row["borrower_id"] and row["window_start"] == "09:00"
    assert isinstance(row["card_expires_at"], int)
    assert "national_id" not in json.dumps(body) and "id_number" not in row
    assert body["timestamp"] == ms(T0)
    # every table of the app schema is named
    assert set(body["changes"]) == {
        "visits",
        "record_outcomes",
        "visit_reports",
        "id_confirmations",
        "agreements",
        "contact_attempts",
    }
    # the cards were ledgered, one entry per borrower, for the pull
    entries = list(
        db.query("SELECT * FROM exposure_ledger WHERE endpoint LIKE ?", ["%/sync/watermelon/pull"])
    )
    assert len(entries) == 2 and all("display_name" in e["fields"] for e in entries)


def test_push_stores_records_and_the_next_pull_brings_their_outcomes(world, client, auth, db):
    headers = auth.headers("agent1")
    stamp = pull(client, headers)["timestamp"]
    v1 = world.visits["v1"]
    cred, rep = credential_row(v1), report_row(v1)
    answer = push(
        client,
        headers,
        stamp,
        {
            "id_confirmations": {"created": [cred], "updated": [], "deleted": []},
            "visit_reports": {"created": [rep], "updated": [], "deleted": []},
        },
    )
    assert answer["experimentalRejectedIds"] == {}
    stored = {r["id"]: r for r in db.query("SELECT * FROM sync_records")}
    assert set(stored) == {cred["id"], rep["id"]}
    assert json.loads(stored[rep["id"]]["body"])["location"]["lat"] == 31.201
    assert stored[rep["id"]]["recorded_at"].startswith("2026-11-24T01:40:00")

    after = pull(client, headers, stamp)
    outcomes = {r["id"]: r for r in after["changes"]["record_outcomes"]["created"]}
    assert set(outcomes) == {cred["id"], rep["id"]}
    assert outcomes[rep["id"]]["status"] in ("accepted", "flagged")
    assert outcomes[rep["id"]]["record_kind"] == "visit_report"
    # v1 was delivered and unchanged except for its status: sent as an update
    assert [r["id"] for r in after["changes"]["visits"]["updated"]] == [str(v1)]
    assert after["changes"]["visits"]["created"] == []
    # the confirmation's typed characters are cleared on the phone once answered
    assert after["changes"]["id_confirmations"]["updated"] == [{"id": cred["id"], "id_last6": None}]
    # nothing new the time after
    again = pull(client, headers, after["timestamp"])
    assert again["changes"]["record_outcomes"]["created"] == []
    assert again["changes"]["visits"]["updated"] == []


def test_a_replayed_push_stores_nothing_twice(world, client, auth, db):
    headers = auth.headers("agent1")
    stamp = pull(client, headers)["timestamp"]
    rep = report_row(world.visits["v1"])
    changes = {"visit_reports": {"created": [rep], "updated": [], "deleted": []}}
    push(client, headers, stamp, changes)
    push(client, headers, stamp, changes)
    # sendCreatedAsUpdated: the same row as an update is the same record
    push(
        client, headers, stamp, {"visit_reports": {"created": [], "updated": [rep], "deleted": []}}
    )
    assert db.execute("SELECT count(*) FROM sync_records").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM sync_rejections").fetchone()[0] == 0


def test_a_malformed_row_is_answered_in_outcomes_and_costs_no_other_row(world, client, auth, db):
    headers = auth.headers("agent1")
    stamp = pull(client, headers)["timestamp"]
    good, bad = report_row(world.visits["v1"]), report_row(world.visits["v1"], outcome="danced")
    answer = push(
        client,
        headers,
        stamp,
        {"visit_reports": {"created": [good, bad], "updated": [], "deleted": []}},
    )
    assert answer["experimentalRejectedIds"] == {}
    assert [r["id"] for r in db.query("SELECT id FROM sync_records")] == [good["id"]]
    outcomes = pull(client, headers, stamp)["changes"]["record_outcomes"]["created"]
    refused = next(o for o in outcomes if o["id"] == bad["id"])
    assert refused["status"] == "rejected" and refused["reason"] == "malformed"
    assert "outcome" in refused["message"]
    # The phone learns which of its tables the refused row came from.
    assert refused["record_kind"] == "visit_report"


def test_a_row_waiting_for_its_blob_stays_unsynced(world, client, auth, db):
    headers = auth.headers("agent1")
    stamp = pull(client, headers)["timestamp"]
    row = report_row(world.visits["v1"], attachments=json.dumps(["ab" * 32]))
    answer = push(
        client, headers, stamp, {"visit_reports": {"created": [row], "updated": [], "deleted": []}}
    )
    assert answer["experimentalRejectedIds"] == {"visit_reports": [row["id"]]}
    assert db.execute("SELECT count(*) FROM sync_records").fetchone()[0] == 0


def test_a_reassigned_visit_is_deleted_and_the_next_sync_acknowledges_it(world, client, auth, db):
    headers = auth.headers("agent1")
    first = pull(client, headers)
    v2 = world.visits["v2"]
    moved = client.patch(
        f"/api/v1/visits/{v2}",
        json={"agent_id": world.users["agent2"]},
        headers={**auth.headers("dispatcher"), "If-Match": "1"},
    )
    assert moved.status_code == 200, moved.json
    second = pull(client, headers, first["timestamp"])
    assert second["changes"]["visits"]["deleted"] == [str(v2)]
    open_order = "SELECT purge_confirmed_at FROM device_cards WHERE visit_id = ?"
    assert db.execute(open_order, [v2]).fetchone()[0] is None
    # an old timestamp (the answer to `second` lost) acknowledges nothing; sent again
    again = pull(client, headers, first["timestamp"])
    assert again["changes"]["visits"]["deleted"] == [str(v2)]
    assert db.execute(open_order, [v2]).fetchone()[0] is None
    # the push that follows the applied pull presents its timestamp: acknowledged
    answer = push(client, headers, again["timestamp"], {})
    assert answer["purges_confirmed"] == [v2]
    assert db.execute(open_order, [v2]).fetchone()[0] is not None
    assert pull(client, headers, again["timestamp"])["changes"]["visits"]["deleted"] == []


def test_unknown_timestamp_is_a_first_sync(world, client, auth):
    headers = auth.headers("agent1")
    pull(client, headers)
    body = pull(client, headers, 12345)
    assert len(body["changes"]["visits"]["created"]) == 2


def test_send_created_as_updated(world, client, auth):
    body = pull(client, auth.headers("agent1"), send_created_as_updated="true")
    assert body["changes"]["visits"]["created"] == []
    assert len(body["changes"]["visits"]["updated"]) == 2


def test_turbo_and_other_schema_versions_are_refused(world, client, auth):
    headers = auth.headers("agent1")
    turbo = client.get(PULL, query_string={"turbo": "true"}, headers=headers)
    assert turbo.status_code == 422 and turbo.json["error"]["code"] == "sync_option_unsupported"
    assert turbo.json["error"]["field"] == "turbo"
    version = client.get(PULL, query_string={"schema_version": 2}, headers=headers)
    assert version.status_code == 422 and version.json["error"]["field"] == "schema_version"


def test_a_change_set_naming_an_unknown_table_fails_whole(world, client, auth, db):
    headers = auth.headers("agent1")
    stamp = pull(client, headers)["timestamp"]
    rep = report_row(world.visits["v1"])
    answer = client.post(
        PUSH,
        json={
            "last_pulled_at": stamp,
            "changes": {
                "visit_reports": {"created": [rep], "updated": [], "deleted": []},
                "borrowers": {"created": [], "updated": [], "deleted": []},
            },
        },
        headers=headers,
    )
    assert answer.status_code == 422
    assert answer.json["error"] == {
        **answer.json["error"],
        "code": "validation_failed",
        "field": "changes.borrowers",
    }
    assert db.execute("SELECT count(*) FROM sync_records").fetchone()[0] == 0
    idless = client.post(
        PUSH,
        json={"last_pulled_at": stamp, "changes": {"visit_reports": {"created": [{"x": 1}]}}},
        headers=headers,
    )
    assert idless.status_code == 422
    assert idless.json["error"]["code"] == "invalid_change_set"
    assert idless.json["error"]["field"] == "changes.visit_reports.created.0"


def test_too_many_rows_fail_whole(world, auth, make_app, db):
    client = make_app(WATERMELON_MAX_PUSH_RECORDS=2).test_client()
    headers = auth.headers("agent1")
    stamp = pull(client, headers)["timestamp"]
    rows = [report_row(world.visits["v1"], seq=n) for n in range(3)]
    answer = push(
        client,
        headers,
        stamp,
        {"visit_reports": {"created": rows, "updated": [], "deleted": []}},
        413,
    )
    assert answer["error"]["code"] == "batch_too_large"
    assert db.execute("SELECT count(*) FROM sync_records").fetchone()[0] == 0


def test_more_rows_than_a_native_batch_are_stored_together(world, auth, make_app, db):
    client = make_app(MAX_PUSH_RECORDS=2).test_client()
    headers = auth.headers("agent1")
    stamp = pull(client, headers)["timestamp"]
    rows = [report_row(world.visits["v1"], seq=n) for n in range(5)]
    push(client, headers, stamp, {"visit_reports": {"created": rows, "updated": [], "deleted": []}})
    assert db.execute("SELECT count(*) FROM sync_records").fetchone()[0] == 5


def test_a_revoked_device_is_told_to_wipe(world, client, auth):
    headers = auth.headers("agent1")
    stamp = pull(client, headers)["timestamp"]
    revoked = client.post(
        "/api/v1/devices/phone-agent1/revoke",
        json={"reason": "lost"},
        headers=auth.headers("admin"),
    )
    assert revoked.status_code == 200, revoked.json
    for answer in (
        client.get(PULL, query_string={"last_pulled_at": stamp}, headers=headers),
        client.post(PUSH, json={"last_pulled_at": stamp, "changes": {}}, headers=headers),
    ):
        assert answer.status_code == 401
        assert answer.json["error"]["code"] == "device_revoked"
        assert answer.json["error"]["details"]["wipe"] is True


def test_only_agents_with_their_device(world, client, auth):
    assert client.get(PULL, headers=auth.headers("dispatcher")).status_code == 403
    headers = dict(auth.headers("agent1"))
    headers.pop("X-Device-Id")
    answer = client.get(PULL, headers=headers)
    assert answer.status_code == 401 and answer.json["error"]["code"] == "device_mismatch"


def test_the_documented_app_schema_is_the_one_served():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "watermelondb.md").read_text()
    assert app_schema_js() in doc
    for table in TABLES:
        assert f"### `{table.name}`" in doc
        for column in table.columns:
            assert f"| `{column.name}` | {column.type} |" in doc, (table.name, column.name)


def test_a_day_larger_than_one_answer_comes_in_pages_without_repeats(
    world, auth, make_app, monkeypatch
):
    # One native page of one visit, one page per answer: the phone follows `has_more`.
    monkeypatch.setattr(watermelon_service, "PAGE", 1)
    client = make_app(WATERMELON_MAX_PULL_PAGES=1).test_client()
    headers = auth.headers("agent1")
    first = pull(client, headers)
    assert first["has_more"] is True
    assert len(first["changes"]["visits"]["created"]) == 1
    second = pull(client, headers, first["timestamp"])
    assert second["has_more"] is False
    assert len(second["changes"]["visits"]["created"]) == 1
    ids = [row["id"] for body in (first, second) for row in body["changes"]["visits"]["created"]]
    assert sorted(ids) == sorted(str(world.visits[v]) for v in ("v1", "v2"))
    # Nothing left: the next pull is empty.
    third = pull(client, headers, second["timestamp"])
    assert third["has_more"] is False
    assert third["changes"]["visits"] == {"created": [], "updated": [], "deleted": []}


def test_after_a_key_rotation_the_phone_is_sent_its_day_again(
    world, app, make_app, client, auth, tmp_path
):
    # The stored cursor is signed with a key derived from the signing key: after a rotation
    # it no longer verifies, and the phone's last_pulled_at counts as a first sync (its rows
    # come again, nothing is refused), not as an error it cannot get out of.
    stamp = pull(client, auth.headers("agent1"))["timestamp"]
    old_key_file = development_key_path(app.extensions["doorstep"].settings)
    new_key_file = tmp_path / "new-key.pem"
    new_key_file.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with click.Context(click.Command("keys")):
        pending = make_app(SIGNING_KEY_FILE=str(new_key_file))
    rotated = pending.test_cli_runner().invoke(
        args=["keys", "rotate", "--previous-key-file", str(old_key_file)]
    )
    assert rotated.exit_code == 0, rotated.output
    new_client = make_app(SIGNING_KEY_FILE=str(new_key_file)).test_client()
    again = pull(new_client, Auth(new_client).headers("agent1"), stamp)
    created = sorted(row["id"] for row in again["changes"]["visits"]["created"])
    assert created == sorted(str(world.visits[v]) for v in ("v1", "v2"))
    assert again["timestamp"] > stamp
