"""What each record the phone queues looks like: bodies built from the agent's input.

Pure functions, values in and values out: the field client stores what they return.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from ..canonical import agreement_content_hash, canonical_amount

TYPED_ID_FIELD = "id_last6"
VISIT_REPORT_FIELDS = frozenset(
    {
        "arrived_at",
        "departed_at",
        "contacted_at",
        "outcome",
        "promise_amount",
        "promise_date",
        "notes",
        "location",
        "third_party_present",
        "debt_discussed_with_third_party",
        "attachments",
    }
)


def visit_report_body(
    arrived_at: datetime | str, outcome: str, fields: Mapping[str, Any]
) -> dict[str, Any]:
    """A visit report; `fields` are the other body fields of docs/sync.md."""
    unknown = set(fields) - VISIT_REPORT_FIELDS
    if unknown:
        raise TypeError(f"unknown visit_report fields: {sorted(unknown)}")
    return wire({"arrived_at": arrived_at, "outcome": outcome, **fields})


def borrower_identity_body(last6: str) -> dict[str, Any]:
    """The last 6 ID characters the agent typed."""
    if not (len(last6) == 6 and last6.isascii() and last6.isalnum()):
        raise ValueError("type exactly the last 6 letters or digits of the ID document")
    return {"confirmation_kind": "borrower_identity", TYPED_ID_FIELD: last6}


def agent_credential_body(badge_number: str, borrower_acknowledged: bool) -> dict[str, Any]:
    """That the agent showed its badge."""
    return {
        "confirmation_kind": "agent_credential",
        "badge_number": badge_number,
        "borrower_acknowledged": borrower_acknowledged,
    }


def agreement_body(
    *,
    agreement_id: str,
    visit_id: int,
    case_id: int,
    installments: Sequence[Mapping[str, Any] | tuple[date | str, Decimal | str | int]],
    currency: str,
    template_id: str,
    template_version: int,
    borrower_signature_sha256: str,
    agent_signature_sha256: str,
    signed_at: datetime,
    lat: float | str,
    lon: float | str,
) -> dict[str, Any]:
    """A signed agreement in canonical form, with its content hash."""
    plan = [_installment(item) for item in installments]
    total = sum((Decimal(item["amount"]) for item in plan), Decimal(0))
    body: dict[str, Any] = {
        "agreement_id": agreement_id,
        "case_id": case_id,
        "visit_id": visit_id,
        "currency": currency,
        "total_amount": canonical_amount("total_amount", total),
        "installments": plan,
        "template_id": template_id,
        "template_version": template_version,
        "borrower_signature_sha256": borrower_signature_sha256,
        "agent_signature_sha256": agent_signature_sha256,
        "signed_at": iso(signed_at),
        # Six fraction digits as text, so the server rounds nothing (canonical form).
        "signed_lat": f"{Decimal(str(lat)):.6f}",
        "signed_lon": f"{Decimal(str(lon)):.6f}",
    }
    body["content_hash"] = agreement_content_hash(body)
    return body


def blob_refs(kind: str, body: Mapping[str, Any]) -> set[str]:
    """The SHA-256 of every blob a record refers to."""
    refs = set(body.get("attachments") or ())
    if kind == "agreement":
        refs |= {body["borrower_signature_sha256"], body["agent_signature_sha256"]}
    return refs


def wire(value: Any) -> Any:
    """Body values as JSON: aware datetimes in UTC, dates ISO, decimals as text."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Mapping):
        return {key: wire(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple):
        return [wire(item) for item in value]
    return value


def iso(moment: datetime) -> str:
    """An aware datetime as UTC ISO 8601 with a Z."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetimes must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _installment(item: Mapping[str, Any] | tuple[Any, Any]) -> dict[str, str]:
    due, amount = (item["due_date"], item["amount"]) if isinstance(item, Mapping) else item
    due_text = due.isoformat() if isinstance(due, date) else str(due)
    return {"due_date": due_text, "amount": canonical_amount("installments.amount", amount)}
