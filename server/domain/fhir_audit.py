"""Exposure-ledger entries as HL7 FHIR R4 AuditEvent resources, for a bank's SIEM.

One entry becomes one AuditEvent (JSON, one per line in an export). The mapping, field by
field, is in docs/ledger.md ("The SIEM stream"). Ids and field names only, never a
borrower's values, exactly like the ledger itself. Pure: values in, values out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# Code systems: FHIR's own where one fits, Doorstep's (URNs) for its own vocabulary.
AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
DOORSTEP = "urn:doorstep"

# AuditEvent.outcome: 0 success, 4 minor failure (R4 AuditEventOutcome).
_SUCCESS, _MINOR_FAILURE = "0", "4"


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def _identifier(kind: str, value: object) -> dict[str, Any]:
    return {"identifier": {"system": f"{DOORSTEP}:{kind}", "value": str(value)}}


def audit_event(entry: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The AuditEvent for one ledger entry; `source` names this Doorstep deployment."""
    fields = json.loads(entry["fields"]) if isinstance(entry["fields"], str) else entry["fields"]
    served = entry["outcome"] == "served"
    agent: dict[str, Any] = {
        "type": {"coding": [_coding(f"{DOORSTEP}:agent-type", "recipient", "Data recipient")]},
        "role": [{"coding": [_coding(f"{DOORSTEP}:role", entry["role"])]}],
        "who": _identifier("user", entry["user_id"]),
        "requestor": True,
    }
    if entry.get("device_id"):
        # The phone the data went to; "1" is AuditEventAgentNetworkType "Machine Name".
        agent["network"] = {"address": entry["device_id"], "type": "1"}
    entities = [
        {
            "what": _identifier("borrower", entry["borrower_id"]),
            "type": _coding(ENTITY_TYPE, "1", "Person"),
            "role": _coding(f"{DOORSTEP}:entity-role", "data-subject", "Data subject"),
            "detail": [{"type": "field", "valueString": name} for name in fields],
        }
    ]
    for kind in ("case", "visit"):
        if entry.get(f"{kind}_id") is not None:
            entities.append(
                {
                    "what": _identifier(kind, entry[f"{kind}_id"]),
                    "type": _coding(ENTITY_TYPE, "2", "System Object"),
                    "role": _coding(f"{DOORSTEP}:entity-role", kind),
                }
            )
    entities.append(
        {
            "what": _identifier("request", entry["request_id"]),
            "type": _coding(ENTITY_TYPE, "2", "System Object"),
            "role": _coding(f"{DOORSTEP}:entity-role", "ledger-entry"),
            "detail": [
                {"type": "ledger_seq", "valueString": str(entry["seq"])},
                {"type": "ledger_hash", "valueString": entry["hash"]},
                {"type": "prev_hash", "valueString": entry["prev_hash"]},
            ],
        }
    )
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": f"doorstep-ledger-{entry['seq']}",
        "type": _coding(AUDIT_EVENT_TYPE, "rest", "RESTful Operation"),
        "subtype": [
            _coding(RESTFUL_INTERACTION, "read", "read"),
            _coding(f"{DOORSTEP}:endpoint", entry["endpoint"]),
        ],
        "action": "R",
        "recorded": entry["occurred_at"],
        "outcome": _SUCCESS if served else _MINOR_FAILURE,
        "purposeOfEvent": [
            {
                "coding": [_coding(f"{DOORSTEP}:purpose", entry["purpose"])],
                "text": entry["purpose"],
            }
        ],
        "agent": [agent],
        "source": {
            "site": source,
            "observer": {"display": f"Doorstep server {source}"},
            "type": [_coding(SOURCE_TYPE, "4", "Application Server")],
        },
        "entity": entities,
    }
    if not served:
        event["outcomeDesc"] = entry["outcome"]
    return event
