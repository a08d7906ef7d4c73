"""Steps the lifecycle scenarios share: a phone pushing a report and pulling, a dispatcher
reading and changing a case, the ledger's last entry."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

from tests.conftest import T0

API = "/api/v1"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def report(visit_id: int, outcome: str, arrived: datetime = T0 - timedelta(minutes=30), **body):
    """A visit report as a phone records it, at the home of the world's first borrower."""
    fields = {
        "arrived_at": iso(arrived),
        "departed_at": iso(arrived + timedelta(minutes=15)),
        "outcome": outcome,
        "location": {"lat": 31.201, "lon": 121.401, "accuracy_m": 10},
        **body,
    }
    return {
        "id": str(uuid.uuid4()),
        "kind": "visit_report",
        "visit_id": visit_id,
        "device_seq": 1,
        "recorded_at": iso(arrived + timedelta(minutes=15)),
        "body": fields,
    }


def push(client, auth, user: str, records: list[dict], now: datetime = T0) -> list[dict]:
    body = {"device_time": iso(now), "records": records}
    response = client.post(f"{API}/sync/push", json=body, headers=auth.headers(user))
    assert response.status_code == 200, response.json
    return response.json["outcomes"]


def pull(client, auth, user: str, cursor: str | None = None) -> dict:
    query = {"cursor": cursor} if cursor else {}
    response = client.get(f"{API}/sync/pull", query_string=query, headers=auth.headers(user))
    assert response.status_code == 200, response.json
    return response.json


def dispatcher_visit(client, auth, visit_id: int) -> dict:
    response = client.get(f"{API}/visits/{visit_id}", headers=auth.headers("dispatcher"))
    assert response.status_code == 200, response.json
    return response.json


def case_version(client, auth, case_id: int) -> int:
    response = client.get(f"{API}/cases/{case_id}", headers=auth.headers("dispatcher"))
    assert response.status_code == 200, response.json
    return response.json["version"]


def change_case(client, auth, case_id: int, user: str = "dispatcher", **body):
    body.setdefault("reason", "as the bank told us")
    if "version" not in body:
        body["version"] = case_version(client, auth, case_id)
    return client.patch(f"{API}/cases/{case_id}", json=body, headers=auth.headers(user))


def import_rows(client, auth, rows: list[dict]) -> dict:
    response = client.post(
        f"{API}/cases/import",
        data="\n".join(json.dumps(r) for r in rows),
        headers={**auth.headers("dispatcher"), "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.json
    return response.json


def plan_visit(client, auth, case_id: int, agent_id: int | None, day: str, **extra) -> dict:
    body = {
        "case_id": case_id,
        "agent_id": agent_id,
        "visit_date": day,
        "notice": {"kind": "appointment"},
        **extra,
    }
    return client.post(f"{API}/visits", json=body, headers=auth.headers("dispatcher"))


def ledger_head(db) -> int:
    return db.execute("SELECT coalesce(max(seq), 0) FROM exposure_ledger").fetchone()[0]


def borrower_of(db, case_id: int) -> int:
    return db.execute("SELECT borrower_id FROM cases WHERE id = ?", [case_id]).fetchone()[0]


def stored_flags(db, record_id: str) -> list[str]:
    """The flag codes a reviewer reads on a stored record."""
    outcome = db.execute("SELECT outcome FROM sync_records WHERE id = ?", [record_id]).fetchone()
    return [flag["code"] for flag in json.loads(outcome[0])["flags"]]
