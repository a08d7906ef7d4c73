"""A Hypothesis state machine: two phones record, sync through faults, and are checked.

The reference client (sync/client/) runs against the app in-process, through a Transport
over the Flask test client and a fault-injecting wrapper. Each step is one of: an agent
records a visit report, a badge shown or typed ID characters (offline); a phone syncs
through faults met by its first requests (the answer lost after the server committed, the
request lost, the request delivered twice, an earlier push body replayed after it), or with
the network dying after a few requests (some batches pushed, perhaps no pull or no purge
acknowledgement); the dispatcher reassigns a visit between the agents or cancels one; the
clock moves on (access tokens expire; now and then the day's cards do); the admin revokes a
phone, which is wiped at its next contact and replaced by a new one.

After every step: every record a phone holds as acknowledged is stored exactly once, as
recorded; nothing is stored that was not recorded or that a phone holds as rejected; no
phone holds a card past its expiry, or for a visit cancelled or moved away once it synced
after the change; a wiped phone holds nothing; the exposure ledger verifies; the server
never answered 5xx.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from server import create_app
from server.runtime import Caller
from server.services import accounts as account_service
from server.storage.connection import open_db
from sync.client import (
    BackoffPolicy,
    FieldClient,
    TransportError,
    TransportResponse,
)
from tests import postgres
from tests.conftest import PASSWORD, T0, TODAY, FixedClock, case_row

AGENTS = ("agent1", "agent2")
BADGES = {"agent1": "B-1", "agent2": "B-2"}
VISIT_CASES = {"v1": 1, "v2": 2, "v3": 3, "v4": 4}
PLAN = {"agent1": ("v1", "v2"), "agent2": ("v3", "v4")}
# A completed visit, or one whose day closed with no report, is no longer changed.
CLOSED_VISITS = ("completed", "missed")
CARD_EXPIRY = datetime.fromisoformat("2026-11-24T22:00:00+00:00")
OUTCOMES = ("met_borrower", "not_home", "refused", "promise_to_pay", "third_party_met")
FAULTS = ("ok", "drop", "lose", "duplicate", "reorder")
# Nothing really waits: the backoff still counts attempts, so a phone that is cut off
# gives up after 4 tries and keeps everything queued.
NO_WAIT = BackoffPolicy(base_s=0.01, cap_s=0.01, max_attempts=4, max_total_s=1.0)


def _note(what: str) -> None:
    """Count what the runs exercised (pytest --hypothesis-show-statistics)."""
    if currently_in_test_context():
        event(what)


class FlaskTransport:
    """The client's Transport over the Flask test client: same answers as HttpTransport."""

    def __init__(self, app) -> None:
        self.http = app.test_client()
        self.server_errors: list[str] = []

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> TransportResponse:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        response = self.http.open(
            "/api/v1" + path,
            method=method,
            json=json,
            data=data,
            headers=dict(headers or {}),
            query_string=query,
        )
        lowered = {name.lower(): value for name, value in response.headers.items()}
        body: Any = response.data or None
        if response.data and "json" in lowered.get("content-type", ""):
            body = response.get_json()
        if response.status_code >= 500:
            self.server_errors.append(f"{method} {path} -> {response.status_code}: {body!r}")
        return TransportResponse(response.status_code, lowered, body)


class FaultyTransport:
    """One phone's network: faults armed for its next requests, or cut after N requests."""

    def __init__(self, inner: FlaskTransport) -> None:
        self.inner = inner
        self.faults: list[tuple[str, int]] = []
        self.cut_after: int | None = None  # requests still allowed before the network dies
        self.pushes: list[Any] = []  # every push body the server received, for replays

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> TransportResponse:
        if self.cut_after is not None:
            if self.cut_after <= 0:
                raise TransportError("no network")
            self.cut_after -= 1
        fault, pick = self.faults.pop(0) if self.faults else (None, 0)
        if fault == "lose":
            raise TransportError("request lost before the server")

        def send() -> TransportResponse:
            return self.inner.request(
                method, path, json=json, data=data, headers=headers, params=params
            )

        earlier = list(self.pushes)
        response = send()
        if path == "/sync/push" and json is not None:
            self.pushes.append(json)
        if fault == "drop":
            raise TransportError("answer lost after the server committed")
        if fault == "duplicate":
            return send()
        if fault == "reorder" and earlier and "Authorization" in (headers or {}):
            # An earlier batch arrives again, after this newer request.
            self.inner.request(
                "POST", "/sync/push", json=earlier[pick % len(earlier)], headers=headers
            )
        return response


class Staff:
    """Dispatcher, admin and privacy officer on a good network; log in again on 401."""

    def __init__(self, app) -> None:
        self.http = app.test_client()
        self.tokens: dict[str, str] = {}

    def call(self, user: str, method: str, path: str, **options: Any):
        for _ in range(2):
            if user not in self.tokens:
                login = self.http.post(
                    "/api/v1/auth/login", json={"username": user, "password": PASSWORD}
                )
                assert login.status_code == 200, login.json
                self.tokens[user] = login.json["access_token"]
            headers = {**options.pop("headers", {}), "Authorization": f"Bearer {self.tokens[user]}"}
            response = self.http.open("/api/v1" + path, method=method, headers=headers, **options)
            if response.status_code != 401:
                assert response.status_code < 500, response.json
                return response
            del self.tokens[user]
            options["headers"] = {k: v for k, v in headers.items() if k != "Authorization"}
        raise AssertionError(f"{user} cannot authenticate")


class Phone:
    """An agent's current phone and what the test knows about it."""

    def __init__(self, machine: SyncMachine, agent: str, number: int) -> None:
        self.agent = agent
        self.transport = FaultyTransport(machine.transport)
        self.client = FieldClient(
            self.transport,
            Path(machine.tmp) / f"{agent}-{number}.db",
            agent,
            PASSWORD,
            None,  # each new phone enrols at its first login
            clock=machine.clock,
            sleep=lambda seconds: None,
            backoff=NO_WAIT,
            rng=random.Random(number),
            batch_size=2,
        )
        self.revoked = False
        self.synced_at = -1  # the change counter when its last complete sync started


class SyncMachine(RuleBasedStateMachine):
    """The machine on a SQLite file (PostgresSyncMachine: on a PostgreSQL schema)."""

    engine = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        # On tmpfs when there is one: every commit is fsynced, and the disk is not under test.
        shm = Path("/dev/shm")  # noqa: S108 - mkdtemp below makes a private, unique dir
        where = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
        self.tmp = tempfile.mkdtemp(prefix="doorstep-stateful-", dir=where)
        self.schema: str | None = None
        try:
            self._set_up()
        except BaseException:
            self._drop_store()
            raise

    def _store(self) -> str:
        if self.engine == "sqlite":
            return str(Path(self.tmp) / "doorstep.db")
        self.schema, url = postgres.create_schema(postgres.server_url())
        return url

    def _drop_store(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.schema is not None:
            postgres.drop_schema(postgres.server_url(), self.schema)
            self.schema = None

    def _set_up(self) -> None:
        self.clock = FixedClock(T0)
        self.app = create_app(
            {
                "DATABASE": self._store(),
                "STATE_DIR": self.tmp,
                "CLOCK": self.clock,
                "PASSWORD_TIME_COST": 1,
                "PASSWORD_MEMORY_COST_KIB": 1024,
                "DOORSTEP_ENV": "development",
                # The clock stands still between steps: rate limits are not under test.
                "RATE_PER_DEVICE_PER_MIN": 0,
                "RATE_PER_ADDRESS_PER_MIN": 0,
            }
        )
        self.db = open_db(self.app.config["DATABASE"])
        self.transport = FlaskTransport(self.app)
        self.staff = Staff(self.app)
        self.users: dict[str, int] = {}
        self.visits: dict[str, int] = {}
        self._build_world()
        self.phone_count = 0
        self.phones = {agent: self._new_phone(agent) for agent in AGENTS}
        self.retired: list[Phone] = []
        # The model: what was recorded, what any phone ever held as answered.
        self.recorded: dict[str, tuple[str, str, int]] = {}  # id -> (agent, kind, visit)
        self.acked: set[str] = set()
        self.rejected: set[str] = set()
        self.changes = 0
        self.changed_at: dict[int, int] = {}
        self.cancelled: set[int] = set()
        self.revoked_any = False

    # --- set-up -------------------------------------------------------------------------

    def _build_world(self) -> None:
        rt = self.app.extensions["doorstep"]
        account_service.create_user(
            self.db,
            rt,
            Caller(None, "test-bootstrap", "test", "local", rt.clock()),
            {"username": "admin", "password": PASSWORD, "role": "admin"},
        )
        self.users["privacy"] = account_service.create_user(  # from the console, like admin
            self.db,
            rt,
            Caller(None, "test-bootstrap", "test", "local", rt.clock()),
            {"username": "privacy", "password": PASSWORD, "role": "privacy_officer"},
        )["id"]
        for name, role, extra in (
            ("agent1", "agent", {"badge_number": "B-1", "home_lat": 31.21}),
            ("agent2", "agent", {"badge_number": "B-2", "home_lat": 31.25}),
            ("dispatcher", "dispatcher", {}),
        ):
            if role == "agent":
                extra = {**extra, "home_lon": 121.41, "time_zone": "Asia/Shanghai"}
            response = self.staff.call(
                "admin",
                "POST",
                "/users",
                json={"username": name, "password": PASSWORD, "role": role, **extra},
            )
            assert response.status_code == 201, response.json
            self.users[name] = response.json["id"]
        rows = "\n".join(json.dumps(case_row(n)) for n in VISIT_CASES.values())
        response = self.staff.call(
            "dispatcher",
            "POST",
            "/cases/import",
            data=rows,
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert response.status_code == 200, response.json
        cases = {row["external_id"]: row["id"] for row in self.db.query("SELECT * FROM cases")}
        for agent, keys in PLAN.items():
            for key in keys:
                response = self.staff.call(
                    "dispatcher",
                    "POST",
                    "/visits",
                    json={
                        "case_id": cases[f"C-{VISIT_CASES[key]:04d}"],
                        "agent_id": self.users[agent],
                        "visit_date": TODAY,
                        "notice": {"kind": "appointment"},
                    },
                )
                assert response.status_code == 201, response.json
                self.visits[key] = response.json["visit"]["id"]
        self.case_of = {self.visits[k]: n for k, n in VISIT_CASES.items()}

    def _new_phone(self, agent: str) -> Phone:
        self.phone_count += 1
        return Phone(self, agent, self.phone_count)

    def teardown(self) -> None:
        for phone in [*self.phones.values(), *self.retired]:
            phone.client.close()
        self.db.conn.close()
        kept = getattr(self.app.extensions.get("doorstep_connections"), "db", None)
        if kept is not None:  # the requests' connection, kept by this thread
            kept.conn.close()
        self._drop_store()

    # --- helpers ------------------------------------------------------------------------

    def _observe(self) -> None:
        """Take in what every phone now holds as answered; an answer is never taken back."""
        for phone in [*self.phones.values(), *self.retired]:
            for entry in phone.client.outbox_state():
                if entry.state == "acknowledged":
                    self.acked.add(entry.id)
                elif entry.state == "rejected":
                    self.rejected.add(entry.id)

    def _server_visit(self, visit_id: int) -> dict:
        rows = list(
            self.db.query(
                "SELECT id, status, agent_id, version FROM visits WHERE id = ?", [visit_id]
            )
        )
        return rows[0]

    # --- rules: the phone ---------------------------------------------------------------

    @initialize()
    def start_of_day(self):
        """Both phones pull their day on a good network before going out."""
        for phone in self.phones.values():
            assert phone.client.sync().stopped is None
            phone.synced_at = self.changes

    @rule(agent=st.sampled_from(AGENTS), outcome=st.sampled_from(OUTCOMES), data=st.data())
    def record_visit_report(self, agent, outcome, data):
        """Record offline (the phone never asks the network to record)."""
        client, visit_id = self._recording(agent, data)
        if client is None:
            return
        n, now = self.case_of[visit_id], self.clock()
        record_id = client.record_visit_report(
            visit_id,
            arrived_at=now - timedelta(minutes=10),
            departed_at=now - timedelta(minutes=1),
            outcome=outcome,
            location={"lat": 31.2 + n / 1000, "lon": 121.4 + n / 1000, "accuracy_m": 12},
        )
        self._recorded(agent, record_id, "visit_report", visit_id)

    @rule(agent=st.sampled_from(AGENTS), own_badge=st.booleans(), data=st.data())
    def record_agent_credential(self, agent, own_badge, data):
        client, visit_id = self._recording(agent, data)
        if client is None:
            return
        badge = BADGES[agent] if own_badge else "B-999"
        record_id = client.record_agent_credential(visit_id, badge, borrower_acknowledged=True)
        self._recorded(agent, record_id, "id_confirmation", visit_id)

    @rule(agent=st.sampled_from(AGENTS), matches=st.booleans(), data=st.data())
    def record_borrower_identity(self, agent, matches, data):
        client, visit_id = self._recording(agent, data)
        if client is None:
            return
        last6 = case_row(self.case_of[visit_id])["national_id"][-6:] if matches else "99999Z"
        record_id = client.record_borrower_identity(visit_id, last6)
        self._recorded(agent, record_id, "id_confirmation", visit_id)

    def _recording(self, agent: str, data: st.DataObject) -> tuple[FieldClient | None, int]:
        """The agent's phone (None once wiped) and one of its visits: planned for it, or
        whose card it holds."""
        client = self.phones[agent].client
        if client.report().wiped:
            return None, 0
        own = {self.visits[key] for key in PLAN[agent]}
        held = {visit_id for visit_id, _ in client.held_cards()}
        return client, data.draw(st.sampled_from(sorted(own | held)), label="visit")

    def _recorded(self, agent: str, record_id: str, kind: str, visit_id: int) -> None:
        assert record_id not in self.recorded
        self.recorded[record_id] = (agent, kind, visit_id)

    @rule(
        agent=st.sampled_from(AGENTS),
        faults=st.lists(
            st.tuples(st.sampled_from(FAULTS), st.integers(min_value=0, max_value=7)),
            max_size=3,
        ),
    )
    def sync(self, agent, faults):
        """A complete sync through up to 3 faults, met by its first requests in turn
        ("ok" lets a request through); fewer than the client's attempts, so it completes."""
        phone = self._phone_for_sync(agent)
        phone.transport.faults = list(faults)
        self._sync(phone, cut=None)

    @rule(agent=st.sampled_from(AGENTS), cut=st.integers(min_value=0, max_value=6))
    def sync_cut_off(self, agent, cut):
        """The network dies after `cut` requests: some batches pushed, perhaps no pull."""
        self._sync(self._phone_for_sync(agent), cut=cut)

    def _phone_for_sync(self, agent: str) -> Phone:
        if self.phones[agent].client.report().wiped:
            # The agent of a wiped phone gets a new one.
            self.retired.append(self.phones[agent])
            self.phones[agent] = self._new_phone(agent)
        return self.phones[agent]

    def _sync(self, phone: Phone, cut: int | None) -> None:
        started = self.changes
        phone.transport.cut_after = cut
        try:
            result = phone.client.sync()
        finally:
            phone.transport.cut_after = None
            phone.transport.faults = []
        self._observe()
        _note(f"sync{'' if cut is None else ' cut off'} stopped: {result.stopped}")
        if result.purges:
            _note("sync applied purges")
        if phone.revoked:
            # A revoked phone is wiped at its first contact (or stays cut off until then).
            assert result.stopped in ("wiped", "unreachable"), result
            return
        if cut is None:
            assert result.stopped is None, result
        if result.stopped is None:
            phone.synced_at = started
            # Nothing waits for a blob here: a complete pass answers every record.
            assert phone.client.report().queued == 0, phone.client.outbox_state()

    # --- rules: the office and the clock ------------------------------------------------

    @rule(key=st.sampled_from(sorted(VISIT_CASES)))
    def reassign(self, key):
        """The dispatcher moves a visit to the other agent (If-Match the version read)."""
        visit_id = self.visits[key]
        current = self.staff.call("dispatcher", "GET", f"/visits/{visit_id}")
        assert current.status_code == 200, current.json
        to = "agent2" if current.json["agent_id"] == self.users["agent1"] else "agent1"
        response = self.staff.call(
            "dispatcher",
            "PATCH",
            f"/visits/{visit_id}",
            json={"agent_id": self.users[to]},
            headers={"If-Match": str(current.json["version"])},
        )
        if response.status_code == 200:
            _note("reassigned")
            self.changes += 1
            self.changed_at[visit_id] = self.changes
        else:  # a cancelled visit cannot be changed, nor one completed or missed
            closed = visit_id in self.cancelled or current.json["status"] in CLOSED_VISITS
            assert response.status_code == 409 and closed, response.json

    @precondition(lambda self: not self.cancelled)
    @rule(key=st.sampled_from(sorted(VISIT_CASES)))
    def cancel(self, key):
        """The dispatcher cancels a visit (final, so once a run)."""
        visit_id = self.visits[key]
        visit = self._server_visit(visit_id)
        response = self.staff.call(
            "dispatcher",
            "POST",
            f"/visits/{visit_id}/cancel",
            json={"reason": "borrower paid"},
            headers={"If-Match": str(visit["version"])},
        )
        if visit["status"] in CLOSED_VISITS:  # done, or its day closed: nothing to cancel
            assert response.status_code == 409, response.json
            return
        assert response.status_code == 200, response.json
        self.cancelled.add(visit_id)
        self.changes += 1
        self.changed_at[visit_id] = self.changes

    @precondition(lambda self: not self.revoked_any)
    @rule(agent=st.sampled_from(AGENTS))
    def revoke(self, agent):
        """The admin revokes a phone (once a run); it is wiped at its next contact."""
        phone = self.phones[agent]
        if phone.client.device_id is None:
            return  # it never logged in, so it was never enrolled: nothing to revoke yet
        response = self.staff.call(
            "admin",
            "POST",
            f"/devices/{phone.client.device_id}/revoke",
            json={"reason": "lost phone"},
        )
        assert response.status_code == 200, response.json
        phone.revoked = self.revoked_any = True

    @rule(
        minutes=st.integers(min_value=1, max_value=60),
        end_of_day=st.integers(min_value=0, max_value=7),
    )
    def advance_clock(self, minutes, end_of_day):
        """Time passes (tokens expire after 15 minutes); now and then the day ends."""
        if end_of_day == 0 and self.clock() <= CARD_EXPIRY:
            _note("passed the card expiry")
            self.clock.now = CARD_EXPIRY
        self.clock.advance(minutes=minutes)
        # The phone's own timer: cards go at expires_at on the device clock, offline too.
        for phone in self.phones.values():
            if not phone.client.report().wiped:
                phone.client.expire_cards()

    # --- invariants ---------------------------------------------------------------------

    @invariant()
    def server_never_failed(self):
        assert not self.transport.server_errors, self.transport.server_errors

    @invariant()
    def acknowledged_records_are_stored_exactly_once(self):
        self._observe()
        stored: dict[str, list[tuple[str, int]]] = {}
        for row in self.db.query("SELECT id, kind, visit_id FROM sync_records"):
            stored.setdefault(row["id"], []).append((row["kind"], row["visit_id"]))
        for record_id in self.acked:
            _, kind, visit_id = self.recorded[record_id]
            assert stored.get(record_id) == [(kind, visit_id)], (record_id, stored.get(record_id))
        for record_id, copies in stored.items():
            assert len(copies) == 1, (record_id, copies)
            assert record_id in self.recorded, f"stored but never recorded: {record_id}"
            assert self.recorded[record_id][1:] == copies[0]
            assert record_id not in self.rejected, f"held as rejected but stored: {record_id}"

    @invariant()
    def no_card_held_that_must_be_gone(self):
        problems = self.card_problems()
        assert not problems, problems

    def card_problems(self) -> list[str]:
        """Cards a phone must no longer hold: past their expiry (the phone's own timer has
        run), or for a visit cancelled or moved away once the phone completed a sync after
        the change."""
        problems = []
        now = self.clock()
        for agent, phone in self.phones.items():
            for visit_id, expires_at in phone.client.held_cards():
                if expires_at is None or expires_at <= now:
                    problems.append(f"{agent} holds visit {visit_id}, expiry {expires_at}")
                visit = self._server_visit(visit_id)
                if visit["status"] != "cancelled" and visit["agent_id"] == self.users[agent]:
                    continue
                if self.changed_at.get(visit_id, 0) > phone.synced_at:
                    _note("card held for a changed visit before the next complete sync")
                    continue
                problems.append(
                    f"{agent} holds visit {visit_id} ({visit['status']}, agent "
                    f"{visit['agent_id']}) after a complete sync since the change"
                )
        return problems

    @invariant()
    def wiped_phones_hold_nothing(self):
        for phone in [*self.phones.values(), *self.retired]:
            if phone.client.report().wiped:
                assert phone.revoked
                report = phone.client.report()
                assert (report.cards, report.queued, report.acknowledged) == (0, 0, 0)
                assert report.purge_acks_pending == 0 and report.blobs_pending == 0

    @invariant()
    def exposure_ledger_verifies(self):
        response = self.staff.call("privacy", "GET", "/audit/verify")
        assert response.status_code == 200, response.json
        assert response.json["intact"] is True, response.json


SyncMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
test_sync_state_machine = SyncMachine.TestCase


class PostgresSyncMachine(SyncMachine):
    """The same machine, each run on a fresh PostgreSQL schema."""

    engine = "postgresql"


PostgresSyncMachine.TestCase.settings = SyncMachine.TestCase.settings
test_sync_state_machine_on_postgresql = pytest.mark.skipif(
    postgres.server_url() is None, reason="PostgreSQL half skipped: no server"
)(PostgresSyncMachine.TestCase)


def test_a_purge_ack_answered_twice_does_not_hide_a_later_reassignment(server_engine):
    machine = PostgresSyncMachine() if server_engine == "postgresql" else SyncMachine()
    try:
        machine.start_of_day()
        machine.reassign("v1")  # to agent2
        # The pull orders the purge; the acknowledgement commits but its answer is lost,
        # and the client's retry is answered "confirmed: []", so it keeps the ack queued.
        machine.sync("agent1", [("ok", 0), ("drop", 0)])
        machine.reassign("v1")  # back to agent1: delivered again, the old ack confirms it
        machine.sync("agent1", [])
        machine.reassign("v1")  # to agent2 again: the server thinks the card is gone
        machine.sync("agent1", [])
        assert not machine.card_problems()
    finally:
        machine.teardown()
