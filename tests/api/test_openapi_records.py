"""The OpenAPI document types a push's records: one schema per kind, told apart by `kind`,
built from the marshmallow schemas push validates with, its constraints in standard JSON
Schema keywords. Records are checked against the served document with jsonschema_rs."""

from __future__ import annotations

import copy
import uuid

import pytest
from marshmallow import fields

from schemas.common import DeferredObject
from schemas.sync import BODY_SCHEMAS, PushSchema
from sync.canonical import agreement_content_hash
from tests.golden.push.records import MALFORMED_CONFIRMATIONS, MALFORMED_REPORTS
from tests.openapi_json import REF, push_schema, validator

API = "/api/v1"

# Rules a body schema checks that no JSON Schema keyword of OpenAPI 3.0 can say, so a record
# breaking only them passes the document (and is refused by push, `rejected`/`malformed`).
# The date and time bounds are stated as x-minimum/x-maximum; text refuses control
# characters everywhere (docs/sync.md, Conventions).
BEYOND_THE_DOCUMENT = {
    "visit_id beyond 64 bits": "every integer is 64-bit; not repeated on each field",
    "recorded_at year 2200": "x-maximum: JSON Schema bounds numbers, not date-times",
    "departed before arrived": "compares two fields",
    "notes with NUL": "control characters: refused in every text field",
    "notes with escape char": "control characters: refused in every text field",
    "notes with lone surrogate": "lone surrogates: refused in every text field",
    "borrower_identity without digits": "id_last6 required by confirmation_kind",
    "digits on a badge check": "id_last6 refused by confirmation_kind",
    "badge missing": "badge_number required by confirmation_kind",
}


ENVELOPE = {"id", "kind", "visit_id", "device_seq", "recorded_at", "body"}


# Values push reads although the document refuses them (marshmallow's Boolean takes "yes",
# 1 and "on"; Money takes a JSON number; a date-time may omit its offset). Documented
# strictly so clients send one spelling; made strict on the server only with a change of
# push's answers (the golden corpus).
SERVER_LENIENT = {
    "third_party_present text": 'Boolean reads "yes" as true',
    "acknowledged as text": 'Boolean reads "yes" as true',
    "recorded_at naive": "a date-time without an offset is read as UTC",
}


@pytest.fixture
def document(client) -> dict:
    return client.get(f"{API}/openapi.json").json


def _records_items(document: dict) -> dict:
    return push_schema(document)["properties"]["records"]["items"]


def _component(document: dict, ref: str) -> dict:
    return document["components"]["schemas"][ref.removeprefix(REF)]


def _body_component(document: dict, kind: str) -> dict:
    record = _component(document, _records_items(document)["discriminator"]["mapping"][kind])
    return _component(document, record["properties"]["body"]["$ref"])


def test_push_records_are_one_of_a_schema_per_kind(document):
    items = _records_items(document)
    mapping = items["discriminator"]["mapping"]
    assert items["discriminator"]["propertyName"] == "kind"
    assert set(mapping) == set(BODY_SCHEMAS), "a record kind the document does not type"
    assert items["oneOf"] == [{"$ref": ref} for ref in mapping.values()]
    assert "type" not in items and "additionalProperties" not in items
    for kind, ref in mapping.items():
        record = _component(document, ref)
        assert record["properties"]["kind"]["enum"] == [kind], ref
        assert set(record["required"]) == {
            "id",
            "kind",
            "visit_id",
            "device_seq",
            "recorded_at",
            "body",
        }
        assert record["additionalProperties"] is False
    assert mapping["visit_report"] == f"{REF}VisitReportRecord"
    assert mapping["id_confirmation"] == f"{REF}IdConfirmationRecord"


@pytest.mark.parametrize("kind", sorted(BODY_SCHEMAS))
def test_each_body_schema_lists_the_fields_push_loads(document, kind):
    body = _body_component(document, kind)
    schema = BODY_SCHEMAS[kind]
    loaded = {field.data_key or name: field for name, field in schema.load_fields.items()}
    assert set(body["properties"]) == set(loaded)
    assert set(body.get("required", [])) == {key for key, f in loaded.items() if f.required}
    assert body["additionalProperties"] is False


def test_constraints_are_standard_keywords(document):
    report = _body_component(document, "visit_report")["properties"]
    assert report["promise_amount"]["type"] == "string"
    assert report["promise_amount"]["pattern"] == r"^[0-9]{1,15}(\.[0-9]{1,2})?$"
    assert report["promise_amount"]["maxLength"] == 18
    assert "not_home" in report["outcome"]["enum"]
    assert report["notes"]["maxLength"] == 4000
    assert report["promise_date"]["format"] == "date"
    assert report["arrived_at"]["format"] == "date-time"
    assert report["attachments"]["maxItems"] == 20
    assert report["attachments"]["items"]["pattern"] == "^[0-9a-f]{64}$"
    contact = _body_component(document, "contact")["properties"]
    assert contact["duration_s"]["minimum"] == 0
    assert contact["duration_s"]["maximum"] == 86_400
    assert contact["channel"]["enum"]
    confirmation = _body_component(document, "id_confirmation")["properties"]
    assert confirmation["id_last6"]["pattern"] == "^[0-9A-Za-z]{6}$"
    assert confirmation["id_last6"]["writeOnly"] is True
    agreement = _body_component(document, "agreement")["properties"]
    installment = _component(document, agreement["installments"]["items"]["$ref"])
    assert installment["properties"]["due_date"]["format"] == "date"
    assert installment["properties"]["amount"]["pattern"] == report["promise_amount"]["pattern"]
    assert agreement["signed_lat"]["type"] == "string"
    assert agreement["currency"]["pattern"] == "^[A-Z]{3}$"
    assert agreement["case_id"]["minimum"] == 1
    location = _component(document, report["location"]["allOf"][0]["$ref"])["properties"]
    assert (location["lat"]["minimum"], location["lat"]["maximum"]) == (-90, 90)


def _records() -> dict[str, dict]:
    """One well-formed record of each kind, as a phone sends them."""
    agreement_id = str(uuid.uuid4())
    agreement = {
        "agreement_id": agreement_id,
        "case_id": 3,
        "visit_id": 7,
        "currency": "CNY",
        "total_amount": "240.00",
        "installments": [
            {"due_date": "2026-12-24", "amount": "120.00"},
            {"due_date": "2027-01-24", "amount": "120.00"},
        ],
        "template_id": "repayment-plan",
        "template_version": 2,
        "borrower_signature_sha256": "ab" * 32,
        "agent_signature_sha256": "cd" * 32,
        "signed_at": "2026-11-24T02:10:00Z",
        "signed_lat": "31.201000",
        "signed_lon": "121.401000",
    }
    agreement["content_hash"] = agreement_content_hash(agreement)
    bodies = {
        "visit_report": {
            "arrived_at": "2026-11-24T01:30:00Z",
            "departed_at": "2026-11-24T01:50:00+08:00",
            "contacted_at": None,
            "outcome": "promise_to_pay",
            "promise_amount": "99.5",
            "promise_date": "2026-12-01",
            "notes": "借款人不在家。\tTab and\nnewline are fine.",
            "location": {"lat": 31.2, "lon": 121.4, "accuracy_m": 15.0},
            "third_party_present": True,
            "debt_discussed_with_third_party": False,
            "attachments": ["ef" * 32],
        },
        "id_confirmation": {
            "confirmation_kind": "agent_credential",
            "badge_number": "B-1",
            "borrower_acknowledged": True,
        },
        "agreement": agreement,
        "contact": {
            "channel": "phone_call",
            "occurred_at": "2026-11-24T01:00:00Z",
            "outcome": "no_answer",
            "duration_s": 0,
        },
    }
    records = {}
    for seq, (kind, body) in enumerate(bodies.items(), start=1):
        record_id = agreement_id if kind == "agreement" else str(uuid.uuid4())
        records[kind] = {
            "id": record_id,
            "kind": kind,
            "visit_id": 7,
            "device_seq": seq,
            "recorded_at": "2026-11-24T02:00:00Z",
            "body": body,
        }
    return records


def test_well_formed_records_of_every_kind_fit_the_document(document):
    records = _records()
    assert set(records) == set(BODY_SCHEMAS)
    items = validator(document, _records_items(document))
    for kind, record in records.items():
        errors = [error.message for error in items.iter_errors(record)]
        assert not errors, (kind, errors)
        # ... and push reads them too: the document says what the server loads.
        body = BODY_SCHEMAS[kind].load(record["body"])
        assert body


def test_a_body_of_another_kind_does_not_fit(document):
    items = validator(document, _records_items(document))
    records = _records()
    for kind, record in records.items():
        for other in set(records) - {kind}:
            wrong = {**record, "body": copy.deepcopy(records[other]["body"])}
            assert not items.is_valid(wrong), (kind, other)
    assert not items.is_valid({**records["contact"], "kind": "selfie"})
    agreement = records["agreement"]
    for spelling in ({"signed_lat": 31.2}, {"total_amount": "12.345"}, {"currency": "cny"}):
        assert not items.is_valid({**agreement, "body": {**agreement["body"], **spelling}})
    assert not items.is_valid({**records["contact"], "body": {}})


def _malformed() -> list[tuple[str, dict]]:
    records = _records()
    cases = [(name, change(records["visit_report"])) for name, change in MALFORMED_REPORTS]
    cases += [
        (name, change(records["id_confirmation"])) for name, change in MALFORMED_CONFIRMATIONS
    ]
    return cases


def test_malformed_records_of_the_golden_corpus_do_not_fit(document):
    items = validator(document, _records_items(document))
    fitting = {name for name, record in _malformed() if items.is_valid(record)}
    assert fitting == set(BEYOND_THE_DOCUMENT), (
        "malformed records the document admits, beyond the rules it cannot state: "
        f"{sorted(fitting - set(BEYOND_THE_DOCUMENT))}; listed but now refused: "
        f"{sorted(set(BEYOND_THE_DOCUMENT) - fitting)}"
    )


def test_push_answers_each_malformed_record_on_its_own(client, auth, world, document):
    """The document is for clients: push still reads each record by itself, and what the
    document refuses push answers `malformed` (it reads a few values more leniently)."""
    items = validator(document, _records_items(document))
    malformed = _malformed()
    headers = {**auth.headers("agent1"), "Content-Type": "application/json"}
    response = client.post(
        f"{API}/sync/push",
        json={"device_time": "2026-11-24T02:00:00Z", "records": [r for _, r in malformed]},
        headers=headers,
    )
    assert response.status_code == 200, response.json
    outcomes = response.json["outcomes"]
    assert len(outcomes) == len(malformed)
    answers = {
        name: outcome["reason"]
        for (name, record), outcome in zip(malformed, outcomes, strict=True)
        if not items.is_valid(record)
    }
    lenient = {name for name, reason in answers.items() if reason != "malformed"}
    assert lenient == set(SERVER_LENIENT), answers


def test_records_items_stay_a_free_form_field_for_loading():
    records = PushSchema().fields["records"]
    assert isinstance(records, fields.List)
    assert isinstance(records.inner, DeferredObject)
