"""The reference client against an in-memory fake server: no network, no Flask."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sync.canonical import agreement_content_hash
from sync.client import (
    CHUNK_BYTES,
    BackoffPolicy,
    DeviceRevoked,
    FieldClient,
    TransportError,
    TransportResponse,
)

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + b"signature"
DEVICE = "phone-agent01"


class FakeClock:
    """A device clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> TransportResponse:
    return TransportResponse(status, dict(headers or {}), body)


def _error(status: int, code: str, **details: Any) -> TransportResponse:
    body = {"error": {"code": code, "message": code, "field": None, "details": details}}
    return _json(status, body)


class FakeServer:
    """Just enough of the Doorstep API to exercise the client; every request is logged."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str, Any]] = []
        self.online = True
        self.faults: list[str] = []  # consumed one per request: "network", "503", "drop"
        self.revoked = False
        self.access_ok: set[str] = set()
        self.refresh_ok: set[str] = set()
        self.issued = 0
        self.records: dict[str, dict] = {}
        self.pushes: list[dict] = []
        self.decide: Callable[[dict], dict] = lambda record: {"status": "accepted"}
        self.blobs: dict[str, bytes] = {}
        self.uploads: dict[str, dict] = {}
        self.pages: dict[str | None, dict] = {}
        self.acked: list[int] = []
        self.blob_quota: int | None = None  # unreferenced blobs a device may hold

    def request(self, method, path, *, json=None, data=None, headers=None, params=None):
        self.log.append((method, path, json if json is not None else params))
        if not self.online:
            raise TransportError("offline")
        fault = self.faults.pop(0) if self.faults else None
        if fault == "network":
            raise TransportError("connection reset")
        if fault == "503":
            return _error(503, "unavailable")
        response = self._route(method, path, json, data, headers or {}, params or {})
        if fault == "drop":
            raise TransportError("response lost after the server committed")
        return response

    def expire_tokens(self) -> None:
        self.access_ok.clear()

    def _issue(self) -> TransportResponse:
        self.issued += 1
        access, refresh = f"access-{self.issued}", f"refresh-{self.issued}"
        self.access_ok.add(access)
        self.refresh_ok.add(refresh)
        return _json(200, {"access_token": access, "refresh_token": refresh, "expires_in": 900})

    def _route(self, method, path, body, data, headers, params) -> TransportResponse:
        if path == "/auth/login":
            if self.revoked:
                return _error(401, "device_revoked", wipe=True)
            if body.get("device_id", DEVICE) != DEVICE:
                return _error(403, "device_not_allowed")
            issued = self._issue()
            issued.body["device_id"] = DEVICE  # a login without one enrols: this is the id
            return issued
        if path == "/auth/refresh":
            if self.revoked:
                return _error(401, "device_revoked", wipe=True)
            if body["refresh_token"] not in self.refresh_ok:
                return _error(401, "invalid_token")
            self.refresh_ok.discard(body["refresh_token"])
            return self._issue()
        if self.revoked:
            return _error(401, "device_revoked", wipe=True)
        token = headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.access_ok or headers.get("X-Device-Id") != DEVICE:
            return _error(401, "invalid_token")
        if path.startswith("/attachments/"):
            return self._attachments(method, path, data, headers, body)
        if path == "/sync/push":
            return self._push(body)
        if path == "/sync/pull":
            page = self.pages.get(params.get("cursor"))
            return _error(422, "invalid_cursor") if page is None else _json(200, page)
        if path == "/sync/purge-acks":
            self.acked += body["visit_ids"]
            return _json(200, {"confirmed": body["visit_ids"]})
        return _error(404, "not_found")

    def _push(self, body: dict) -> TransportResponse:
        self.pushes.append(body)
        self.acked += body.get("purge_acks", [])
        outcomes = []
        for record in body["records"]:
            if record["id"] in self.records:
                outcomes.append({"record_id": record["id"], "status": "duplicate"})
                continue
            outcome = {"record_id": record["id"], **self.decide(record)}
            if outcome["status"] in ("accepted", "flagged"):
                self.records[record["id"]] = record
            outcomes.append(outcome)
        confirmed = body.get("purge_acks", [])
        return _json(200, {"server_time": "x", "outcomes": outcomes, "purges_confirmed": confirmed})

    def _attachments(self, method, path, data, headers, body) -> TransportResponse:
        parts = path.split("/")
        if method == "PUT":
            assert hashlib.sha256(data).hexdigest() == parts[2]
            referenced = {
                sha for record in self.records.values() for sha in record["body"]["attachments"]
            }
            held = len(set(self.blobs) - referenced)
            quota = self.blob_quota
            if parts[2] not in self.blobs and quota is not None and held >= quota:
                return _error(409, "blob_quota_exceeded", held=held)
            created = parts[2] not in self.blobs
            self.blobs[parts[2]] = data
            return _json(201 if created else 200, {"sha256": parts[2], "complete": True})
        if method == "POST":
            upload_id = f"up-{len(self.uploads) + 1}"
            self.uploads[upload_id] = {"sha256": parts[2], "size": body["size"], "data": b""}
            return _json(201, {"upload_id": upload_id, "received": 0, "complete": False})
        upload = self.uploads[parts[3]]
        if method == "GET":
            return _json(200, {"upload_id": parts[3], "received": len(upload["data"])})
        if int(headers["Upload-Offset"]) != len(upload["data"]):
            return _error(409, "offset_mismatch", received=len(upload["data"]))
        upload["data"] += data
        complete = len(upload["data"]) == upload["size"]
        if complete:
            self.blobs[upload["sha256"]] = upload["data"]
        return _json(200, {"received": len(upload["data"]), "complete": complete})

    def paths(self, method: str, path: str) -> list[Any]:
        return [payload for m, p, payload in self.log if m == method and p == path]


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_client(server, clock, sleeps, tmp_path):
    clients: list[FieldClient] = []

    def make(**options: Any) -> FieldClient:
        client = FieldClient(
            server,
            tmp_path / "device.db",
            "agent01",
            "pw",
            options.pop("device_id", DEVICE),
            clock=clock,
            sleep=sleeps.append,
            rng=random.Random(1),
            backoff=options.pop("backoff", BackoffPolicy(base_s=1, max_attempts=4)),
            **options,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def _report(client: FieldClient, visit_id: int = 7, **fields: Any) -> str:
    return client.record_visit_report(visit_id, arrived_at=T0, outcome="not_home", **fields)


def _card(visit_id: int, expires_at: datetime, name: str = "Wang Fang") -> dict:
    borrower = {
        "borrower_id": 1,
        "case_id": 3,
        "display_name": name,
        "expires_at": expires_at.isoformat(),
    }
    return {"id": visit_id, "case_id": 3, "status": "planned", "version": 1, "borrower": borrower}


def _page(cursor: str, upserts=(), purges=(), outcomes=(), has_more=False) -> dict:
    return {
        "cursor": cursor,
        "has_more": has_more,
        "server_time": "x",
        "upserts": list(upserts),
        "purges": list(purges),
        "outcomes": list(outcomes),
        "blocked": None,
    }


def test_a_new_phone_enrols_at_its_first_login_and_keeps_the_id_it_is_given(make_client, server):
    server.pages[None] = _page("c1")
    server.pages["c1"] = _page("c1")
    phone = make_client(device_id=None)
    assert phone.device_id is None
    _report(phone)
    phone.sync()
    assert phone.device_id == DEVICE
    assert server.paths("POST", "/auth/login") == [{"username": "agent01", "password": "pw"}]
    assert len(server.records) == 1  # sent with the minted id as X-Device-Id
    phone.close()
    # After a restart the phone logs in with the id it was given, not as a new phone.
    again = make_client(device_id=None)
    assert again.device_id == DEVICE
    server.expire_tokens()
    server.refresh_ok.clear()
    again.sync()
    assert server.paths("POST", "/auth/login")[-1]["device_id"] == DEVICE


def test_the_outbox_survives_a_restart_and_is_sent_once_online(make_client, server, tmp_path):
    server.online = False
    first = make_client()
    ids = [_report(first), first.record_agent_credential(7, "B-1001", True)]
    assert first.sync().stopped == "unreachable"
    first.close()

    again = make_client()
    assert [(e.id, e.device_seq, e.state) for e in again.outbox_state()] == [
        (ids[0], 1, "queued"),
        (ids[1], 2, "queued"),
    ]
    third = _report(again, 8)
    server.online = True
    server.pages[None] = _page("c1")
    result = again.sync()

    assert result.stopped is None
    assert sorted(result.acknowledged) == sorted([*ids, third])
    assert [r["device_seq"] for r in server.pushes[0]["records"]] == [1, 2, 3]
    assert set(server.records) == {*ids, third}
    assert again.report().queued == 0


def test_a_record_answered_retry_stays_queued_until_its_blob_is_uploaded(make_client, server):
    client = make_client()
    photo = client.add_blob(PNG)
    record_id = _report(client, attachments=[photo])
    server.pages[None] = _page("c1")
    client.login()
    server.faults = ["network"]  # the blob upload is lost: its next attempt succeeds
    answers = iter([{"status": "retry", "reason": "attachment_missing", "missing_blobs": [photo]}])
    server.decide = lambda record: next(answers, {"status": "accepted"})

    result = client.sync()

    assert result.retrying == [record_id] and result.acknowledged == [record_id]
    assert [p["records"][0]["id"] for p in server.pushes] == [record_id, record_id]
    assert len(server.paths("PUT", f"/attachments/{photo}")) == 3  # lost, sent, resent on retry
    assert client.report().queued == 0


def test_over_the_blob_quota_it_pushes_first_then_uploads_the_rest(make_client, server):
    client = make_client()
    photos = [client.add_blob(PNG + bytes([n])) for n in range(3)]
    records = [_report(client, attachments=[photo]) for photo in photos]
    server.pages[None] = _page("c1")
    server.blob_quota = 2  # two unreferenced blobs at a time
    have = server.blobs
    server.decide = lambda record: (
        {"status": "accepted"}
        if set(record["body"]["attachments"]) <= set(have)
        else {
            "status": "retry",
            "reason": "attachment_missing",
            "missing_blobs": sorted(set(record["body"]["attachments"]) - set(have)),
        }
    )

    result = client.sync()

    assert result.stopped is None
    assert sorted(result.acknowledged) == sorted(records)
    assert set(server.blobs) == set(photos)
    assert client.report().queued == 0


def test_retry_alone_keeps_the_record_queued_for_the_next_pass(make_client, server):
    client = make_client()
    record_id = _report(client)
    server.pages[None] = _page("c1")
    server.decide = lambda record: {"status": "retry", "reason": "busy"}
    client.sync()
    assert [(e.id, e.state, e.status) for e in client.outbox_state()] == [
        (record_id, "queued", "retry")
    ]
    server.decide = lambda record: {"status": "accepted"}
    assert client.sync().acknowledged == [record_id]


def test_a_rejected_record_is_kept_with_its_reason_and_never_resent(make_client, server):
    client = make_client()
    bad, good = _report(client), _report(client, 8)
    server.pages[None] = _page("c1")
    server.decide = lambda r: (
        {"status": "rejected", "reason": "not_yours"} if r["id"] == bad else {"status": "accepted"}
    )
    client.sync()
    _report(client, 9)
    client.sync()
    client.sync()

    sent = [r["id"] for push in server.pushes for r in push["records"]]
    assert sent.count(bad) == 1 and sent.count(good) == 1
    entry = {e.id: e for e in client.outbox_state()}[bad]
    assert (entry.state, entry.reason) == ("rejected", "not_yours")


def test_a_batch_refused_whole_is_split_until_the_bad_record_is_found(make_client, server):
    client = make_client()
    ids = [_report(client, v) for v in range(1, 6)]
    server.pages[None] = _page("c1")
    original = server._push

    def refuse_batches_with_visit_3(body):
        if any(r["visit_id"] == 3 for r in body["records"]):
            server.pushes.append(body)
            return _error(422, "validation_failed")
        return original(body)

    server._push = refuse_batches_with_visit_3
    result = client.sync()
    assert result.rejected == [ids[2]]
    assert sorted(result.acknowledged) == sorted(ids[:2] + ids[3:])
    entry = {e.id: e for e in client.outbox_state()}[ids[2]]
    assert (entry.state, entry.reason) == ("rejected", "validation_failed")


def test_batches_hold_at_most_100_records_and_report_what_stays_queued(make_client, server):
    client = make_client()
    for n in range(250):
        _report(client, n + 1)
    server.pages[None] = _page("c1")
    client.sync()
    assert [len(p["records"]) for p in server.pushes] == [100, 100, 50]
    assert [p["queue"]["pending"] for p in server.pushes] == [150, 50, 0]
    assert server.pushes[-1]["queue"]["oldest_recorded_at"] is None


def test_network_errors_and_5xx_back_off_then_the_same_batch_is_resent(make_client, server, sleeps):
    client = make_client()
    record_id = _report(client)
    server.pages[None] = _page("c1")
    client.login()
    server.faults = ["network", "503", "drop"]  # the third: committed, answer lost
    result = client.sync()
    assert result.acknowledged == [record_id]
    assert server.pushes[-1]["records"][0]["id"] == record_id
    assert len(server.pushes) == 2 and len(server.records) == 1
    assert len(sleeps) == 3 and sleeps[0] < sleeps[1] < sleeps[2]


def test_backoff_gives_up_after_its_budget_and_keeps_everything_queued(make_client, server, sleeps):
    client = make_client(backoff=BackoffPolicy(base_s=1, max_attempts=3))
    _report(client)
    client.login()
    server.faults = ["503"] * 10
    result = client.sync()
    assert result.stopped == "unreachable"
    assert len(sleeps) == 2
    assert client.report().queued == 1


def test_an_expired_token_is_refreshed_and_nothing_recorded_offline_is_lost(make_client, server):
    client = make_client()
    client.login()
    server.online = False
    ids = [_report(client, v) for v in range(1, 4)]
    server.online = True
    server.expire_tokens()
    server.pages[None] = _page("c1")

    result = client.sync()

    assert sorted(result.acknowledged) == sorted(ids)
    assert len(server.paths("POST", "/auth/refresh")) == 1
    assert set(server.records) == set(ids)


def test_a_spent_refresh_token_falls_back_to_logging_in_again(make_client, server):
    client = make_client()
    client.login()
    server.refresh_ok.clear()
    server.expire_tokens()
    record_id = _report(client)
    server.pages[None] = _page("c1")
    assert client.sync().acknowledged == [record_id]
    assert len(server.paths("POST", "/auth/login")) == 2


def test_cards_expire_on_the_device_clock_with_no_network(make_client, server, clock):
    client = make_client()
    server.pages[None] = _page(
        "c1", upserts=[_card(7, T0 + timedelta(hours=2)), _card(8, T0 + timedelta(hours=5))]
    )
    client.sync()
    assert [c["id"] for c in client.cards()] == [7, 8]

    server.online = False
    clock.now = T0 + timedelta(hours=2)
    assert [c["id"] for c in client.cards()] == [8]
    clock.now = T0 + timedelta(hours=6)
    assert client.cards() == [] and client.report().cards == 0


def test_purge_orders_delete_the_card_and_are_acknowledged(make_client, server):
    client = make_client()
    server.pages[None] = _page(
        "c1", upserts=[_card(7, T0 + timedelta(hours=9)), _card(8, T0 + timedelta(hours=9))]
    )
    client.sync()
    server.pages["c1"] = _page(
        "c2", purges=[{"visit_id": 7, "reason": "reassigned", "ordered_at": "x"}]
    )

    result = client.sync()

    assert [c["id"] for c in client.cards()] == [8]
    assert result.purges == 1 and result.acks_confirmed == 1
    assert server.acked == [7]
    assert client.report().purge_acks_pending == 0


def test_an_unconfirmed_ack_rides_on_the_next_push(make_client, server):
    client = make_client()
    server.pages[None] = _page("c1", purges=[{"visit_id": 7, "reason": "cancelled"}])
    server.faults = ["", "", "503", "503", "503", "503"]  # login, pull ok; every ack send fails
    assert client.sync().stopped == "unreachable"
    assert client.report().purge_acks_pending == 1

    _report(client, 9)
    server.pages["c1"] = _page("c1")
    client.sync()
    assert server.pushes[0]["purge_acks"] == [7]
    assert client.report().purge_acks_pending == 0


def test_the_cursor_advances_only_after_its_page_is_applied(make_client, server):
    client = make_client()
    server.pages[None] = _page("c1", upserts=[_card(7, T0 + timedelta(hours=9))], has_more=True)
    server.pages["c1"] = _page("c2", upserts=[_card(8, T0 + timedelta(hours=9))])
    client.login()
    server.faults = ["", "drop"]  # page 2 is served but its answer is lost
    client.sync()
    assert [p.get("cursor") for p in server.paths("GET", "/sync/pull")] == [None, "c1", "c1"]
    assert [c["id"] for c in client.cards()] == [7, 8]

    # A page that cannot be applied leaves the cursor, and the cards, where they were.
    server.pages["c2"] = _page("c3", upserts=[_card(9, T0 + timedelta(hours=9)), {"bad": 1}])
    with pytest.raises(KeyError):
        client.sync()
    assert [c["id"] for c in client.cards()] == [7, 8]
    server.pages["c2"] = _page("c3", upserts=[_card(9, T0 + timedelta(hours=9))])
    client.sync()
    assert [p.get("cursor") for p in server.paths("GET", "/sync/pull")][-2:] == ["c2", "c2"]
    assert [c["id"] for c in client.cards()] == [7, 8, 9]


def test_an_unknown_cursor_starts_the_feed_over(make_client, server):
    client = make_client()
    server.pages[None] = _page("c1", upserts=[_card(7, T0 + timedelta(hours=9))])
    client.sync()
    server.pages = {None: _page("d1", upserts=[_card(8, T0 + timedelta(hours=9))])}
    client.sync()
    assert [p.get("cursor") for p in server.paths("GET", "/sync/pull")] == [None, "c1", None]
    assert [c["id"] for c in client.cards()] == [7, 8]


def test_the_id_check_result_and_later_flags_arrive_on_a_later_pull(make_client, server):
    client = make_client()
    record_id = client.record_borrower_identity(7, "12345X")
    server.pages[None] = _page("c1")
    client.sync()
    assert client.outbox_state()[0].id_verification is None
    outcome = {
        "record_id": record_id,
        "status": "flagged",
        "id_verification": "mismatch",
        "flags": [{"code": "id_mismatch", "message": "m", "details": {}}],
    }
    server.pages["c1"] = _page("c2", outcomes=[outcome])
    client.sync()
    entry = client.outbox_state()[0]
    assert (entry.state, entry.status, entry.id_verification, entry.flags) == (
        "acknowledged",
        "flagged",
        "mismatch",
        ("id_mismatch",),
    )


def test_typed_id_characters_leave_the_outbox_once_acknowledged(make_client, server, tmp_path):
    client = make_client()
    record_id = client.record_borrower_identity(7, "98765Q")
    assert client.outbox_state()[0].body["id_last6"] == "98765Q"
    server.pages[None] = _page("c1")
    client.sync()
    entry = client.outbox_state()[0]
    assert (entry.id, entry.state) == (record_id, "acknowledged")
    assert entry.body == {"confirmation_kind": "borrower_identity"}
    client.close()
    assert b"98765Q" not in (tmp_path / "device.db").read_bytes()


def test_device_revoked_wipes_everything_and_reports_what_was_unsent(make_client, server, tmp_path):
    client = make_client()
    server.pages[None] = _page("c1", upserts=[_card(7, T0 + timedelta(hours=9), "Zhang Wei")])
    client.sync()
    client.add_blob(PNG)
    _report(client), _report(client, 8)
    server.revoked = True

    result = client.sync()

    assert (result.stopped, result.unsent_at_wipe) == ("wiped", 2)
    report = client.report()
    assert (report.wiped, report.queued, report.cards, report.blobs_pending) == (True, 0, 0, 0)
    assert client.outbox_state() == []
    with pytest.raises(DeviceRevoked):
        _report(client)
    client.close()
    assert b"Zhang Wei" not in (tmp_path / "device.db").read_bytes()


def test_an_agreement_carries_its_canonical_hash_and_its_signatures_go_first(make_client, server):
    client = make_client()
    borrower, agent = PNG + b"b", PNG + b"a"
    record_id = client.record_agreement(
        visit_id=7,
        case_id=3,
        installments=[("2026-12-01", "600"), ("2027-01-01", "600.5")],
        currency="CNY",
        template_id="repayment-plan-zh",
        template_version=3,
        borrower_signature=borrower,
        agent_signature=agent,
        signed_at=T0,
        lat=31.2304163,
        lon=121.4737,
    )
    server.pages[None] = _page("c1")
    client.sync()

    body = server.records[record_id]["body"]
    assert body["agreement_id"] == record_id and body["total_amount"] == "1200.50"
    assert body["content_hash"] == agreement_content_hash(body)
    assert (body["signed_lat"], body["signed_lon"]) == ("31.230416", "121.473700")
    order = [(m, p) for m, p, _ in server.log]
    first_push = order.index(("POST", "/sync/push"))
    for blob in (borrower, agent):
        assert order.index(("PUT", f"/attachments/{hashlib.sha256(blob).hexdigest()}")) < first_push
    assert client.report().blobs_pending == 0


def test_large_blobs_upload_in_chunks_and_resume_from_the_server_offset(make_client, server):
    client = make_client()
    photo = PNG + bytes(range(256)) * (CHUNK_BYTES // 256 * 2 + 3)
    sha256 = client.add_blob(photo)
    server.pages[None] = _page("c1")
    client.login()
    # The second chunk lands but its answer is lost: the resend gets offset_mismatch.
    server.faults = ["", "", "drop"]
    client.sync()
    patches = [p for m, p, _ in server.log if m == "PATCH"]
    assert len(patches) == 4  # three chunks, one resent
    assert server.blobs[sha256] == photo
    assert client.report().blobs_pending == 0


def test_a_blocked_pull_purges_acknowledges_and_asks_again(make_client, server):
    client = make_client()
    server.pages[None] = _page("c1", upserts=[_card(7, T0 + timedelta(hours=9))])
    client.sync()
    blocked = _page("c1")
    blocked["blocked"] = {"reason": "purge_unacknowledged", "visit_ids": [7]}
    server.pages["c1"] = blocked
    original = server._route

    def unblock_after_ack(method, path, body, data, headers, params):
        if path == "/sync/purge-acks":
            server.pages["c1"] = _page("c2", upserts=[_card(8, T0 + timedelta(hours=9))])
        return original(method, path, body, data, headers, params)

    server._route = unblock_after_ack
    result = client.sync()

    assert server.acked == [7]
    assert [c["id"] for c in client.cards()] == [8]
    assert result.pages == 2 and client.report().purge_acks_pending == 0


def test_a_revoked_device_learns_it_from_the_refresh_and_wipes(make_client, server):
    client = make_client()
    server.pages[None] = _page("c1", upserts=[_card(7, T0 + timedelta(hours=9))])
    client.sync()
    _report(client)
    server.expire_tokens()
    original = server._route

    def revoked_at_refresh(method, path, body, data, headers, params):
        if path == "/auth/refresh":
            return _error(401, "device_revoked", wipe=True)
        return original(method, path, body, data, headers, params)

    server._route = revoked_at_refresh
    result = client.sync()
    assert (result.stopped, result.unsent_at_wipe) == ("wiped", 1)
    assert client.cards() == [] and client.report().wiped
