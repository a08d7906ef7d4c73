"""Fixtures: an app on a fresh store (a SQLite file, and a PostgreSQL database for the suites
that run on both engines), a fixed clock, a small world, tokens per role.

A fresh store is a copy of a template migrated once per test process: a file copy on
SQLite, `CREATE DATABASE … TEMPLATE` on PostgreSQL (tests/postgres.py). The template holds
the migrations only; what an app adds on its first start (the signing key in the ledger
keyring, the key file beside the store) stays per test. The slow suites are scheduled
first, and idle workers steal queued tests (`--dist worksteal`), so a run does not end on
one long test.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from server import create_app
from server.clock import to_iso
from server.storage.connection import open_db
from server.storage.migrations import migrate
from tests import postgres

PASSWORD = "correct-horse-battery"
# 10:00 in Shanghai on the demo day: inside every card window of that day.
T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
TODAY = "2026-11-24"


class FixedClock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def case_row(n: int, **overrides) -> dict:
    row = {
        "case_external_id": f"C-{n:04d}",
        "borrower_external_id": f"B-{n:04d}",
        "full_name": f"Borrower {n}",
        "national_id": f"3101011990010{n:04d}X"[-18:],
        "phones": [f"1381234{n:04d}"],
        "home_address": f"{n} Test Road, Shanghai",
        "home_lat": 31.2 + n / 1000,
        "home_lon": 121.4 + n / 1000,
        "work_address": f"{n} Office Park",
        "employer": "Acme",
        "date_of_birth": "1990-01-01",
        "contacts": [{"name": f"Sister {n}", "relation": "sister", "phone": f"1399999{n:04d}"}],
        "income": "9000.00",
        "time_zone": "Asia/Shanghai",
        "product": "Personal loan",
        "overdue_amount": "1200.50",
        "currency": "CNY",
        "days_past_due": 40,
    }
    row.update(overrides)
    return row


@dataclass
class World:
    app: object
    clock: FixedClock
    users: dict[str, int] = field(default_factory=dict)
    cases: dict[str, int] = field(default_factory=dict)
    visits: dict[str, int] = field(default_factory=dict)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


# The suites that run on PostgreSQL too (each test twice: [sqlite] and [postgresql]) ...
POSTGRES_SUITES = ("tests/api/", "tests/system/")
# ... except these modules, on SQLite only for now (docs/deployment.md says why).
SQLITE_ONLY_MODULES = frozenset(os.environ.get("DOORSTEP_TEST_SQLITE_ONLY", "").split(",")) | {
    "tests/api/test_backups.py",  # SQLite file backups; PostgreSQL's are pg_dump's
    "tests/api/test_setup.py",  # SQLite pragmas and files
    "tests/api/test_wal_after_response.py",  # SQLite's WAL checkpoints
}


def _on_both_engines(path: str) -> bool:
    relative = path[path.index("tests/") :] if "tests/" in path else path
    return relative.startswith(POSTGRES_SUITES) and relative not in SQLITE_ONLY_MODULES


def pytest_configure(config):
    # Idle workers take queued tests from busy ones, unless the command line chose a mode.
    chosen = any(str(arg).startswith("--dist") for arg in config.invocation_params.args)
    if getattr(config.option, "dist", None) == "load" and not chosen:
        config.option.dist = "worksteal"
    config.addinivalue_line("markers", "sqlite_only: the test is about the SQLite store itself")
    config.addinivalue_line("markers", "postgresql_only: the test is about several app servers")
    if os.environ.get("CI") == "true" and postgres.server_url() is None:
        raise pytest.UsageError(
            "CI=true and no PostgreSQL answers (DOORSTEP_TEST_POSTGRES_URL or 127.0.0.1:5432): "
            "the PostgreSQL half of the suite cannot run"
        )


def pytest_generate_tests(metafunc):
    if "store_engine" not in metafunc.fixturenames:
        return
    engines = [] if metafunc.definition.get_closest_marker("postgresql_only") else ["sqlite"]
    if (
        _on_both_engines(str(metafunc.definition.path))
        and metafunc.definition.get_closest_marker("sqlite_only") is None
    ):
        engines.append("postgresql")
    metafunc.parametrize("store_engine", engines, indirect=True)


# Suites whose tests take seconds each (servers in subprocesses, browsers, Node): they start
# first, so the run does not end with one worker on a long test while the other is idle.
LONG_SUITES = ("tests/system/", "tests/watermelon/")


def _is_long(item: pytest.Item) -> bool:
    path = str(item.path)
    return "tests/" in path and path[path.index("tests/") :].startswith(LONG_SUITES)


def pytest_collection_modifyitems(config, items):
    """Put the long tests first in every worker's share of the run.

    pytest-xdist's worksteal scheduler hands each worker a contiguous slice of the
    collection (the first half to one, the rest to the other on -n 2). The long modules are
    dealt whole (a module's server and browser start once per worker that runs it) and in
    turn to the fronts of the slices (their test counts say little of their times: one
    test of a trial outlasts ninety of a fuzzer); the other tests fill the slices in their
    collection order.
    """
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        if _is_long(item):
            modules.setdefault(str(item.path), []).append(item)
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    shares: list[list[pytest.Item]] = [[] for _ in range(workers)]
    for index, module in enumerate(modules.values()):
        shares[index % workers].extend(module)
    short = [item for item in items if not _is_long(item)]
    ordered: list[pytest.Item] = []
    remaining = len(items)
    for worker, share in enumerate(shares):
        size = remaining // (workers - worker)  # the slice worksteal sends this worker
        take = max(0, size - len(share))
        ordered += share + short[:take]
        short = short[take:]
        remaining -= size
    items[:] = ordered + short


def pytest_terminal_summary(terminalreporter):
    if postgres.server_url() is None:
        terminalreporter.write_sep("!", "POSTGRESQL HALF SKIPPED", red=True, bold=True)
        terminalreporter.write_line(
            "No PostgreSQL answered at DOORSTEP_TEST_POSTGRES_URL or 127.0.0.1:5432: the "
            "tests of the PostgreSQL store did not run (under CI=true this fails the run).",
            red=True,
        )


@pytest.fixture
def store_engine(request):
    """'sqlite' or 'postgresql': the engine this test's app stores in."""
    if request.param == "postgresql" and postgres.server_url() is None:
        pytest.skip("PostgreSQL half skipped: no server (see the end of the run)")
    return request.param


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A SQLite store migrated to the latest version, built once per test process."""
    path = tmp_path_factory.mktemp("template") / "doorstep.db"
    db = open_db(str(path))
    try:
        migrate(db, to_iso(T0))
    finally:
        db.conn.close()  # the last connection closing folds the WAL into the file
    return path


class PostgresStores:
    """Fresh PostgreSQL stores for one test process: copies of a migrated template
    database, or empty schemas where the role may not create databases."""

    def __init__(self, server: str, template: str | None) -> None:
        self.server = server
        self.template = template
        self.dropper = postgres.Dropper(server) if template else None

    @contextmanager
    def fresh(self) -> Iterator[str]:
        """The URL of a new store, dropped afterwards (in the background when a copy)."""
        if self.template is None or self.dropper is None:
            schema, url = postgres.create_schema(self.server)
            try:
                yield url
            finally:
                postgres.drop_schema(self.server, schema)
            return
        name, url = postgres.clone_database(self.server, self.template)
        try:
            yield url
        finally:
            self.dropper.drop(name)

    def close(self) -> None:
        if self.dropper is not None:
            self.dropper.close()
            for failure in self.dropper.failures:  # the next run's clean-up drops them
                warnings.warn(f"test database not dropped: {failure}", stacklevel=1)
        if self.template is not None:
            postgres.drop_database(self.server, self.template)


@pytest.fixture(scope="session")
def postgres_stores() -> Iterator[PostgresStores]:
    """This test process's source of PostgreSQL stores; clears what killed runs left."""
    server = postgres.server_url()
    assert server is not None
    postgres.remove_leftovers(server)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    stores = PostgresStores(server, postgres.create_template(server, worker, to_iso(T0)))
    yield stores
    stores.close()


@pytest.fixture
def store_target(request, store_engine, tmp_path):
    """The DATABASE setting of this test's store: a fresh SQLite file or PostgreSQL
    database, already migrated (a copy of the template)."""
    if store_engine == "sqlite":
        target = tmp_path / "doorstep.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        yield str(target)
        return
    with request.getfixturevalue("postgres_stores").fresh() as url:
        yield url


@pytest.fixture
def make_app(tmp_path, clock, store_target):
    """Build an app on the test database with some settings changed.

    Settings are read-only in a running app: a test that needs other values builds another
    app. On the same database it shares the signing key, the users and their tokens.
    """

    def make(**settings):
        return create_app(
            {
                "DATABASE": store_target,
                "STATE_DIR": str(tmp_path),
                "CLOCK": clock,
                "PASSWORD_TIME_COST": 1,
                "PASSWORD_MEMORY_COST_KIB": 1024,
                "DOORSTEP_ENV": "development",
                # The clock stands still in tests, so buckets would never refill: limits are
                # exercised on their own in tests/api/test_limits.py.
                "RATE_PER_DEVICE_PER_MIN": 0,
                "RATE_PER_ADDRESS_PER_MIN": 0,
                **settings,
            }
        )

    return make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def db(app):
    conn = open_db(app.config["DATABASE"])
    yield conn
    conn.conn.close()


def _create_user(client, admin_headers, username, role, **extra):
    response = client.post(
        "/api/v1/users",
        json={"username": username, "password": PASSWORD, "role": role, **extra},
        headers=admin_headers,
    )
    assert response.status_code == 201, response.json
    return response.json["id"]


class Auth:
    """Logs in users and hands out headers."""

    def __init__(self, client) -> None:
        self.client = client
        self.sessions: dict[str, dict] = {}

    def login(self, username: str, device_id: str | None = None) -> dict:
        body = {"username": username, "password": PASSWORD}
        if device_id:
            self.register_device(username, device_id)
            body["device_id"] = device_id
        response = self.client.post("/api/v1/auth/login", json=body)
        assert response.status_code == 200, response.json
        self.sessions[username] = {**response.json, "device": device_id}
        return response.json

    def register_device(self, username: str, device_id: str) -> None:
        """Register an agent's phone under this id as an admin does (no-op if it already is):
        tests name their phones, which automatic enrolment no longer lets a phone do."""
        admin = self.headers("admin")
        users = self.client.get("/api/v1/users", query_string={"role": "agent"}, headers=admin)
        if users.status_code == 401:  # the test moved the clock past the admin's token
            self.login("admin")
            admin = self.headers("admin")
            users = self.client.get("/api/v1/users", query_string={"role": "agent"}, headers=admin)
        user_id = next(u["id"] for u in users.json if u["username"] == username)
        response = self.client.post(
            f"/api/v1/users/{user_id}/devices", json={"device_id": device_id}, headers=admin
        )
        assert response.status_code in (201, 409), response.json

    def headers(self, username: str) -> dict[str, str]:
        if username not in self.sessions:
            device = f"phone-{username}" if username.startswith("agent") else None
            self.login(username, device)
        session = self.sessions[username]
        headers = {"Authorization": f"Bearer {session['access_token']}"}
        if session["device"]:
            headers["X-Device-Id"] = session["device"]
        return headers


def console_user(app, username: str, role: str) -> int:
    """Create an account through the service, as `flask users create` does at the console."""
    from server.runtime import Caller
    from server.services import accounts as account_service

    rt = app.extensions["doorstep"]
    conn = open_db(app.config["DATABASE"])
    try:
        return account_service.create_user(
            conn,
            rt,
            Caller(None, "test-bootstrap", "test", "local", rt.clock()),
            {"username": username, "password": PASSWORD, "role": role},
        )["id"]
    finally:
        conn.conn.close()


@pytest.fixture
def auth(client, app):
    console_user(app, "admin", "admin")  # the first admin, as `flask users create` makes it
    return Auth(client)


@pytest.fixture
def world(app, client, auth, clock) -> World:
    """Two agents, a dispatcher, a privacy officer; five cases; visits planned today."""
    w = World(app=app, clock=clock)
    admin = auth.headers("admin")
    w.users["admin"] = 1
    for name, badge, lat in (("agent1", "B-1", 31.21), ("agent2", "B-2", 31.25)):
        w.users[name] = _create_user(
            client,
            admin,
            name,
            "agent",
            badge_number=badge,
            home_lat=lat,
            home_lon=121.41,
            time_zone="Asia/Shanghai",
        )
    for name in ("agent1", "agent2"):  # their phones, as an admin registers them
        auth.register_device(name, f"phone-{name}")
    w.users["dispatcher"] = _create_user(client, admin, "dispatcher", "dispatcher")
    # A privacy officer through the API needs another one's approval: the first comes from
    # the console, as `flask users create --role privacy_officer` makes it.
    w.users["privacy"] = console_user(app, "privacy", "privacy_officer")
    rows = [case_row(n) for n in range(1, 6)]
    rows[4]["do_not_visit"] = True
    body = "\n".join(json.dumps(r) for r in rows)
    dispatcher = auth.headers("dispatcher")
    response = client.post(
        "/api/v1/cases/import",
        data=body,
        headers={**dispatcher, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200 and response.json["created"] == 5, response.json
    conn = open_db(app.config["DATABASE"])
    for row in conn.query("SELECT id, external_id FROM cases"):
        w.cases[row["external_id"]] = row["id"]
    conn.conn.close()
    plan = [
        ("v1", "C-0001", "agent1", "09:00", "11:00"),
        ("v2", "C-0002", "agent1", None, None),
        ("v3", "C-0003", "agent2", None, None),
        ("v4", "C-0004", "agent2", "14:00", "16:00"),
    ]
    for key, case, agent, start, end in plan:
        response = client.post(
            "/api/v1/visits",
            json={
                "case_id": w.cases[case],
                "agent_id": w.users[agent],
                "visit_date": TODAY,
                "window_start": start,
                "window_end": end,
                "notes": f"notes for {key}",
                "notice": {"kind": "appointment"},
            },
            headers=dispatcher,
        )
        assert response.status_code == 201, response.json
        w.visits[key] = response.json["visit"]["id"]
    return w
