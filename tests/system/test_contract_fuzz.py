"""Contract fuzzing: Schemathesis against the served OpenAPI document, as every role.

Every operation of /api/v1/openapi.json is driven in process (WSGI) with generated valid and
invalid input from every Schemathesis phase: explicit examples, the deterministic coverage
phase (boundary values, missing, unknown and mistyped fields, undeclared methods) and random
fuzzing. Each random request is sent once as each role, with that role's token (agents
also with their X-Device-Id), so allowed roles reach validation and the rest are refused;
the thousands of systematic ones (examples, coverage) go out as the roles the operation lets
in, as the others are refused before any input is read.

Every response must: not be a 5xx; match the documented schema, content type and headers;
carry a status the operation documents explicitly (`documented_status`: the catch-all
`default` does not count); answer schema-invalid input, unknown fields and undeclared
methods with a 4xx (405 with `Allow`); and, when it succeeded, fail without the token or with
a forged one (`ignored_auth`). A plain walk of the spec checks that every object a client
may send rejects unknown properties and cannot carry a read-only one.

Not checked: `positive_data_acceptance`. A schema-valid request may still be refused by a
business rule the schema cannot express (an unknown case id, a window that ends before it
starts, a visit that is not the caller's), and that refusal is the point.

Runs are reproducible. `DOORSTEP_FUZZ_EXAMPLES` (default 10) sets the random examples per
operation and `DOORSTEP_FUZZ_SEED` picks other ones; a soak, printing the case count:

    DOORSTEP_FUZZ_EXAMPLES=300 DOORSTEP_FUZZ_SEED=7 \\
        .venv/bin/pytest tests/system/test_contract_fuzz.py -p no:xdist -s
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from server import create_app
from server.runtime import Caller
from server.services import accounts as account_service
from server.storage.connection import open_db
from tests.conftest import PASSWORD, TODAY, FixedClock, case_row
from tests.openapi_json import push_schema, validator

API = "/api/v1"
EXAMPLES = int(os.environ.get("DOORSTEP_FUZZ_EXAMPLES", "10"))
SEED = int(os.environ.get("DOORSTEP_FUZZ_SEED", "20261124"))
ROLE_USERS = {
    "agent": "agent1",
    "dispatcher": "dispatcher",
    "privacy_officer": "privacy",
    "admin": "admin",
}
APP_CONFIG = {
    "PASSWORD_TIME_COST": 1,
    "PASSWORD_MEMORY_COST_KIB": 1024,
    "DOORSTEP_ENV": "development",
    # The clock stands still, so rate buckets would never refill.
    "RATE_PER_DEVICE_PER_MIN": 0,
    "RATE_PER_ADDRESS_PER_MIN": 0,
}
HYPOTHESIS = {
    "derandomize": True,
    "deadline": None,
    "database": None,
    "suppress_health_check": list(HealthCheck),
}


# -- The import body: case rows, some of them broken, as JSON Lines or CSV ----------------

_ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@st.composite
def _case_rows(draw) -> list[dict[str, Any]]:
    rows = []
    for n in draw(st.lists(st.integers(min_value=1, max_value=20), min_size=1, max_size=4)):
        row = case_row(n)
        for key in draw(st.lists(st.sampled_from([*row, "zz_unknown"]), max_size=3)):
            row[key] = draw(_ODD_VALUES)
        rows.append(row)
    return rows


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "\n".join(json.dumps(row) for row in rows).encode()


def _csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=sorted({key for row in rows for key in row}))
    writer.writeheader()
    writer.writerows(
        {k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in row.items()}
        for row in rows
    )
    return out.getvalue().encode()


_GARBAGE = st.binary(max_size=200)
schemathesis.openapi.media_type(
    "application/x-ndjson", st.one_of(_case_rows().map(_jsonl), _GARBAGE)
)
schemathesis.openapi.media_type("text/csv", st.one_of(_case_rows().map(_csv), _GARBAGE))
# Blobs and chunks: any bytes (the hash in the path will rarely match, which is the point).
schemathesis.openapi.media_type(
    "application/pdf", _GARBAGE, aliases=["application/offset+octet-stream"]
)


# -- The world: an app with users of every role, cases, and visits planned today -----------


class World:
    """Users of every role (logged in once), five cases, four visits planned today."""

    def __init__(self, directory: str) -> None:
        self.app = create_app(
            {**APP_CONFIG, "DATABASE": f"{directory}/doorstep.db", "CLOCK": FixedClock()}
        )
        self.client = self.app.test_client()
        self._bootstrap("admin", "admin")
        admin = self._login("admin")
        self.users: dict[str, int] = {}
        for name, badge in (("agent1", "B-1"), ("agent2", "B-2")):
            self.users[name] = self._post(
                "/users",
                admin,
                username=name,
                role="agent",
                badge_number=badge,
                home_lat=31.21,
                home_lon=121.41,
                time_zone="Asia/Shanghai",
                password=PASSWORD,
            )["id"]
        self._post("/users", admin, username="dispatcher", role="dispatcher", password=PASSWORD)
        self._bootstrap("privacy", "privacy_officer")  # a first officer comes from the console
        dispatcher = self._login("dispatcher")
        imported = self.client.post(
            f"{API}/cases/import",
            data=_jsonl([case_row(n) for n in range(1, 6)]),
            headers={**dispatcher, "Content-Type": "application/x-ndjson"},
        )
        assert imported.status_code == 200 and imported.json["created"] == 5, imported.json
        cases = self.client.get(f"{API}/cases", headers=dispatcher).json["items"]
        for case, agent in zip(cases[:4], ("agent1", "agent1", "agent2", "agent2"), strict=True):
            self._post(
                "/visits",
                dispatcher,
                case_id=case["id"],
                agent_id=self.users[agent],
                visit_date=TODAY,
                notice={"kind": "appointment"},
            )
        self.headers = {role: self._login(user) for role, user in ROLE_USERS.items()}

    def _bootstrap(self, username: str, role: str) -> None:
        """An account made at the console (`flask users create`), not through the API."""
        rt = self.app.extensions["doorstep"]
        db = open_db(self.app.config["DATABASE"])
        try:
            account_service.create_user(
                db,
                rt,
                Caller(None, "fuzz-bootstrap", "test", "local", rt.clock()),
                {"username": username, "password": PASSWORD, "role": role},
            )
        finally:
            db.conn.close()

    def _login(self, username: str) -> dict[str, str]:
        """Log in; an agent's phone enrols at this login and sends the id it was given."""
        body = {"username": username, "password": PASSWORD}
        response = self.client.post(f"{API}/auth/login", json=body)
        assert response.status_code == 200, response.json
        headers = {"Authorization": f"Bearer {response.json['access_token']}"}
        if response.json["device_id"]:
            headers["X-Device-Id"] = response.json["device_id"]
        return headers

    def _post(self, path: str, headers: dict[str, str], **body: Any) -> dict:
        response = self.client.post(f"{API}{path}", json=body, headers=headers)
        assert response.status_code == 201, response.json
        return response.json


def allowed_roles(app) -> dict[str, tuple[str, ...]]:
    """'METHOD /openapi/path' -> the roles `requires` lets in (none for public operations)."""
    found = {}
    for rule in app.url_map.iter_rules():
        view_class = getattr(app.view_functions[rule.endpoint], "view_class", None)
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            view = getattr(view_class, method.lower(), None)
            found[f"{method} {path}"] = tuple(getattr(view, "_roles", ()))
    return found


def roles_for(case) -> tuple[str, ...]:
    if case.meta is not None and case.meta.phase.name.value == "fuzzing":
        return tuple(ROLE_USERS)
    # Public operations do not look at the role (wipe confirmation wants a phone's token).
    return ROLES_BY_OPERATION[case.operation.label] or ("agent",)


# -- Schemathesis setup ---------------------------------------------------------------------

# Schemathesis needs the operations when tests are collected, so the document is read from an
# app on an in-memory store; the cases run against the module's world, whose app serves the
# same document (asserted). schemathesis.pytest.from_fixture would load it from a fixture,
# but 4.32.5 reads `Function._nodeid`, which pytest 9.2 no longer has.
_DOCUMENT_APP = create_app({**APP_CONFIG, "DATABASE": ":memory:"})
ROLES_BY_OPERATION = allowed_roles(_DOCUMENT_APP)
schema = schemathesis.openapi.from_wsgi(
    f"{API}/openapi.json",
    _DOCUMENT_APP,
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            # The tests send each role's real credentials; generated or removed ones would
            # turn a valid request into a "negative" one that the real token then makes valid.
            "generation": {"deterministic": True, "with-security-parameters": False},
            "checks": {"positive_data_acceptance": {"enabled": False}},
        }
    ),
)


@pytest.fixture(scope="module")
def fuzz_world() -> Iterator[World]:
    # tmpfs where there is one: the contract is under test here, not fsync.
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108
    with tempfile.TemporaryDirectory(prefix="doorstep-fuzz-", dir=base) as directory:
        world = World(directory)
        served = world.client.get(f"{API}/openapi.json").json
        assert served == _DOCUMENT_APP.test_client().get(f"{API}/openapi.json").json
        yield world


@pytest.fixture(scope="module")
def statuses() -> Iterator[Counter]:
    """(operation, role, status) -> answers; the totals are printed when the module ends."""
    seen: Counter = Counter()
    yield seen
    total = sum(seen.values())
    errors = sum(n for (_, _, status), n in seen.items() if status >= 500)
    print(
        f"\ncontract fuzz: {total} cases, {errors} 5xx ({EXAMPLES} random examples/op, seed {SEED})"
    )


def documented_status(ctx, response, case) -> None:
    """`status_code_conformance`, minus the catch-all: a client can plan for this status."""
    if case.method.upper() != case.operation.method.upper():
        return  # an undeclared method: `unsupported_method` wants its 405 and `Allow`
    documented = {code.upper() for code in case.operation.responses.status_codes}
    status = response.status_code
    if str(status) not in documented and f"{status // 100}XX" not in documented:
        raise AssertionError(
            f"{case.operation.label} answered {status}, documented: {sorted(documented)}"
        )


PUSH = f"POST {API}/sync/push"
_DOCUMENT = _DOCUMENT_APP.test_client().get(f"{API}/openapi.json").json
_PUSH = push_schema(_DOCUMENT)
_PUSH_ENVELOPE = validator(
    _DOCUMENT,
    {**_PUSH, "properties": {**_PUSH["properties"], "records": {"type": "array"}}},
)


def records_answered_on_their_own(ctx, response, case) -> None:
    """`negative_data_rejection` for a push, whose records are answered one by one: a batch
    the document refuses only for its records is answered 200 with an outcome per record;
    anything else it refuses must be a 4xx. (Push reads a few record values more leniently
    than the document states them: tests/api/test_openapi_records.py names them.)"""
    if case.meta is None or not case.meta.generation.mode.is_negative:
        return
    if response.status_code >= 400 or case.method.upper() != "POST":
        return  # refused, or an undeclared method (`unsupported_method` checks those)
    body = case.body
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise AssertionError(f"a push that is no batch was answered {response.status_code}")
    envelope = {**body, "records": [{} for _ in body["records"]]}
    if not _PUSH_ENVELOPE.is_valid(envelope):
        raise AssertionError("a push whose envelope breaks the document was accepted")
    if len(response.json()["outcomes"]) != len(body["records"]):
        raise AssertionError("a push answered without an outcome for each record")


WATERMELON_PUSH = f"POST {API}/sync/watermelon/push"
_WATERMELON_PUSH = validator(
    _DOCUMENT,
    _DOCUMENT["paths"][f"{API}/sync/watermelon/push"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"],
)


def rows_answered_on_their_own(ctx, response, case) -> None:
    """`negative_data_rejection` for a WatermelonDB push: its rows are answered one by one
    (in `record_outcomes` on the next pull), so a push the document refuses only for its
    rows' columns or id is accepted; with every row reduced to an id it must follow the
    document, and anything else the document refuses must be a 4xx."""
    if case.meta is None or not case.meta.generation.mode.is_negative:
        return
    if response.status_code >= 400 or case.method.upper() != "POST":
        return
    body = json.loads(json.dumps(case.body))
    changes = body.get("changes") if isinstance(body, dict) else None
    for change in (changes or {}).values() if isinstance(changes, dict) else ():
        for part in ("created", "updated"):
            rows = change.get(part) if isinstance(change, dict) else None
            if isinstance(rows, list):
                change[part] = [
                    {"id": "row"}
                    if isinstance(row, dict) and isinstance(row.get("id"), str)
                    else row
                    for row in rows
                ]
    if not _WATERMELON_PUSH.is_valid(body):
        raise AssertionError("a WatermelonDB push whose envelope breaks the document was accepted")


# Requests whose items are answered one by one, each with the check that replaces
# `negative_data_rejection` for them.
PER_ITEM = {PUSH: records_answered_on_their_own, WATERMELON_PUSH: rows_answered_on_their_own}


def _call(case, role: str, world: World, statuses: Counter) -> None:
    per_item = PER_ITEM.get(case.operation.label)
    response = case.call_and_validate(
        headers=world.headers[role],
        excluded_checks=[
            positive_data_acceptance,
            *([negative_data_rejection] if per_item else []),
        ],
        additional_checks=[documented_status, *([per_item] if per_item else [])],
        app=world.app,
    )
    statuses[(case.operation.label, role, response.status_code)] += 1


@schema.parametrize()
@settings(max_examples=EXAMPLES, **HYPOTHESIS)
def test_operation_keeps_its_contract(case, fuzz_world, statuses):
    for role in roles_for(case):
        try:
            _call(case, role, fuzz_world, statuses)
        except Exception as exc:
            exc.add_note(f"as {role}")
            raise


# -- The spec walk: what a client may send is closed ------------------------------------------

# Objects a request may carry with properties of its own choosing, and why.
FREE_FORM: dict[str, str] = {}


def _objects(schema: dict, spec: dict, where: str, seen: set[str]) -> Iterator[tuple[str, dict]]:
    """Every object schema reachable from `schema`, named by where it sits."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name not in seen:
            seen.add(name)
            yield from _objects(spec["components"]["schemas"][name], spec, name, seen)
        return
    if schema.get("type") == "object" or "properties" in schema:
        yield where, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _objects(sub, spec, f"{where}.{name}", seen)
    if "items" in schema:
        yield from _objects(schema["items"], spec, f"{where}[]", seen)
    for combinator in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(combinator, []):
            yield from _objects(sub, spec, where, seen)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _objects(schema["additionalProperties"], spec, f"{where}{{}}", seen)


def test_every_request_body_rejects_unknown_and_read_only_fields(fuzz_world):
    spec = fuzz_world.client.get(f"{API}/openapi.json").json
    checked, open_objects, read_only, free_form = 0, [], [], set()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "requestBody" not in operation:
                continue
            for content in operation["requestBody"]["content"].values():
                label = f"{method.upper()} {path}"
                for where, obj in _objects(content["schema"], spec, label, set()):
                    checked += 1
                    if where in FREE_FORM:
                        free_form.add(where)
                    elif obj.get("additionalProperties") is not False:
                        open_objects.append(f"{label}: {where}")
                    read_only += [
                        f"{label}: {where}.{name}"
                        for name, prop in obj.get("properties", {}).items()
                        if prop.get("readOnly")
                    ]
    assert checked >= 20, checked
    assert not open_objects, f"request objects that accept unknown properties: {open_objects}"
    assert not read_only, f"read-only properties a request may carry: {read_only}"
    assert free_form == set(FREE_FORM), "FREE_FORM names an object no request carries"


def test_a_taken_badge_number_is_a_conflict_not_a_crash(fuzz_world):
    """Found by the fuzzer: the UNIQUE constraint on badges used to surface as a 500."""
    response = fuzz_world.client.post(
        f"{API}/users",
        json={"username": "agent3", "password": PASSWORD, "role": "agent", "badge_number": "B-1"},
        headers=fuzz_world.headers["admin"],
    )
    assert response.status_code == 409, response.json
    assert response.json["error"]["code"] == "conflict"
    assert response.json["error"]["field"] == "badge_number"


def test_a_device_clock_in_year_31_is_refused_not_stored(fuzz_world):
    """Found by the fuzzer: stored as '31-04-01T…', it broke /sync/health for everyone."""
    response = fuzz_world.client.post(
        f"{API}/sync/push",
        json={
            "device_time": "2026-11-24T02:00:00Z",
            "queue": {"pending": 1, "oldest_recorded_at": "0031-04-01T10:00:00Z"},
            "records": [],
        },
        headers=fuzz_world.headers["agent"],
    )
    assert response.status_code == 422, response.json
    assert response.json["error"]["field"] == "queue.oldest_recorded_at"
    health = fuzz_world.client.get(f"{API}/sync/health", headers=fuzz_world.headers["admin"])
    assert health.status_code == 200, health.json
