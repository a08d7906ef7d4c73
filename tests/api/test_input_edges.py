"""Hostile values in every field of every operation: a 4xx naming the field, never a 500.

The sweep reads the served OpenAPI document: for every operation that takes a JSON body or
query arguments it sends, one at a time, each hostile value in each text, number and date
field the schema declares (nested objects and list items included), as a role the operation
lets in. The answer must be a 4xx in the one error shape, naming the field (in `field` or in
`details.fields`). Records inside a push and rows of a case import are answered one by one, so
their fields are swept through the push (`rejected`/`malformed`, the field in the message) and
the import report (the row's error names the field), from the schemas of their bodies.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from schemas.cases import CaseRowSchema
from schemas.payments import PaymentRowSchema
from schemas.sync import BODY_SCHEMAS, RecordSchema
from sync.canonical import agreement_content_hash
from tests.api.test_role_matrix import USER_OF_ROLE, api_operations, build_url, sample_params
from tests.conftest import PASSWORD, T0, case_row

API = "/api/v1"
LOGIN = f"{API}/auth/login"
MAX_SWEEP_SECONDS = 60

# Raw JSON text of each hostile value, by the kind of field it is sent to.
TEXT = {"lone surrogate": '"\\ud800"', "NUL": '"a\\u0000b"', "escape": '"a\\u001bb"'}
NUMBER = {
    "1e400": "1e400",
    "-1e400": "-1e400",
    "25 digits": "1234567890123456789012345",
    "25 digits and cents": "1234567890123456789012345.5",
}
DATE = {"year 9999": '"9999-12-31"', "year 1": '"0001-01-01"'}
DATETIME = {
    "year 9999": '"9999-12-31T23:59:59Z"',
    "year 9999 west": '"9999-12-31T23:59:59-12:00"',
    "year 1": '"0001-01-01T00:00:00Z"',
    "year 1 east": '"0001-01-01T00:00:00+14:00"',
}
# Amounts written as decimal text (record bodies, import rows).
MONEY_TEXT = {
    "1e400 as text": '"1e400"',
    "25 digits as text": '"1234567890123456789012345"',
    "three decimals": '"12.345"',
}
# Query arguments arrive as text; a lone surrogate cannot be spelled in a URL (its UTF-8
# bytes decode to U+FFFD, a valid character), control characters can.
QUERY_TEXT = {"NUL": "a\x00b", "escape": "a\x1bb"}
QUERY_NUMBER = {"1e400": "1e400", "25 digits": "1234567890123456789012345"}
QUERY_DATE = {"year 9999": "9999-12-31", "year 1": "0001-01-01"}
QUERY_DATETIME = {"year 9999": "9999-12-31T23:59:59Z", "year 1": "0001-01-01T00:00:00Z"}

_SENTINEL = "__hostile_value__"


def _resolve(schema: dict, components: dict) -> dict:
    while True:
        if "$ref" in schema:
            schema = components[schema["$ref"].rsplit("/", 1)[1]]
        elif len(schema.get("allOf", ())) == 1:
            schema = schema["allOf"][0]
        else:
            return schema


def leaves(schema: dict, components: dict, path: tuple = (), depth: int = 0) -> Iterator:
    """(path, hostile values) for each leaf field; a path holds names and 0 for list items."""
    schema = _resolve(schema, components)
    if schema.get("readOnly") or depth > 4:
        return
    if "oneOf" in schema:
        # Items of a tagged union (pushed records) are answered one by one in the push's
        # outcomes, never with a 4xx for the batch: tests/api/test_sync.py and
        # tests/unit/test_push_fast_validation.py sweep those.
        return
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        for name, sub in schema.get("properties", {}).items():
            yield from leaves(sub, components, (*path, name), depth + 1)
    elif kind == "array":
        yield from leaves(schema.get("items", {}), components, (*path, 0), depth + 1)
    elif kind == "string":
        extra = {"date": DATE, "date-time": DATETIME}.get(schema.get("format"), {})
        yield path, {**TEXT, **extra}
    elif kind in ("integer", "number"):
        yield path, {**NUMBER, **(MONEY_TEXT if _is_amount(path) else {})}
    elif kind is None:  # any JSON value (decimal text or a number)
        yield path, {**TEXT, **NUMBER, **(MONEY_TEXT if _is_amount(path) else {})}


def _is_amount(path: tuple) -> bool:
    return bool(path) and str(path[-1]).endswith(("amount", "income"))


def query_leaves(parameters: list[dict]) -> Iterator[tuple[str, dict[str, str]]]:
    for parameter in parameters:
        if parameter.get("in") != "query":
            continue
        schema = parameter.get("schema", {})
        kind, fmt = schema.get("type"), schema.get("format")
        if kind in ("integer", "number"):
            yield parameter["name"], QUERY_NUMBER
        elif fmt == "date":
            yield parameter["name"], {**QUERY_TEXT, **QUERY_DATE}
        elif fmt == "date-time":
            yield parameter["name"], {**QUERY_TEXT, **QUERY_DATETIME}
        elif kind == "string":
            yield parameter["name"], QUERY_TEXT


def body_with(path: tuple, raw: str, base: Any = None) -> str:
    """JSON text of `base` (or a bare skeleton) with the value at `path` set to raw JSON."""

    def place(node: Any, rest: tuple) -> Any:
        if not rest:
            return _SENTINEL
        key, tail = rest[0], rest[1:]
        if key == 0:
            inner = node[0] if isinstance(node, list) and node else None
            return [place(inner, tail)]
        node = dict(node) if isinstance(node, dict) else {}
        node[key] = place(node.get(key), tail)
        return node

    return json.dumps(place(base, path)).replace(f'"{_SENTINEL}"', raw)


def dotted(path: tuple) -> str:
    return ".".join(str(part) for part in path)


def error_paths(messages: Any, prefix: str = "") -> set[str]:
    """Every field path named in a marshmallow error tree (location keys dropped)."""
    if not isinstance(messages, dict):
        return {prefix} if prefix else set()
    found = set()
    for key, value in messages.items():
        if not prefix and key in ("json", "query"):
            found |= error_paths(value, "")
            continue
        path = f"{prefix}.{key}" if prefix else str(key)
        found |= {path} | error_paths(value, path)
    return found


def check_refusal(response, field: str) -> str | None:
    """None when the answer is a 4xx in the error shape naming `field`, else why not."""
    body = response.get_json(silent=True)
    if not 400 <= response.status_code < 500 or response.status_code in (401, 403):
        return f"status {response.status_code} {body}"
    if not isinstance(body, dict) or set(body) != {"error", "request_id"}:
        return f"not the error shape: {response.get_data(as_text=True)[:200]}"
    error = body["error"]
    named = {error.get("field")} | error_paths(error.get("details", {}).get("fields", {}))
    if field not in named:
        return f"field not named: {error}"
    return None


@pytest.fixture
def sweep(app, client, auth, world, db):
    spec = client.get(f"{API}/openapi.json").get_json()
    params = sample_params(world, db)
    headers = {role: auth.headers(user) for role, user in USER_OF_ROLE.items()}
    return spec, params, headers


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule)


def test_every_body_and_query_field_refuses_hostile_values(app, client, sweep):
    spec, params, headers = sweep
    components = spec["components"]["schemas"]
    started = time.monotonic()
    failures: list[str] = []
    sent = 0
    for n_op, op in enumerate(api_operations(app)):
        operation = spec["paths"].get(_openapi_path(op.rule), {}).get(op.method.lower())
        if operation is None:
            continue
        role = op.roles[0] if op.roles else None
        request_headers = dict(headers[role]) if role else {}
        url = build_url(op, params, write_safe=True)
        body_schema = (
            operation.get("requestBody", {})
            .get("content", {})
            .get("application/json", {})
            .get("schema")
        )
        if body_schema is not None:
            for path, values in leaves(body_schema, components):
                for label, raw in values.items():
                    # Logins each from their own address and name: a refused login counts
                    # for throttling, which must answer for this value, not for earlier ones.
                    base = {"username": f"sweeper{sent}"} if op.rule == LOGIN else None
                    response = client.open(
                        url,
                        method=op.method,
                        data=body_with(path, raw, base).encode(),
                        headers={**request_headers, "Content-Type": "application/json"},
                        environ_base={"REMOTE_ADDR": f"10.9.{n_op}.{sent % 250}"},
                    )
                    sent += 1
                    why = check_refusal(response, dotted(path))
                    if why:
                        failures.append(f"{op.method} {op.rule} {dotted(path)}={label}: {why}")
        for name, values in query_leaves(operation.get("parameters", [])):
            for label, text in values.items():
                response = client.open(
                    f"{url}?{name}={quote(text)}", method=op.method, headers=request_headers
                )
                sent += 1
                why = check_refusal(response, name)
                if why:
                    failures.append(f"{op.method} {op.rule} ?{name}={label}: {why}")
    elapsed = time.monotonic() - started
    assert not failures, f"{len(failures)} of {sent}:\n" + "\n".join(failures)
    assert sent > 300, sent  # the sweep reached the fields it is meant to
    assert elapsed < MAX_SWEEP_SECONDS, elapsed


def _marshmallow_json_schema(schema) -> tuple[dict, dict]:
    """A marshmallow schema as JSON Schema, with the components its nested schemas need."""
    plugin = MarshmallowPlugin()
    spec = APISpec("sweep", "1", "3.0.3", plugins=[plugin])
    document = plugin.converter.schema2jsonschema(schema)
    return document, spec.to_dict().get("components", {}).get("schemas", {})


def _iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _valid_bodies(world) -> dict[str, dict]:
    visit = world.visits["v1"]
    agreement = {
        "agreement_id": str(uuid.uuid4()),
        "case_id": world.cases["C-0001"],
        "visit_id": visit,
        "currency": "CNY",
        "total_amount": "100.00",
        "installments": [{"due_date": "2026-12-24", "amount": "100.00"}],
        "template_id": "repayment-plan-zh",
        "template_version": 1,
        "borrower_signature_sha256": "ab" * 32,
        "agent_signature_sha256": "cd" * 32,
        "signed_at": _iso(T0),
        "signed_lat": "31.201000",
        "signed_lon": "121.401000",
    }
    agreement["content_hash"] = agreement_content_hash(agreement)
    return {
        "visit_report": {
            "arrived_at": _iso(T0 - timedelta(minutes=30)),
            "outcome": "not_home",
            "location": {"lat": 31.2, "lon": 121.4, "accuracy_m": 10},
        },
        "id_confirmation": {
            "confirmation_kind": "agent_credential",
            "badge_number": "B-1",
            "borrower_acknowledged": True,
        },
        "agreement": agreement,
        "contact": {
            "channel": "phone_call",
            "occurred_at": _iso(T0 - timedelta(minutes=30)),
            "outcome": "no_answer",
        },
    }


def _push_one(client, headers, record: str):
    push = f'{{"device_time": "{_iso(T0)}", "records": [{record}]}}'
    return client.post(f"{API}/sync/push", data=push.encode(), headers=headers)


def _named_in_rejection(response, field: str) -> str | None:
    """None when the push answered 200 and the record `rejected`/`malformed` naming `field`."""
    if response.status_code != 200:
        return f"status {response.status_code}"
    outcome = response.get_json()["outcomes"][0]
    if outcome["status"] != "rejected" or outcome["reason"] != "malformed":
        return f"{outcome['status']} {outcome['reason']}"
    named = re.sub(r"\[(\d+)\]", r".\1", outcome["message"].partition(":")[0])
    if named != field and not named.startswith(f"{field}."):
        return outcome["message"]
    return None


def test_every_record_field_refuses_hostile_values(client, auth, world):
    headers = {**auth.headers("agent1"), "Content-Type": "application/json"}
    failures: list[str] = []
    sent = 0
    for kind, base in _valid_bodies(world).items():
        document, components = _marshmallow_json_schema(BODY_SCHEMAS[kind])
        for path, values in leaves(document, components):
            for label, raw in values.items():
                body = body_with(path, raw, base)
                if kind == "agreement" and path != ("agreement_id",):
                    record_id = base["agreement_id"]  # the agreement id is the record id
                else:
                    record_id = str(uuid.uuid4())
                record = (
                    f'{{"id": "{record_id}", "kind": "{kind}", "visit_id": {world.visits["v1"]},'
                    f' "device_seq": {sent + 1}, "recorded_at": "{_iso(T0)}", "body": {body}}}'
                )
                sent += 1
                why = _named_in_rejection(
                    _push_one(client, headers, record), f"body.{dotted(path)}"
                )
                if why:
                    failures.append(f"{kind} body.{dotted(path)}={label}: {why}")
    # The envelope around the body, with a valid visit report inside.
    envelope = {
        "id": str(uuid.uuid4()),
        "kind": "visit_report",
        "visit_id": world.visits["v1"],
        "device_seq": 1,
        "recorded_at": _iso(T0),
        "body": _valid_bodies(world)["visit_report"],
    }
    document, components = _marshmallow_json_schema(RecordSchema())
    for path, values in leaves(document, components):
        for label, raw in values.items():
            sent += 1
            response = _push_one(client, headers, body_with(path, raw, envelope))
            why = _named_in_rejection(response, dotted(path))
            if why:
                failures.append(f"record {dotted(path)}={label}: {why}")
    # A field name that is not text, in the envelope and in the body.
    for raw_record in (
        '{"\\ud800": 1}',
        f'{{"id": "{uuid.uuid4()}", "kind": "visit_report", "visit_id": 1, "device_seq": 1,'
        f' "recorded_at": "{_iso(T0)}", "body": {{"notes\\u0000": "x"}}}}',
    ):
        sent += 1
        response = _push_one(client, headers, raw_record)
        if response.status_code != 200 or response.get_json()["outcomes"][0]["status"] != (
            "rejected"
        ):
            failures.append(f"field name: {response.status_code} {response.get_json()}")
    assert not failures, f"{len(failures)} of {sent}:\n" + "\n".join(failures)
    assert sent > 100, sent


def test_every_import_row_field_refuses_hostile_values(client, auth, world):
    headers = {**auth.headers("dispatcher"), "Content-Type": "application/x-ndjson"}
    document, components = _marshmallow_json_schema(CaseRowSchema())
    base = case_row(900)
    lines, expected = [], []
    for path, values in leaves(document, components):
        for label, raw in values.items():
            lines.append(body_with(path, raw, base))
            expected.append((dotted(path), label))
    response = client.post(f"{API}/cases/import", data="\n".join(lines).encode(), headers=headers)
    assert response.status_code == 200, response.get_json()
    report = response.get_json()
    errors = {error["row"]: error for error in report["errors"]}
    failures = []
    for row, (field, label) in enumerate(expected, start=1):
        error = errors.get(row)
        if error is None:
            failures.append(f"{field}={label}: accepted")
        elif error["field"] != field and not (error["field"] or "").startswith(f"{field}."):
            failures.append(f"{field}={label}: {error}")
    assert not failures, f"{len(failures)} of {len(expected)}:\n" + "\n".join(failures)
    assert report["created"] == 0 and report["updated"] == 0


def test_every_payment_row_field_refuses_hostile_values(client, auth, world):
    headers = {**auth.headers("dispatcher"), "Content-Type": "application/x-ndjson"}
    document, components = _marshmallow_json_schema(PaymentRowSchema())
    base = {
        "payment_id": "P-900",
        "case_external_id": "C-0001",
        "amount": "10.00",
        "currency": "CNY",
        "paid_at": "2026-11-24T10:00:00+08:00",
    }
    lines, expected = [], []
    for path, values in leaves(document, components):
        for label, raw in values.items():
            lines.append(body_with(path, raw, base))
            expected.append((dotted(path), label))
    response = client.post(
        f"{API}/payments/import", data="\n".join(lines).encode(), headers=headers
    )
    assert response.status_code == 200, response.get_json()
    report = response.get_json()
    errors = {error["row"]: error for error in report["errors"]}
    failures = [
        f"{field}={label}: {errors.get(row) or 'accepted'}"
        for row, (field, label) in enumerate(expected, start=1)
        if (errors.get(row) or {}).get("field") != field
    ]
    assert not failures, f"{len(failures)} of {len(expected)}:\n" + "\n".join(failures)
    assert report["created"] == 0 and len(expected) >= 10


def test_login_with_a_lone_surrogate_is_a_422_naming_the_field(client, auth, world):
    """Used to be a 500 (the store could not encode the name): now 422 naming the field."""
    response = client.post(
        f"{API}/auth/login",
        data=b'{"username": "\\ud800", "password": "x"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.get_json()["error"]["field"] == "username"


def test_unreadable_logins_are_throttled_like_wrong_passwords(client, auth, world):
    """Logins refused for their body used to be free: any number answered 422 (or 500),
    never slowed down. Now each counts as a failed attempt, so the throttle answers 429."""
    hostile = b'{"username": "agent1", "password": "pass\\u0000word"}'
    statuses = []
    for _ in range(100):  # far more than any throttle lets through
        response = client.post(
            f"{API}/auth/login",
            data=hostile,
            headers={"Content-Type": "application/json"},
            environ_base={"REMOTE_ADDR": "10.8.0.1"},
        )
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[0] == 422 and statuses[-1] == 429, statuses
    assert set(statuses[:-1]) == {422}
    # Someone else, from elsewhere, still logs in.
    ok = client.post(
        f"{API}/auth/login",
        json={"username": "dispatcher", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.8.0.2"},
    )
    assert ok.status_code == 200


def test_one_hostile_record_does_not_refuse_the_batch(client, auth, world):
    """A lone surrogate in one record is that record's rejection; the others are stored."""
    good = {
        "id": str(uuid.uuid4()),
        "kind": "visit_report",
        "visit_id": world.visits["v1"],
        "device_seq": 1,
        "recorded_at": _iso(T0),
        "body": _valid_bodies(world)["visit_report"],
    }
    bad = body_with(("body", "notes"), TEXT["lone surrogate"], {**good, "id": str(uuid.uuid4())})
    batch = f'{{"device_time": "{_iso(T0)}", "records": [{bad}, {json.dumps(good)}]}}'
    response = client.post(
        f"{API}/sync/push",
        data=batch.encode(),
        headers={**auth.headers("agent1"), "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.get_json()
    first, second = response.get_json()["outcomes"]
    assert (first["status"], first["reason"]) == ("rejected", "malformed")
    assert first["message"].startswith("body.notes:")
    assert second["status"] in ("accepted", "flagged")


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "1999-12-31", "2101-01-01"])
def test_a_day_in_a_path_outside_the_business_range_is_not_found(client, auth, world, day):
    """A day in year 9999 used to reach the route and day-order views; now no such day."""
    dispatcher = auth.headers("dispatcher")
    agent = world.users["agent1"]
    for method, url, body in (
        ("GET", f"{API}/agents/{agent}/days/{day}/route", None),
        ("POST", f"{API}/agents/{agent}/days/{day}/route-proposal", None),
        ("PUT", f"{API}/agents/{agent}/days/{day}/order", {"visits": []}),
        ("POST", f"{API}/days/{day}/assignment-proposal", {"agent_ids": [agent]}),
    ):
        response = client.open(url, method=method, json=body, headers=dispatcher)
        assert response.status_code == 404, (method, url, response.get_json())
