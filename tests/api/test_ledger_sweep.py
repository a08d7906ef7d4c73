"""The ledger sweep: every operation of the OpenAPI document, called as every role.

For each answer with a 2xx status, the borrower facts in its body must be in the exposure-
ledger entries written for that request (found by its X-Request-Id), one entry per borrower;
an answer that is not 2xx writes none. Facts in a body are found two ways:

- by the declarations the OpenAPI document publishes (`x-borrower-fact`, `-keys`,
  `x-borrower-subject`), walked here without the server's own walker;
- independently of any declaration, by the values seeded in the world (names, masked phones,
  addresses, home positions, visit notes, the agent's field notes, GPS fixes, agreement
  amounts) and by recomputing route legs from the homes, so that a field whose declaration
  was forgotten is caught.

Privacy officers, admins and callers without a token must receive no borrower value at all,
and nobody ever receives a value that is never disclosed (national ID, full phone, contacts,
date of birth, employer, income, work address).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest

from server.domain.disclosure import build_policy
from server.domain.routing import DEFAULT_ROAD_FACTOR
from sync.canonical import agreement_content_hash
from tests.conftest import PASSWORD, T0, TODAY, case_row

API = "/api/v1"
ROLES = ("agent", "dispatcher", "privacy_officer", "admin", "anonymous")
USER_OF_ROLE = {
    "agent": "agent1",
    "dispatcher": "dispatcher",
    "privacy_officer": "privacy",
    "admin": "admin",
}
NO_VALUES_FOR = {"privacy_officer", "admin", "anonymous"}
PNG = b"\x89PNG\r\n\x1a\n"
FIELD_NOTE = "SWEEP field note: dog at the gate, borrower one"
PUSH_NOTE = "SWEEP pushed note about borrower two"
CANCEL_REASON = "SWEEP cancel: borrower says already paid"
REQUEST_NOTE = "SWEEP request note: call the daughter instead"
CONTACT_NOTE = "SWEEP contact note: borrower hung up on the call"
GPS_FIX = (31.2013, 121.4013)
GPS_FIX_V3 = (31.2032, 121.4032)
SIGNED_AT = ("31.2014", "121.4014")
INSTALMENT = "450.15"

# Operations the sweep cannot bring to a 2xx answer, each with the reason. Empty: every
# operation is covered; a new one that is not fails test_the_sweep_covers_every_operation.
# Account administration that carries no borrower data, and whose 2xx would end the
# sessions or need state the sweep's other calls depend on; each is driven to its 2xx in
# the test named.
NOT_COVERED: dict[tuple[str, str], str] = {
    ("POST", "/auth/password"): "a handed-over password; no borrower data (test_role_grants.py)",
    ("POST", "/role-grants/{grant_id}/approve"): "needs a pending grant (test_role_grants.py)",
    ("POST", "/role-grants/{grant_id}/reject"): "needs a pending grant (test_role_grants.py)",
    # Binary answers the sweep cannot read for values; each writes its ledger entry itself,
    # and test_evidence_pack.py checks that entry (who, borrower, case, facts, purpose).
    ("GET", "/attachments/{sha256}/content"): "image bytes; entry checked in "
    "test_evidence_pack.py (attachment_bytes, attachment:<sha256>)",
    ("POST", "/cases/{case_id}/evidence-pack"): "a tar of a BagIt bag, the one answer that "
    "carries values to a privacy officer; entry checked in test_evidence_pack.py",
}

# Side effects decide the order: uploads are read before they complete, the cancelled and
# patched visits exist before they are read, sessions and devices end last.
FIRST = (
    ("POST", "/sync/push"),
    ("POST", "/visits/{visit_id}/cancel"),
    ("PATCH", "/visits/{visit_id}"),
    ("PUT", "/agents/{agent_id}/days/{day}/order"),
    ("GET", "/attachments/uploads/{upload_id}"),
)
LAST = (
    ("PATCH", "/attachments/uploads/{upload_id}"),
    ("POST", "/devices/{device_id}/revoke"),
    ("POST", "/devices/wipe-confirmation"),
    ("POST", "/auth/refresh"),
    ("POST", "/auth/logout"),
)
# Other representations of the same operation (CSV, HTML pages).
VARIANTS = {
    ("GET", "/audit/borrowers/{borrower_id}/disclosures"): ["", "?format=csv", "?format=html"],
    ("GET", "/audit/records-of-processing"): ["", "?format=html"],
    # a day is required; CSV and HTML are scanned for seeded values like JSON leaves
    ("GET", "/register"): [
        f"?day={TODAY}",
        f"?day={TODAY}&format=csv",
        f"?day={TODAY}&format=html",
    ],
    ("GET", "/me/day"): ["", f"?date={TODAY}"],
    # from the agent's last reported position: the route names the visit it was taken at
    ("GET", "/agents/{agent_id}/days/{day}/route"): ["", "?start=last_position"],
    ("POST", "/agents/{agent_id}/days/{day}/route-proposal"): ["", "?start=last_position"],
    # judged after the promise and both instalments fell due: every item carries terms
    ("GET", "/worklists/promises"): ["", "?day=2027-02-01"],
}


def iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the world the sweep runs in ----------------------------------------------------------


@dataclass
class Sweep:
    world: Any
    client: Any
    auth: Any
    db: Any
    ids: dict[str, Any] = field(default_factory=dict)
    counter: int = 0

    def next(self) -> int:
        self.counter += 1
        return self.counter

    def headers(self, role: str) -> dict[str, str]:
        return {} if role == "anonymous" else self.auth.headers(USER_OF_ROLE[role])

    def one(self, sql: str, *params: Any) -> Any:
        return self.db.execute(sql, list(params)).fetchone()[0]


def _push(sweep: Sweep, records: list[dict]) -> dict:
    body = {"device_time": iso(T0), "records": records}
    answer = sweep.client.post(f"{API}/sync/push", json=body, headers=sweep.headers("agent"))
    assert answer.status_code == 200, answer.json
    return answer.json


def _upload(sweep: Sweep, data: bytes) -> str:
    digest = sha(data)
    answer = sweep.client.put(
        f"{API}/attachments/{digest}",
        data=data,
        headers={**sweep.headers("agent"), "Content-Type": "image/png"},
    )
    assert answer.status_code in (200, 201), answer.json
    return digest


def _record(kind: str, visit_id: int, seq: int, minutes_ago: int, body: dict) -> dict:
    return {
        "id": f"00000000-0000-4000-8000-{seq:012d}",
        "kind": kind,
        "visit_id": visit_id,
        "device_seq": seq,
        "recorded_at": iso(T0 - timedelta(minutes=minutes_ago)),
        "body": body,
    }


def _agreement(sweep: Sweep, visit_id: int, case_id: int) -> dict:
    borrower_sig, agent_sig = _upload(sweep, PNG + b"b-sig"), _upload(sweep, PNG + b"a-sig")
    record = _record("agreement", visit_id, 4, 25, {})
    body = {
        "agreement_id": record["id"],
        "case_id": case_id,
        "visit_id": visit_id,
        "currency": "CNY",
        "total_amount": "900.30",
        "installments": [
            {"due_date": "2026-12-15", "amount": INSTALMENT},
            {"due_date": "2027-01-15", "amount": INSTALMENT},
        ],
        "template_id": "repayment-plan",
        "template_version": 3,
        "borrower_signature_sha256": borrower_sig,
        "agent_signature_sha256": agent_sig,
        "signed_at": iso(T0 - timedelta(minutes=26)),
        "signed_lat": SIGNED_AT[0],
        "signed_lon": SIGNED_AT[1],
    }
    body["content_hash"] = agreement_content_hash(body)
    record["body"] = body
    return record


@pytest.fixture
def sweep(world, client, auth, db) -> Sweep:
    """The conftest world, with field records for v1, a visit to cancel, a spare device, a
    blob, an unfinished upload and a signed checkpoint."""
    s = Sweep(world, client, auth, db)
    v1, c1 = world.visits["v1"], world.cases["C-0001"]
    national_id = s.one(
        "SELECT b.national_id FROM borrowers b JOIN cases c ON c.borrower_id = b.id WHERE c.id = ?",
        c1,
    )
    credential = {
        "confirmation_kind": "agent_credential",
        "badge_number": "B-1",
        "borrower_acknowledged": True,
    }
    report = {
        "arrived_at": iso(T0 - timedelta(minutes=39)),
        "departed_at": iso(T0 - timedelta(minutes=20)),
        "outcome": "promise_to_pay",
        "promise_amount": "300.00",
        "promise_date": "2026-12-01",
        "notes": FIELD_NOTE,
        "location": {"lat": GPS_FIX[0], "lon": GPS_FIX[1], "accuracy_m": 10},
    }
    identity = {"confirmation_kind": "borrower_identity", "id_last6": national_id[-6:]}
    outcomes = _push(
        s,
        [
            _record("id_confirmation", v1, 1, 40, credential),
            _record("visit_report", v1, 2, 20, report),
            _record("id_confirmation", v1, 3, 38, identity),
            _agreement(s, v1, c1),
        ],
    )["outcomes"]
    assert all(o["status"] in ("accepted", "flagged") for o in outcomes), outcomes
    # agent2 reports on v3, so its route has a done visit, a stop left (v4) and a last
    # position to start from
    v3_report = {
        "arrived_at": iso(T0 - timedelta(minutes=30)),
        "outcome": "not_home",
        "location": {"lat": GPS_FIX_V3[0], "lon": GPS_FIX_V3[1], "accuracy_m": 10},
    }
    answer = client.post(
        f"{API}/sync/push",
        json={
            "device_time": iso(T0),
            "records": [_record("visit_report", world.visits["v3"], 50, 25, v3_report)],
        },
        headers=auth.headers("agent2"),
    )
    assert answer.status_code == 200, answer.json
    dispatcher = s.headers("dispatcher")
    doomed = client.post(
        f"{API}/visits",
        json={
            "case_id": world.cases["C-0004"],
            "agent_id": world.users["agent2"],
            "visit_date": "2026-11-26",
            "notes": "SWEEP notes of the visit to cancel",
            "notice": {"kind": "letter", "note": "SWEEP notice note, letter sent"},
        },
        headers=dispatcher,
    )
    assert doomed.status_code == 201, doomed.json
    s.ids["doomed"] = doomed.json["visit"]["id"]
    spare = client.post(
        f"{API}/auth/login",
        json={"username": "agent2", "password": PASSWORD},
    )
    assert spare.status_code == 200, spare.json
    s.ids["spare_device"] = spare.json["device_id"]  # minted by the server
    # disabling and enabling a user is swept on an account of its own, so no session the
    # sweep relies on ends halfway
    throwaway = client.post(
        f"{API}/users",
        json={"username": "sweep-throwaway", "password": PASSWORD, "role": "dispatcher"},
        headers=s.headers("admin"),
    )
    assert throwaway.status_code == 201, throwaway.json
    s.ids["throwaway_user"] = throwaway.json["id"]
    s.ids["spare_headers"] = {
        "Authorization": f"Bearer {spare.json['access_token']}",
        "X-Device-Id": spare.json["device_id"],
    }
    s.ids["blob"] = _upload(s, PNG + b"sweep-blob")
    s.ids["chunked"] = PNG + b"chunked"
    started = client.post(
        f"{API}/attachments/{sha(s.ids['chunked'])}/uploads",
        json={"size": len(s.ids["chunked"]), "content_type": "image/png"},
        headers=s.headers("agent"),
    )
    assert started.status_code == 201, started.json
    s.ids["upload_id"] = started.json["upload_id"]
    privacy = s.headers("privacy_officer")
    checkpoint = client.post(f"{API}/audit/checkpoints", json={}, headers=privacy)
    assert checkpoint.status_code == 201, checkpoint.json
    s.ids["checkpoint_id"] = checkpoint.json["id"]
    s.ids["checkpoint"] = checkpoint.json
    # A borrower request to read and to withdraw (borrower one asked not to be phoned).
    asked = client.post(
        f"{API}/borrowers/{s.one('SELECT borrower_id FROM cases WHERE id = ?', c1)}/requests",
        json={
            "kind": "do_not_contact",
            "channel": "phone",
            "source": "letter",
            "note": REQUEST_NOTE,
        },
        headers=dispatcher,
    )
    assert asked.status_code == 201, asked.json
    s.ids["request_id"] = asked.json["request"]["id"]
    # A call on borrower one's contact log, and a message the agent's phone synced (for
    # borrower two, so that v1's records stay the four above).
    called = client.post(
        f"{API}/cases/{c1}/contacts",
        json={
            "channel": "phone_call",
            "occurred_at": iso(T0 - timedelta(hours=2)),
            "outcome": "refused",
            "notes": CONTACT_NOTE,
        },
        headers=dispatcher,
    )
    assert called.status_code == 201, called.json
    synced = {"channel": "sms", "occurred_at": iso(T0 - timedelta(minutes=45)), "outcome": "sent"}
    assert _push(s, [_record("contact", world.visits["v2"], 5, 44, synced)])["outcomes"][0][
        "status"
    ] in (
        "accepted",
        "flagged",
    )
    return s


# -- how each operation is called ---------------------------------------------------------


def path_params(s: Sweep) -> dict[str, Any]:
    return {
        "visit_id": s.world.visits["v1"],
        "case_id": s.world.cases["C-0001"],
        "borrower_id": s.one("SELECT borrower_id FROM cases WHERE id = ?", s.world.cases["C-0001"]),
        "user_id": s.world.users["agent1"],
        "agent_id": s.world.users["agent1"],
        "day": TODAY,
        "device_id": "phone-agent1",
        "sha256": s.ids["blob"],
        "upload_id": s.ids["upload_id"],
        "checkpoint_id": s.ids["checkpoint_id"],
        "grant_id": 0,
        "request_id": s.ids["request_id"],
    }


def _version(s: Sweep, visit_id: int) -> int:
    return s.one("SELECT version FROM visits WHERE id = ?", visit_id)


def _case_version(s: Sweep, external_id: str) -> int:
    return s.one("SELECT version FROM cases WHERE id = ?", s.world.cases[external_id])


def _fresh_refresh_token(s: Sweep) -> str:
    answer = s.client.post(
        f"{API}/auth/login", json={"username": "dispatcher", "password": PASSWORD}
    )
    assert answer.status_code == 200, answer.json
    return answer.json["refresh_token"]


Call = dict[str, Any]  # overrides: params, json, data, headers, content_type


def _push_call(s: Sweep, role: str) -> Call:
    body = {
        "arrived_at": iso(T0 - timedelta(minutes=15)),
        # Someone else at the door: v2 is attempted (it may still be changed and assigned
        # after this), and with no badge shown first the push answer carries a flag.
        "outcome": "third_party_met",
        "notes": PUSH_NOTE,
        "location": {"lat": 31.2021, "lon": 121.4021, "accuracy_m": 10},
    }
    record = _record("visit_report", s.world.visits["v2"], 100 + s.next(), 10, body)
    return {"json": {"device_time": iso(T0), "records": [record]}}


def _watermelon_push_call(s: Sweep, role: str) -> Call:
    """A call logged from the phone, as a WatermelonDB row (dates in ms)."""
    seq = 300 + s.next()
    row = {
        "id": f"00000000-0000-4000-8000-{seq:012d}",
        "_status": "created",
        "_changed": "",
        "visit_id": str(s.world.visits["v1"]),
        "device_seq": seq,
        "recorded_at": int((T0 - timedelta(minutes=5)).timestamp() * 1000),
        "channel": "phone_call",
        "occurred_at": int((T0 - timedelta(minutes=6)).timestamp() * 1000),
        "outcome": "no_answer",
        "duration_s": 30,
    }
    empty = {"created": [], "updated": [], "deleted": []}
    changes = {"contact_attempts": {**empty, "created": [row]}, "visit_reports": empty}
    return {"json": {"last_pulled_at": 0, "device_time": iso(T0), "changes": changes}}


def _order_call(s: Sweep, role: str) -> Call:
    agent = s.world.users["agent1"]
    planned = s.db.execute(
        "SELECT id, version FROM visits WHERE agent_id = ? AND visit_date = ? AND "
        "status = 'planned' ORDER BY id DESC",
        [agent, TODAY],
    ).fetchall()
    return {"json": {"visits": [{"id": i, "version": v} for i, v in planned]}}


def _import_call(s: Sweep, role: str) -> Call:
    row = case_row(70 + s.next(), full_name="Imported Sweep Borrower")
    return {"data": json.dumps(row), "content_type": "application/x-ndjson"}


def _payment_import_call(s: Sweep, role: str) -> Call:
    row = {
        "payment_id": f"SWEEP-PAY-{s.next()}",
        "case_external_id": "C-0001",
        "amount": "10.00",
        "currency": "CNY",
        "paid_at": iso(T0),
    }
    return {"data": json.dumps(row), "content_type": "application/x-ndjson"}


def _chunk_call(s: Sweep, role: str) -> Call:
    return {
        "data": s.ids["chunked"],
        "content_type": "application/offset+octet-stream",
        "headers": {"Upload-Offset": "0"},
    }


def _put_blob_call(s: Sweep, role: str) -> Call:
    data = PNG + f"sweep-put-{s.next()}".encode()
    return {"params": {"sha256": sha(data)}, "data": data, "content_type": "image/png"}


def _new_upload_call(s: Sweep, role: str) -> Call:
    return {
        "params": {"sha256": sha(f"never-sent-{s.next()}".encode())},
        "json": {"size": 64, "content_type": "image/png"},
    }


def _wipe_call(s: Sweep, role: str) -> Call:
    # The revoked spare phone confirms with its own token; it has no role of its own.
    return {"headers": s.ids["spare_headers"]} if role == "anonymous" else {}


def _flag_item(s: Sweep) -> dict[str, Any]:
    """The first flag on a stored record (the pushes before made some), with its version."""
    record_id, code = s.db.execute(
        "SELECT r.id, json_extract(f.value, '$.code') FROM sync_records r, "
        "json_each(r.outcome, '$.flags') f ORDER BY r.seq, f.key LIMIT 1"
    ).fetchone()
    row = s.db.execute(
        "SELECT status, version FROM flag_reviews WHERE record_id = ? AND code = ?",
        [record_id, code],
    ).fetchone()
    status, version = tuple(row) if row else ("open", 0)
    return {"record_id": record_id, "code": code, "status": status, "version": version}


def _flag_call(action: str) -> Callable[[Sweep, str], Call]:
    """A transition of the first flag item; before the dispatcher's call (the one let in),
    a resolved item is reopened or an open one resolved, as the action needs."""

    def call(s: Sweep, role: str) -> Call:
        item = _flag_item(s)
        params = {"record_id": item["record_id"], "code": item["code"]}
        needs_resolved = action == "reopen"
        if role == "dispatcher" and (item["status"] == "resolved") != needs_resolved:
            step, body = (
                ("resolve", {"disposition": "justified", "comment": "sweep"})
                if needs_resolved
                else ("reopen", {"comment": "sweep"})
            )
            url = f"{API}/flags/{item['record_id']}/{item['code']}/{step}"
            done = s.client.post(
                url, json={**body, "version": item["version"]}, headers=s.headers(role)
            )
            assert done.status_code == 200, done.json
            item = _flag_item(s)
        body = {
            "assign": {"assignee_id": s.world.users["dispatcher"]},
            "resolve": {"disposition": "breach", "comment": "sweep"},
            "reopen": {"comment": "sweep"},
        }[action]
        return {"params": params, "json": {**body, "version": item["version"]}}

    return call


BODIES: dict[tuple[str, str], Callable[[Sweep, str], Call]] = {
    ("POST", "/auth/login"): lambda s, r: {
        "json": {"username": "dispatcher", "password": PASSWORD}
    },
    ("POST", "/auth/refresh"): lambda s, r: {"json": {"refresh_token": _fresh_refresh_token(s)}},
    ("POST", "/auth/logout"): lambda s, r: {"json": {"refresh_token": _fresh_refresh_token(s)}},
    ("POST", "/users"): lambda s, r: {
        "json": {"username": f"sweep-user-{s.next()}", "password": PASSWORD, "role": "dispatcher"}
    },
    ("POST", "/devices/{device_id}/revoke"): lambda s, r: {
        "params": {"device_id": s.ids["spare_device"]},
        "json": {"reason": "sweep"},
    },
    ("POST", "/devices/wipe-confirmation"): _wipe_call,
    ("POST", "/users/{user_id}/disable"): lambda s, r: {
        "params": {"user_id": s.ids["throwaway_user"]},
        "json": {"reason": "sweep"},
    },
    ("POST", "/users/{user_id}/password-reset"): lambda s, r: {
        "params": {"user_id": s.ids["throwaway_user"]},
        "json": {"reason": "sweep"},
    },
    ("POST", "/users/{user_id}/enable"): lambda s, r: {
        "params": {"user_id": s.ids["throwaway_user"]},
        "json": {"reason": "sweep"},
    },
    ("POST", "/cases/import"): _import_call,
    ("POST", "/payments/import"): _payment_import_call,
    ("POST", "/visits"): lambda s, r: {
        "json": {
            "case_id": s.world.cases["C-0003"],
            "visit_date": "2026-11-27",
            "notes": "SWEEP notes written with a new visit",
        }
    },
    ("POST", "/visits/bulk"): lambda s, r: {
        "json": {
            "visits": [
                {
                    "case_id": s.world.cases["C-0004"],
                    "visit_date": "2026-11-28",
                    "notes": "SWEEP notes written in bulk",
                }
            ]
        }
    },
    ("PATCH", "/visits/{visit_id}"): lambda s, r: {
        "params": {"visit_id": s.world.visits["v2"]},
        "json": {
            "version": _version(s, s.world.visits["v2"]),
            "window_start": "09:30",
            "window_end": "12:00",
        },
    },
    ("POST", "/visits/{visit_id}/cancel"): lambda s, r: {
        "params": {"visit_id": s.ids["doomed"]},
        "json": {"version": _version(s, s.ids["doomed"]), "reason": CANCEL_REASON},
    },
    ("PUT", "/agents/{agent_id}/days/{day}/order"): _order_call,
    # agent2's day still has a visit to go (agent1 has reported on all of its own)
    ("GET", "/agents/{agent_id}/days/{day}/route"): lambda s, r: {
        "params": {"agent_id": s.world.users["agent2"]}
    },
    ("POST", "/agents/{agent_id}/days/{day}/route-proposal"): lambda s, r: {
        "params": {"agent_id": s.world.users["agent2"]}
    },
    ("POST", "/days/{day}/assignment-proposal"): lambda s, r: {
        "json": {"agent_ids": [s.world.users["agent1"], s.world.users["agent2"]]}
    },
    ("POST", "/days/{day}/assignment"): lambda s, r: {
        "json": {
            "visits": [
                {
                    "id": s.world.visits["v2"],
                    "version": _version(s, s.world.visits["v2"]),
                    "agent_id": s.world.users["agent1"],
                }
            ]
        }
    },
    ("POST", "/sync/push"): _push_call,
    ("POST", "/sync/purge-acks"): lambda s, r: {"json": {"visit_ids": []}},
    ("POST", "/sync/watermelon/push"): _watermelon_push_call,
    ("PUT", "/attachments/{sha256}"): _put_blob_call,
    ("POST", "/attachments/{sha256}/uploads"): _new_upload_call,
    ("PATCH", "/attachments/uploads/{upload_id}"): _chunk_call,
    # The case lifecycle: changes that stop no visit, so the operations after still run.
    ("PATCH", "/cases/{case_id}"): lambda s, r: {
        "params": {"case_id": s.world.cases["C-0002"]},
        "json": {"status": "legal", "reason": "sweep", "version": _case_version(s, "C-0002")},
    },
    ("POST", "/cases/bulk-change"): lambda s, r: {
        "json": {
            "changes": [
                {
                    "case_id": s.world.cases["C-0002"],
                    "version": _case_version(s, "C-0002"),
                    "flags": {"hardship": False},
                    "reason": "sweep",
                }
            ]
        }
    },
    ("POST", "/borrowers/{borrower_id}/requests"): lambda s, r: {
        "json": {
            "kind": "preferred_contact_times",
            "source": "phone",
            "window_start": "18:00",
            "window_end": "20:00",
            "weekdays": [2, 4],
        }
    },
    ("POST", "/borrowers/{borrower_id}/requests/{request_id}/withdraw"): lambda s, r: {
        "json": {"source": "phone"}
    },
    ("GET", "/flags/{record_id}/{code}"): lambda s, r: {
        "params": {k: v for k, v in _flag_item(s).items() if k in ("record_id", "code")}
    },
    ("POST", "/flags/{record_id}/{code}/assign"): _flag_call("assign"),
    ("POST", "/flags/{record_id}/{code}/resolve"): _flag_call("resolve"),
    ("POST", "/flags/{record_id}/{code}/reopen"): _flag_call("reopen"),
    ("POST", "/cases/{case_id}/contacts"): lambda s, r: {
        "json": {
            "channel": "letter",
            "occurred_at": iso(T0 - timedelta(days=1, minutes=s.next())),
            "outcome": "delivered",
            "notes": "SWEEP notes written with a letter",
        }
    },
    ("POST", "/cases/{case_id}/contacts/plan"): lambda s, r: {"json": {"channel": "letter"}},
    ("POST", "/contacts/import"): lambda s, r: {
        "data": json.dumps(
            {
                "case_external_id": "C-0002",
                "channel": "sms",
                "occurred_at": iso(T0 - timedelta(hours=5, minutes=s.next())),
                "outcome": "delivered",
                "agent": "gateway",
                "notes": "SWEEP imported note",
            }
        ),
        "content_type": "application/x-ndjson",
    },
    ("POST", "/audit/checkpoints"): lambda s, r: {"json": {"reason": "sweep"}},
    ("POST", "/audit/verify-checkpoint"): lambda s, r: {"json": s.ids["checkpoint"]},
}


# -- facts declared by the OpenAPI document -------------------------------------------------


def _resolve(doc: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _properties(doc: dict, schema: dict) -> dict[str, dict]:
    schema = _resolve(doc, schema)
    props = dict(schema.get("properties", {}))
    for key in ("allOf", "anyOf", "oneOf"):
        for part in schema.get(key, []):
            props.update(_properties(doc, part))
    return props


def _items(doc: dict, schema: dict) -> dict | None:
    schema = _resolve(doc, schema)
    if "items" in schema:
        return schema["items"]
    for key in ("allOf", "anyOf", "oneOf"):
        for part in schema.get(key, []):
            found = _items(doc, part)
            if found is not None:
                return found
    return None


def carries(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def declared_facts(doc: dict, schema: dict, body: Any) -> Iterator[tuple[tuple, str, Any]]:
    """((subject kind, id), fact, value) for every declared fact in the body."""
    yield from _declared(doc, schema, body, None)


def _declared(doc: dict, schema: dict, data: Any, subject: tuple | None) -> Iterator:
    if isinstance(data, list):
        items = _items(doc, schema)
        for item in data if items is not None else []:
            yield from _declared(doc, items, item, subject)
        return
    if not isinstance(data, dict):
        return
    props = _properties(doc, schema)
    for name, prop in props.items():
        if "x-borrower-subject" in prop:
            subject = (prop["x-borrower-subject"], data.get(name))
    for name, value in data.items():
        prop = props.get(name)
        if prop is None:
            continue
        if "x-borrower-fact" not in prop:
            yield from _declared(doc, prop, value, subject)
            continue
        by_key = prop.get("x-borrower-fact-keys")
        if by_key is not None and isinstance(value, dict):
            for key, each in value.items():
                fact = by_key.get(key, prop["x-borrower-fact"])
                if fact and carries(each):
                    yield subject, fact, each
        elif carries(value):
            yield subject, prop["x-borrower-fact"], value


def owner(s: Sweep, kind: str, subject_id: Any) -> int:
    sql = {
        "case": "SELECT borrower_id FROM cases WHERE id = ?",
        "visit": "SELECT c.borrower_id FROM visits v JOIN cases c ON c.id = v.case_id "
        "WHERE v.id = ?",
        "record": "SELECT c.borrower_id FROM sync_records r JOIN cases c ON c.id = r.case_id "
        "WHERE r.id = lower(?)",
    }
    if kind == "borrower":
        return subject_id
    if kind == "record" and str(subject_id).startswith("contact-"):  # a contact review item
        kind, subject_id = "contact", int(subject_id.removeprefix("contact-"))
        sql["contact"] = (
            "SELECT c.borrower_id FROM contacts k JOIN cases c ON c.id = k.case_id WHERE k.id = ?"
        )
    row = s.db.execute(sql[kind], [subject_id]).fetchone()
    assert row is not None, f"no borrower for {kind} {subject_id}"
    return row[0]


# -- facts found by their values -------------------------------------------------------------


@dataclass(frozen=True)
class Known:
    """A seeded value and the borrower fact it is."""

    value: Any
    borrower_id: int
    fact: str


def _masked(number: str) -> str:
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


def known_values(s: Sweep) -> tuple[list[Known], list[str]]:
    """(values that are borrower facts, values that must never leave the server)."""
    known, never = [], []
    for b in s.db.query("SELECT * FROM borrowers"):
        bid = b["id"]
        known += [
            Known(b["full_name"], bid, "display_name"),
            Known(b["home_address"], bid, "home_address"),
            Known(b["home_lat"], bid, "home_geo"),
            Known(b["home_lon"], bid, "home_geo"),
        ]
        phones = json.loads(b["phones"])
        known += [Known(_masked(p), bid, "phone_masked") for p in phones]
        never += [b["national_id"], b["date_of_birth"], b["employer"], b["income"]]
        never += [b["work_address"], *phones]
        for contact in json.loads(b["contacts"]):
            never += [v for v in contact.values() if v != "sister"]
    for v in s.db.query(
        "SELECT v.notes, v.notice_note, v.cancel_reason, c.borrower_id FROM visits v "
        "JOIN cases c ON c.id = v.case_id"
    ):
        for column, fact in (
            ("notes", "dispatcher_notes"),
            ("notice_note", "notice_note"),
            ("cancel_reason", "cancel_reason"),
        ):
            if v[column]:
                known.append(Known(v[column], v["borrower_id"], fact))
    b1 = owner(s, "visit", s.world.visits["v1"])
    b2 = owner(s, "visit", s.world.visits["v2"])
    known += [
        Known(FIELD_NOTE, b1, "visit_notes"),
        Known(PUSH_NOTE, b2, "visit_notes"),
        Known(REQUEST_NOTE, b1, "borrower_requests"),
        Known(CONTACT_NOTE, b1, "contact_notes"),
        Known(GPS_FIX[0], b1, "gps_fix"),
        Known(GPS_FIX[1], b1, "gps_fix"),
        Known(GPS_FIX_V3[0], owner(s, "visit", s.world.visits["v3"]), "gps_fix"),
        Known(GPS_FIX_V3[1], owner(s, "visit", s.world.visits["v3"]), "gps_fix"),
        Known(SIGNED_AT[0], b1, "gps_fix"),
        Known(SIGNED_AT[1], b1, "gps_fix"),
        Known(INSTALMENT, b1, "agreement_terms"),
    ]
    return [k for k in known if k.value is not None], [n for n in never if n]


def _leaves(data: Any) -> Iterator[Any]:
    if isinstance(data, dict):
        for value in data.values():
            yield from _leaves(value)
    elif isinstance(data, list):
        for value in data:
            yield from _leaves(value)
    else:
        yield data


def _matches(known: Any, leaf: Any) -> bool:
    if isinstance(known, float):
        return isinstance(leaf, float) and leaf == known
    if not isinstance(leaf, str):
        return False
    return leaf == known or (len(known) >= 12 and known in leaf)


def _in_text(known: Any, text: str) -> bool:
    """A seeded value in a CSV file or a page: text as written, a number as a whole number
    (31.2013 is found, not inside 131.20135)."""
    if isinstance(known, float):
        return re.search(rf"(?<![\d.]){re.escape(repr(known))}(?!\d)", text) is not None
    return isinstance(known, str) and known in text


def found_by_value(known: list[Known], body: Any, text: str) -> set[Known]:
    """Every seeded value in the body (JSON leaves, or the text of a CSV file or page)."""
    found = set()
    leaves = list(_leaves(body)) if body is not None else None
    for k in known:
        if leaves is not None:
            hit = any(_matches(k.value, leaf) for leaf in leaves)
        else:
            hit = _in_text(k.value, text)
        if hit:
            found.add(k)
    return found


def _haversine(a: tuple[float, float], b: tuple[float, float]) -> float:
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    dp, dl = p2 - p1, math.radians(b[1] - a[1])
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(min(1.0, h)))


def _stop_lists(data: Any) -> Iterator[list]:
    """Every `stops` list in a body (a route's, or each agent's in an assignment)."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "stops" and isinstance(value, list):
                yield [stop for stop in value if isinstance(stop, dict)]
            else:
                yield from _stop_lists(value)
    elif isinstance(data, list):
        for value in data:
            yield from _stop_lists(value)


def route_legs(s: Sweep, body: Any) -> set[Known]:
    """Route stops whose leg distance is the road distance from a known place (an agent's
    base, a home, a GPS fix) to the stop's home: a fact about that borrower, declared or not."""
    stops = [stop for found in _stop_lists(body) for stop in found]
    if not stops:
        return set()
    places = [tuple(r) for r in s.db.execute("SELECT home_lat, home_lon FROM agents")]
    places += [tuple(r) for r in s.db.execute("SELECT home_lat, home_lon FROM borrowers")]
    places += [GPS_FIX, GPS_FIX_V3, (float(SIGNED_AT[0]), float(SIGNED_AT[1]))]
    found = set()
    for stop in stops:
        row = s.db.execute(
            "SELECT b.id, b.home_lat, b.home_lon FROM visits v JOIN cases c ON c.id = v.case_id "
            "JOIN borrowers b ON b.id = c.borrower_id WHERE v.id = ?",
            [stop.get("visit_id")],
        ).fetchone()
        leg = stop.get("leg_distance_m")
        if row is None or row[1] is None or not leg:
            continue
        home = (row[1], row[2])
        if any(
            abs(leg - _haversine(place, home) * DEFAULT_ROAD_FACTOR) <= 2
            for place in places
            if None not in place
        ):
            found.add(Known(leg, row[0], "route_leg_distance"))
    return found


# -- the sweep ----------------------------------------------------------------------------


def operations(doc: dict) -> list[tuple[str, str]]:
    ops = [
        (method.upper(), path[len(API) :])
        for path, item in doc["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]
    first = [op for op in FIRST if op in ops]
    last = [op for op in LAST if op in ops]
    middle = sorted(op for op in ops if op not in first and op not in last)
    # Writes before reads, so the reads see what the writes left.
    middle.sort(key=lambda op: op[0] == "GET")
    return first + middle + last


@dataclass
class Outcome:
    method: str
    path: str
    role: str
    status: int
    problems: list[str]


def _success_schema(doc: dict, method: str, path: str, status: int, mimetype: str) -> dict | None:
    responses = doc["paths"][API + path][method.lower()]["responses"]
    content = responses.get(str(status), {}).get("content", {})
    return content.get(mimetype, {}).get("schema")


def _sent_strings(call: Call) -> set[str]:
    return {leaf for leaf in _leaves(call.get("json")) if isinstance(leaf, str)}


def check_call(s: Sweep, doc: dict, method: str, path: str, role: str, suffix: str) -> Outcome:
    call = BODIES.get((method, path), lambda s, r: {})(s, role)
    params = {**path_params(s), **call.get("params", {})}
    url = API + re.sub(r"\{(\w+)\}", lambda m: str(params[m.group(1)]), path) + suffix
    request_id = f"sweep-{s.next():05d}"
    headers = {**s.headers(role), **call.get("headers", {}), "X-Request-Id": request_id}
    head_before = s.one("SELECT coalesce(max(seq), 0) FROM exposure_ledger")
    kwargs = {k: call[k] for k in ("json", "data", "content_type") if k in call}
    response = s.client.open(url, method=method, headers=headers, **kwargs)
    entries = list(
        s.db.query("SELECT * FROM exposure_ledger WHERE seq > ? ORDER BY seq", [head_before])
    )
    problems = []
    if any(e["request_id"] != request_id for e in entries):
        problems.append("entries written under another request id")
    if not 200 <= response.status_code < 300:
        if entries:
            problems.append(f"{response.status_code} answer wrote {len(entries)} entries")
        return Outcome(method, path, role, response.status_code, problems)

    body = response.get_json(silent=True) if response.is_json else None
    text = response.get_data(as_text=True)
    known, never = known_values(s)
    expected: dict[int, set[str]] = {}
    schema = _success_schema(doc, method, path, response.status_code, response.mimetype)
    sent = _sent_strings(call)
    if body is not None and schema is not None:
        for (kind, subject_id), fact, value in declared_facts(doc, schema, body):
            if isinstance(value, str) and value in sent:
                continue  # handed back what this request wrote
            expected.setdefault(owner(s, kind, subject_id), set()).add(fact)
    for k in found_by_value(known, body, text) | route_legs(s, body):
        if not (isinstance(k.value, str) and k.value in sent):
            expected.setdefault(k.borrower_id, set()).add(k.fact)

    ledgered: dict[int, set[str]] = {}
    for entry in entries:
        if entry["borrower_id"] in ledgered:
            problems.append(f"two entries for borrower {entry['borrower_id']}")
        ledgered.setdefault(entry["borrower_id"], set()).update(json.loads(entry["fields"]))
    for borrower_id, facts in sorted(expected.items()):
        missing = facts - ledgered.get(borrower_id, set())
        if missing:
            problems.append(f"borrower {borrower_id}: {sorted(missing)} sent, not ledgered")
    for borrower_id in sorted(set(ledgered) - set(expected)):
        problems.append(f"borrower {borrower_id} ledgered but not in the body")
    if role in NO_VALUES_FOR and expected:
        problems.append(f"{role} received borrower facts {expected}")
    leaked = [value for value in never if value in text]
    if leaked:
        problems.append(f"never-disclosed values sent: {leaked}")
    return Outcome(method, path, role, response.status_code, problems)


@pytest.fixture
def doc(client) -> dict:
    return client.get(f"{API}/openapi.json").json


def run_sweep(s: Sweep, doc: dict) -> list[Outcome]:
    outcomes = []
    for method, path in operations(doc):
        for role in ROLES:
            for suffix in VARIANTS.get((method, path), [""]):
                outcomes.append(check_call(s, doc, method, path, role, suffix))
    return outcomes


def test_every_disclosure_of_every_operation_is_ledgered(sweep, doc, client):
    outcomes = run_sweep(sweep, doc)
    failures = [
        f"{o.method} {o.path} as {o.role} ({o.status}): {problem}"
        for o in outcomes
        for problem in o.problems
    ]
    assert not failures, "\n".join(failures)

    ops = operations(doc)
    answered = {(o.method, o.path) for o in outcomes if 200 <= o.status < 300}
    uncovered = sorted(set(ops) - answered - set(NOT_COVERED))
    assert not uncovered, f"operations the sweep never brought to a 2xx: {uncovered}"
    assert {(o.method, o.path) for o in outcomes} == set(ops)
    assert len({(o.method, o.path, o.role) for o in outcomes}) == len(ops) * len(ROLES)
    # the sweep did reach the disclosures it is about
    ledgered = {
        (endpoint, fact)
        for endpoint, fields in sweep.db.execute("SELECT endpoint, fields FROM exposure_ledger")
        for fact in json.loads(fields)
    }
    route = "/api/v1/agents/<int:agent_id>/days/<day:day>/route"
    for reached in (
        ("GET /api/v1/records", "visit_notes"),
        (f"GET {route}", "route_leg_distance"),
        (f"GET {route}", "route_start"),
        (f"POST {route}-proposal", "route_leg_distance"),
        ("POST /api/v1/days/<day:day>/assignment-proposal", "route_leg_distance"),
        ("POST /api/v1/sync/push", "flag_details"),
        ("GET /api/v1/sync/watermelon/pull", "flag_details"),
        ("GET /api/v1/sync/watermelon/pull", "id_result"),
        ("GET /api/v1/sync/watermelon/pull", "home_geo"),
        ("GET /api/v1/register", "gps_fix"),
        ("GET /api/v1/register", "id_result"),
        ("GET /api/v1/flags", "flag_details"),
        ("POST /api/v1/flags/<string:record_id>/<string:code>/resolve", "flag_details"),
        ("GET /api/v1/cases/<int:case_id>/contacts", "contact_notes"),
        ("GET /api/v1/cases/<int:case_id>/timeline", "contact_log"),
    ):
        assert reached in ledgered, reached
    verify = client.get(f"{API}/audit/verify", headers=sweep.headers("privacy_officer"))
    assert verify.json["intact"] is True


def test_records_entry_names_the_field_facts_and_the_purpose(sweep, client, db):
    headers = {**sweep.headers("dispatcher"), "X-Request-Id": "records-read-1"}
    page = client.get(f"{API}/records?visit_id={sweep.world.visits['v1']}", headers=headers)
    assert page.status_code == 200 and len(page.json["items"]) == 4
    (entry,) = db.query("SELECT * FROM exposure_ledger WHERE request_id = 'records-read-1'")
    b1 = owner(sweep, "visit", sweep.world.visits["v1"])
    assert (entry["borrower_id"], entry["visit_id"], entry["purpose"]) == (
        b1,
        sweep.world.visits["v1"],
        "compliance_evidence",
    )
    assert entry["user_id"] == sweep.world.users["dispatcher"]
    assert set(json.loads(entry["fields"])) == {
        "visit_outcome",
        "promise_to_pay",
        "visit_notes",
        "gps_fix",
        "agreement_terms",
        "id_result",
    }


def test_what_the_policy_does_not_allow_is_not_sent(app, sweep, client, db):
    """A fact outside the reader's policy for the endpoint's purpose leaves the body."""
    narrowed = build_policy({"dispatcher": {"compliance_evidence": ["visit_outcome"]}})
    app.extensions["doorstep"] = replace(app.extensions["doorstep"], disclosure=narrowed)
    headers = {**sweep.headers("dispatcher"), "X-Request-Id": "records-narrow-1"}
    page = client.get(f"{API}/records?visit_id={sweep.world.visits['v1']}", headers=headers)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert FIELD_NOTE not in text and str(GPS_FIX[0]) not in text and INSTALMENT not in text
    report = next(i for i in page.json["items"] if i["kind"] == "visit_report")
    assert report["body"]["outcome"] == "promise_to_pay" and "notes" not in report["body"]
    assert all(i.get("id_verification") is None for i in page.json["items"])
    assert all(flag == {} for i in page.json["items"] for flag in i["flags"])
    (entry,) = db.query("SELECT * FROM exposure_ledger WHERE request_id = 'records-narrow-1'")
    assert json.loads(entry["fields"]) == ["visit_outcome"]
