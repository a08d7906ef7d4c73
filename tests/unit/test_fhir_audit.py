"""Ledger entries as FHIR R4 AuditEvents: every element R4 requires, in its R4 shape."""

from __future__ import annotations

import json
import re

import pytest

from server.domain.fhir_audit import audit_event

ENTRY = {
    "seq": 42,
    "occurred_at": "2026-11-24T02:00:00.123456Z",
    "user_id": 7,
    "role": "agent",
    "device_id": "phone-agent1",
    "borrower_id": 1001,
    "case_id": 55,
    "visit_id": 9,
    "fields": '["display_name", "home_geo", "overdue_amount"]',
    "purpose": "collection_visit",
    "endpoint": "GET /api/v1/me/day",
    "request_id": "req-0001",
    "outcome": "served",
    "prev_hash": "a" * 64,
    "hash": "b" * 64,
}

# R4 instant: a date-time to the second at least, with a zone.
INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def _coding(value) -> None:
    assert isinstance(value, dict) and set(value) <= {"system", "code", "display"}
    assert value["system"] and value["code"]


def check_r4_audit_event(event: dict) -> None:
    """The AuditEvent R4 cardinalities and types a receiving FHIR server enforces."""
    assert event["resourceType"] == "AuditEvent"
    _coding(event["type"])  # type 1..1 Coding
    for subtype in event.get("subtype", []):
        _coding(subtype)
    assert event.get("action") in (None, "C", "R", "U", "D", "E")
    assert INSTANT.fullmatch(event["recorded"])  # recorded 1..1 instant
    assert event.get("outcome") in (None, "0", "4", "8", "12")
    for purpose in event.get("purposeOfEvent", []):
        for coding in purpose["coding"]:
            _coding(coding)
    assert event["agent"], "agent 1..*"
    for agent in event["agent"]:
        assert isinstance(agent["requestor"], bool)  # requestor 1..1
        assert "identifier" in agent["who"] or "reference" in agent["who"]
        for role in agent.get("role", []):
            for coding in role["coding"]:
                _coding(coding)
        if "network" in agent:
            assert agent["network"]["type"] in ("1", "2", "3", "4", "5")
    source = event["source"]  # source 1..1, its observer 1..1 Reference
    assert source["observer"] and isinstance(source["observer"], dict)
    for kind in source.get("type", []):
        _coding(kind)
    for entity in event.get("entity", []):
        assert "identifier" in entity["what"] or "reference" in entity["what"]
        _coding(entity["type"])
        _coding(entity["role"])
        for detail in entity.get("detail", []):
            # detail.type 1..1 string, value[x] 1..1 string or base64Binary
            assert isinstance(detail["type"], str)
            assert isinstance(detail.get("valueString", detail.get("valueBase64Binary")), str)
    json.dumps(event)  # plain JSON, nothing a SIEM cannot parse


def test_an_entry_maps_to_an_r4_audit_event():
    event = audit_event(ENTRY, "https://doorstep.example")
    check_r4_audit_event(event)
    assert event["id"] == "doorstep-ledger-42"
    assert event["recorded"] == ENTRY["occurred_at"] and event["outcome"] == "0"
    assert event["action"] == "R"
    assert event["type"]["code"] == "rest"
    assert {"system": "urn:doorstep:endpoint", "code": "GET /api/v1/me/day"} in event["subtype"]
    [agent] = event["agent"]
    assert agent["who"]["identifier"] == {"system": "urn:doorstep:user", "value": "7"}
    assert agent["role"][0]["coding"][0]["code"] == "agent"
    assert agent["network"] == {"address": "phone-agent1", "type": "1"}
    assert event["purposeOfEvent"][0]["text"] == "collection_visit"
    borrower, case, visit, request = event["entity"]
    assert borrower["what"]["identifier"]["value"] == "1001"
    assert [d["valueString"] for d in borrower["detail"]] == [
        "display_name",
        "home_geo",
        "overdue_amount",
    ]
    assert case["what"]["identifier"]["value"] == "55"
    assert visit["what"]["identifier"]["value"] == "9"
    assert {"type": "ledger_hash", "valueString": "b" * 64} in request["detail"]
    assert event["source"]["site"] == "https://doorstep.example"


@pytest.mark.parametrize(
    "changes",
    [{"device_id": None, "case_id": None, "visit_id": None}, {"outcome": "refused"}],
    ids=["office-user-without-visit", "not-served"],
)
def test_optional_parts_are_left_out_and_other_outcomes_say_so(changes):
    event = audit_event({**ENTRY, **changes}, "site")
    check_r4_audit_event(event)
    if changes.get("device_id", "x") is None:
        assert "network" not in event["agent"][0]
        assert len(event["entity"]) == 2
    else:
        assert event["outcome"] == "4" and event["outcomeDesc"] == "refused"


def test_no_borrower_value_leaves_only_ids_and_field_names():
    text = json.dumps(audit_event(ENTRY, "site"))
    for value in ("Borrower", "3101", "138"):
        assert value not in text
