"""The WatermelonDB front door's translation: tables and columns, rows to native records,
native cards and outcomes to rows. Pure: values in, values out (docs/watermelondb.md).

WatermelonDB syncs flat rows of primitive columns (text, number, boolean), grouped by table
into `created`, `updated` and `deleted`, with dates as milliseconds since the epoch. The
native protocol (docs/sync.md) stays the reference: a pushed row becomes one native record
(`RECORD_TABLES`), a pulled visit is the native upsert with its card flattened into
columns (`visit_row`), and every answer the server gives a record is a row of
`record_outcomes` (`outcome_row`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

ColumnType = Literal["string", "number", "boolean"]
# The app schema version this server speaks; an app at another version is refused.
SCHEMA_VERSION = 1
VISITS = "visits"
OUTCOMES = "record_outcomes"
# Columns the library adds to every row it sends; never part of a record.
LOCAL_COLUMNS = frozenset({"_status", "_changed"})
# WatermelonDB's own advice for ids the server sends: letters, digits and `-_.` only.
SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    meaning: str
    # The native body key this column fills (record tables), when it differs from `name`.
    body_key: str | None = None
    # number columns holding a moment: milliseconds since the epoch, ISO 8601 on the wire.
    moment: bool = False
    # text holding a JSON list (attachments, instalments).
    json_list: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    owner: Literal["server", "phone"]
    kind: str | None  # the native record kind of a phone table
    columns: tuple[Column, ...]


def _c(name: str, type_: ColumnType, meaning: str, **kw: Any) -> Column:
    return Column(name, type_, meaning, **kw)


_ENVELOPE = (
    _c("visit_id", "string", "the visit it belongs to: the id of a `visits` row"),
    _c("device_seq", "number", "1, 2, 3 … per phone, never reused (ordering of the day)"),
    _c("recorded_at", "number", "when it was recorded, phone clock, ms", moment=True),
)
_BLOBS = _c(
    "attachments",
    "string",
    "JSON list of SHA-256 hex of blobs uploaded first (`PUT /attachments/<sha256>`)",
    json_list=True,
)

TABLES: tuple[Table, ...] = (
    Table(
        VISITS,
        "server",
        None,
        (
            _c("case_id", "number", "the case"),
            _c("case_external_id", "string", "the lender's case reference"),
            _c("visit_date", "string", "YYYY-MM-DD"),
            _c("window_start", "string", "HH:MM, the window the borrower was told, or null"),
            _c("window_end", "string", "HH:MM or null"),
            _c("route_order", "number", "position in the day's route, or null"),
            _c("purpose", "string", "home_visit, …"),
            _c("status", "string", "planned, completed, attempted, missed, cancelled"),
            _c("notice_kind", "string", "appointment, letter, … or null"),
            _c("notice_given_at", "string", "ISO 8601 or null"),
            _c("version", "number", "the visit's version"),
            _c("visit_updated_at", "string", "ISO 8601, server clock, of the visit's last change"),
            _c("card_available_from", "number", "ms; the card arrives from then", moment=True),
            _c("borrower_id", "number", "the borrower (null: no card yet)"),
            _c("card_expires_at", "number", "ms; delete the card columns then", moment=True),
            _c("display_name", "string", "card: name as the policy allows it"),
            _c("home_address", "string", "card"),
            _c("home_lat", "number", "card: home position"),
            _c("home_lon", "number", "card: home position"),
            _c("phone_masked", "string", "card: JSON list of masked numbers", json_list=True),
            _c("time_zone", "string", "card"),
            _c("product", "string", "card"),
            _c("overdue_amount", "string", "card: decimal text"),
            _c("currency", "string", "card"),
            _c("days_past_due", "number", "card"),
            _c("last_payment_date", "string", "card"),
            _c("last_payment_amount", "string", "card: decimal text"),
            _c("flag_do_not_visit", "boolean", "card: case flag (null: not disclosed)"),
            _c("flag_hardship", "boolean", "card: case flag"),
            _c("flag_legal_hold", "boolean", "card: case flag"),
            _c("flag_dispute", "boolean", "card: case flag"),
            _c("flag_deceased", "boolean", "card: case flag"),
            _c("dispatcher_notes", "string", "card"),
            _c("repayment_status", "string", "card: JSON object, the most pressing promise"),
        ),
    ),
    Table(
        OUTCOMES,
        "server",
        None,
        (
            _c("record_id", "string", "the record answered (same as this row's id)"),
            _c(
                "record_kind",
                "string",
                "visit_report, … (null: refused, of no known kind)",
            ),
            _c("status", "string", "accepted, flagged, duplicate, rejected"),
            _c("reason", "string", "why rejected: malformed, tampered, not_yours, id_reused"),
            _c("message", "string", "for the agent"),
            _c("flags", "string", "JSON list of {code, message, details} the agent is told"),
            _c("content_hash", "string", "agreements: the hash the server computed"),
            _c("original_status", "string", "a duplicate: the first answer's status"),
            _c("receipt", "string", "agreements: JSON signed receipt"),
            _c("id_verification", "string", "borrower_identity: match, mismatch, …"),
        ),
    ),
    Table(
        "visit_reports",
        "phone",
        "visit_report",
        (
            *_ENVELOPE,
            _c("arrived_at", "number", "ms", moment=True),
            _c("departed_at", "number", "ms or null", moment=True),
            _c("contacted_at", "number", "ms or null", moment=True),
            _c("outcome", "string", "met_borrower, not_home, …"),
            _c("promise_amount", "string", "decimal text or null"),
            _c("promise_date", "string", "YYYY-MM-DD or null"),
            _c("notes", "string", "≤ 4000 characters"),
            _c("location_lat", "number", "GPS fix"),
            _c("location_lon", "number", "GPS fix"),
            _c("location_accuracy_m", "number", "GPS fix"),
            _c("third_party_present", "boolean", ""),
            _c("debt_discussed_with_third_party", "boolean", ""),
            _BLOBS,
        ),
    ),
    Table(
        "id_confirmations",
        "phone",
        "id_confirmation",
        (
            *_ENVELOPE,
            _c("confirmation_kind", "string", "agent_credential or borrower_identity"),
            _c("badge_number", "string", "agent_credential: the badge shown"),
            _c("borrower_acknowledged", "boolean", "agent_credential"),
            _c(
                "id_last6",
                "string",
                "borrower_identity: typed; cleared by the server once answered",
            ),
            _BLOBS,
        ),
    ),
    Table(
        "agreements",
        "phone",
        "agreement",
        (
            *_ENVELOPE,
            _c("case_id", "number", "the visit's case"),
            _c("currency", "string", "ISO 4217"),
            _c("total_amount", "string", "decimal text"),
            _c("installments", "string", "JSON list of {due_date, amount}", json_list=True),
            _c("template_id", "string", ""),
            _c("template_version", "number", ""),
            _c("borrower_signature_sha256", "string", "blob uploaded first"),
            _c("agent_signature_sha256", "string", "blob uploaded first"),
            _c("signed_at", "string", "ISO 8601 with offset, as hashed"),
            _c("signed_lat", "string", "decimal text, 6 fraction digits"),
            _c("signed_lon", "string", "decimal text, 6 fraction digits"),
            _c("content_hash", "string", "canonical form hash"),
        ),
    ),
    Table(
        "contact_attempts",
        "phone",
        "contact",
        (
            *_ENVELOPE,
            _c("channel", "string", "phone_call or sms"),
            _c("direction", "string", "outbound (default) or inbound"),
            _c("occurred_at", "number", "ms", moment=True),
            _c("outcome", "string", "from the channel's vocabulary"),
            _c("duration_s", "number", "0–86400"),
            _c("notes", "string", "≤ 2000 characters"),
            _c("external_ref", "string", "the dialer's id of the call"),
            _c("promise_amount", "string", "outcome promise only"),
            _c("promise_date", "string", "outcome promise only"),
        ),
    ),
)
TABLES_BY_NAME: Mapping[str, Table] = {table.name: table for table in TABLES}
RECORD_TABLES: Mapping[str, Table] = {t.name: t for t in TABLES if t.owner == "phone"}
TABLE_OF_KIND: Mapping[str, str] = {t.kind: t.name for t in TABLES if t.kind}
_ENVELOPE_NAMES = frozenset(c.name for c in _ENVELOPE)
_LOCATION = {"location_lat": "lat", "location_lon": "lon", "location_accuracy_m": "accuracy_m"}


def empty_changes() -> dict[str, dict[str, list]]:
    """A change set naming every table, each with nothing in it."""
    return {t.name: {"created": [], "updated": [], "deleted": []} for t in TABLES}


def ms_to_iso(value: Any) -> Any:
    """A number of milliseconds as ISO 8601 UTC; anything else as sent (validation names
    it). Out-of-range numbers are left as they are, for the same reason."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    try:
        moment = datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return value
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_to_ms(value: datetime | str | None) -> int | None:
    """An aware moment (or its ISO text) as milliseconds since the epoch."""
    if value is None:
        return None
    moment = (
        datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    )
    return round(moment.timestamp() * 1000)


def _visit_id(value: Any) -> Any:
    """`visits` row ids are the visit number as text; the native record wants the number."""
    if isinstance(value, str) and value.isdigit() and len(value) <= 18:
        return int(value)
    return value


def _json_list(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value  # not JSON: the body schema names the field


def _absent(value: Any) -> bool:
    """WatermelonDB fills a column it has no value for with null (optional columns) or ''."""
    return value is None or value == ""


def native_record(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """One pushed row as a native record (docs/sync.md). Unknown columns stay in the body
    so that validation refuses the record naming them."""
    columns = {c.name: c for c in table.columns}
    body: dict[str, Any] = {}
    location: dict[str, Any] = {}
    for name, value in row.items():
        if name in LOCAL_COLUMNS or name == "id" or name in _ENVELOPE_NAMES:
            continue
        if _absent(value):
            continue
        column = columns.get(name)
        if column is not None and column.moment:
            value = ms_to_iso(value)
        elif column is not None and column.json_list:
            value = _json_list(value)
        if name in _LOCATION and table.kind == "visit_report":
            location[_LOCATION[name]] = value
            continue
        body[name] = value
    if location:
        body["location"] = location
    if table.kind == "agreement":
        body["agreement_id"] = row.get("id")
        body["visit_id"] = _visit_id(row.get("visit_id"))
    seq = row.get("device_seq")
    return {
        "id": row.get("id"),
        "kind": table.kind,
        "visit_id": _visit_id(row.get("visit_id")),
        "device_seq": 0 if _absent(seq) else seq,
        "recorded_at": ms_to_iso(row.get("recorded_at")),
        "body": body,
    }


_CASE_FLAGS = ("do_not_visit", "hardship", "legal_hold", "dispute", "deceased")
_CARD_TEXT = (
    "display_name",
    "home_address",
    "time_zone",
    "product",
    "overdue_amount",
    "currency",
    "days_past_due",
    "last_payment_date",
    "last_payment_amount",
    "dispatcher_notes",
)
_VISIT_PLAIN = (
    "case_id",
    "case_external_id",
    "visit_date",
    "window_start",
    "window_end",
    "route_order",
    "purpose",
    "status",
    "notice_kind",
    "notice_given_at",
    "version",
)


def visit_row(view: Mapping[str, Any]) -> dict[str, Any]:
    """A native upsert (visit with its card as the policy allows it) as one `visits` row.
    A card field the policy withholds is absent, so WatermelonDB leaves its column null."""
    row: dict[str, Any] = {"id": str(view["id"])}
    row.update({name: view.get(name) for name in _VISIT_PLAIN})
    # `updated_at` is WatermelonDB's own column (a number it sets); the visit's is renamed.
    row["visit_updated_at"] = view.get("updated_at")
    row["card_available_from"] = iso_to_ms(view.get("card_available_from"))
    card = view.get("borrower")
    if not card:
        return row
    row["borrower_id"] = card["borrower_id"]
    row["card_expires_at"] = iso_to_ms(card.get("expires_at"))
    row.update({name: card[name] for name in _CARD_TEXT if name in card})
    if "home_geo" in card:
        geo = card["home_geo"] or {}
        row["home_lat"], row["home_lon"] = geo.get("lat"), geo.get("lon")
    if "phone_masked" in card:
        row["phone_masked"] = json.dumps(card["phone_masked"])
    if "case_flags" in card:
        flags = card["case_flags"] or {}
        row.update({f"flag_{name}": flags.get(name) for name in _CASE_FLAGS})
    if "repayment_status" in card:
        status = card["repayment_status"]
        row["repayment_status"] = json.dumps(status, default=str) if status else None
    return row


def outcome_row(outcome: Mapping[str, Any], kind: str | None) -> dict[str, Any]:
    """A native outcome, as the agent may see it, as one `record_outcomes` row."""
    receipt = outcome.get("receipt")
    return {
        "id": outcome["record_id"],
        "record_id": outcome["record_id"],
        "record_kind": kind,
        "status": outcome["status"],
        "reason": outcome.get("reason"),
        "message": outcome.get("message"),
        "flags": json.dumps(outcome["flags"]) if outcome.get("flags") else None,
        "content_hash": outcome.get("content_hash"),
        "original_status": outcome.get("original_status"),
        "receipt": json.dumps(receipt, sort_keys=True) if receipt else None,
        "id_verification": outcome.get("id_verification"),
    }


def rejection_row(rejection: Mapping[str, Any]) -> dict[str, Any]:
    """A record the server refused for good (logged at push) as a `record_outcomes` row."""
    return {
        "id": rejection["record_id"],
        "record_id": rejection["record_id"],
        "record_kind": rejection.get("kind"),
        "status": "rejected",
        "reason": rejection["reason"],
        "message": rejection["message"],
        "flags": None,
        "content_hash": None,
        "original_status": None,
        "receipt": None,
        "id_verification": None,
    }


def next_stamp(now_ms: int, last: int | None) -> int:
    """The `timestamp` of a pull: the server clock in ms, after every earlier one of the
    device, so two pulls never share one."""
    return now_ms if last is None or now_ms > last else last + 1


_JSON_TYPES = {"string": "string", "number": "number", "boolean": "boolean"}


def row_json_schema(table: Table) -> dict[str, Any]:
    """A row of `table` as an OpenAPI 3.0 schema, for the API document: the id, WatermelonDB's own
    bookkeeping columns, and the table's columns, each nullable; nothing else."""
    properties: dict[str, Any] = {
        "id": {"type": "string", "minLength": 1, "maxLength": 64},
        "_status": {"type": "string"},
        "_changed": {"type": "string"},
    }
    for column in table.columns:
        properties[column.name] = {
            "type": _JSON_TYPES[column.type],
            "nullable": True,
            "description": column.meaning,
        }
    return {"properties": properties, "required": ["id"], "additionalProperties": False}


def app_schema_js() -> str:
    """The `appSchema` a WatermelonDB app pastes (docs/watermelondb.md shows this text)."""
    lines = ["appSchema({", f"  version: {SCHEMA_VERSION},", "  tables: ["]
    for table in TABLES:
        lines.append("    tableSchema({")
        lines.append(f"      name: '{table.name}',")
        lines.append("      columns: [")
        for column in table.columns:
            indexed = ", isIndexed: true" if column.name in ("visit_id", "record_id") else ""
            lines.append(
                f"        {{ name: '{column.name}', type: '{column.type}', "
                f"isOptional: true{indexed} }},"
            )
        lines.append("      ],")
        lines.append("    }),")
    lines.append("  ],")
    lines.append("})")
    return "\n".join(lines)
