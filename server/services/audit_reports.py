"""The privacy officer's reports: disclosures per borrower, history per agent or device,
records of processing. Ids, field names, roles, times and purposes; never borrower values."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from server.clock import parse_iso, to_iso
from server.domain.disclosure import FACT_KINDS
from server.domain.retention import RetentionRules
from server.errors import InvalidInput, NotFound
from server.runtime import Runtime
from server.services import audit
from server.storage import audit_queries

HISTORY_DEFAULT_DAYS = 7
MAX_RECIPIENTS = 1000


def period(
    rt: Runtime, since: datetime | None, until: datetime | None, default_days: float
) -> tuple[datetime, datetime]:
    """[since, until): until defaults to now (inclusive: the store keeps microseconds), since
    to `default_days` before until."""
    until = until or rt.clock() + timedelta(microseconds=1)
    since = since or until - timedelta(days=default_days)
    if since >= until:
        raise InvalidInput("since must be before until", field="since")
    return since, until


def _page(items: list[dict[str, Any]], limit: int) -> int | None:
    return items[-1]["seq"] if len(items) == limit else None


# -- 1. borrower disclosure report ----------------------------------------------------------


def purge_status(row: dict[str, Any]) -> str | None:
    """What became of the card the entry put on a device: held, purge_pending, purged."""
    if row["device_id"] is None:
        return None
    if not row["card_tracked"]:
        return "not_tracked"  # served to a device without a tracked card (e.g. the day view)
    if row["purge_confirmed_at"]:
        return "purged"
    return "purge_pending" if row["purge_ordered_at"] else "held"


def borrower_disclosures(
    db: sqlite_utils.Database, rt: Runtime, borrower_id: int, args: dict[str, Any]
) -> dict[str, Any]:
    """Every disclosure of one borrower's data in the period (HIPAA accounting model)."""
    retention = RetentionRules.from_settings(rt.settings).ledger_days
    since, until = period(rt, args.get("since"), args.get("until"), retention)
    if not audit_queries.borrower_known(db, borrower_id):
        raise NotFound("no such borrower in the store or the ledger")
    lo, hi = to_iso(since), to_iso(until)
    rows = audit_queries.borrower_disclosures(db, borrower_id, lo, hi, args["after"], args["limit"])
    for row in rows:
        row["fields_"] = json.loads(row.pop("fields"))
        row["purge_status"] = purge_status(row)
    summary = audit_queries.borrower_summary(db, borrower_id, lo, hi)
    summary["fields_"] = summary.pop("fields")
    return {
        "borrower_id": borrower_id,
        "controller": rt.settings["CONTROLLER_NAME"],
        "generated_at": rt.clock(),
        "since": since,
        "until": until,
        "retention_days": retention,
        "summary": summary,
        "recipients": audit_queries.borrower_recipients(db, borrower_id, lo, hi, MAX_RECIPIENTS),
        "items": rows,
        "next_after": _page(rows, args["limit"]),
    }


DISCLOSURE_CSV_COLUMNS = (
    "seq",
    "occurred_at",
    "user_id",
    "username",
    "role",
    "device_id",
    "case_id",
    "visit_id",
    "fields",
    "purpose",
    "endpoint",
    "request_id",
    "outcome",
    "purge_status",
    "purge_reason",
    "purge_ordered_at",
    "purge_confirmed_at",
)


# -- 2. per-agent and per-device history ------------------------------------------------------


def _zone(rt: Runtime, name: str | None) -> ZoneInfo:
    return ZoneInfo(name or rt.settings["DEFAULT_TIME_ZONE"])


def agent_history(
    db: sqlite_utils.Database, rt: Runtime, user_id: int, args: dict[str, Any]
) -> dict[str, Any]:
    """Everything a user received, day by day in their time zone, with the justifying visits."""
    exists, time_zone = audit_queries.user_time_zone(db, user_id)
    if not exists:
        raise NotFound("no such user")
    return _history(db, rt, "user", user_id, _zone(rt, time_zone), args)


def device_history(
    db: sqlite_utils.Database, rt: Runtime, device_id: str, args: dict[str, Any]
) -> dict[str, Any]:
    """Everything a device received, day by day in its owner's time zone."""
    owner = audit_queries.device_owner(db, device_id)
    if owner is None:
        raise NotFound("no such device")
    return _history(db, rt, "device", device_id, _zone(rt, owner["time_zone"]), args)


def _history(
    db: sqlite_utils.Database,
    rt: Runtime,
    recipient: str,
    value: int | str,
    zone: ZoneInfo,
    args: dict[str, Any],
) -> dict[str, Any]:
    since, until = period(rt, args.get("since"), args.get("until"), HISTORY_DEFAULT_DAYS)
    rows = audit_queries.recipient_entries(
        db, recipient, value, to_iso(since), to_iso(until), args["after"], args["limit"]
    )
    return {
        "user_id": value if recipient == "user" else None,
        "device_id": value if recipient == "device" else None,
        "time_zone": zone.key,
        "since": since,
        "until": until,
        "days": group_by_day(rows, zone),
        "next_after": _page(rows, args["limit"]),
    }


def group_by_day(rows: Iterable[dict[str, Any]], zone: ZoneInfo) -> list[dict[str, Any]]:
    """Entries per local day, each day with the visit versions that were in force."""
    days: dict[str, dict[str, Any]] = {}
    for row in rows:
        day = parse_iso(row["occurred_at"]).astimezone(zone).date().isoformat()
        bucket = days.setdefault(day, {"date": day, "entries": [], "visits": {}})
        bucket["entries"].append(
            {
                "seq": row["seq"],
                "occurred_at": row["occurred_at"],
                "user_id": row["user_id"],
                "role": row["role"],
                "device_id": row["device_id"],
                "borrower_id": row["borrower_id"],
                "case_id": row["case_id"],
                "visit_id": row["visit_id"],
                "fields_": json.loads(row["fields"]),
                "purpose": row["purpose"],
                "endpoint": row["endpoint"],
            }
        )
        if row["visit_id"] is None:
            continue
        key = (row["visit_id"], row["visit_version"], row["user_id"])
        bucket["visits"].setdefault(
            key,
            {
                "visit_id": row["visit_id"],
                "case_id": row["case_id"],
                "version": row["visit_version"],
                "assigned_agent_id": row["assigned_agent_id"],
                "visit_date": row["visit_date"],
                "status": row["visit_status"],
                "recipient_id": row["user_id"],
                "assigned_to_recipient": row["visit_version"] is not None
                and row["assigned_agent_id"] == row["user_id"]
                and row["visit_status"] != "cancelled",
            },
        )
    return [{**d, "visits": list(d["visits"].values())} for d in days.values()]


# -- 4. staff audit log export -----------------------------------------------------------------

STAFF_CSV_COLUMNS = (
    "id",
    "occurred_at",
    "user_id",
    "username",
    "role",
    "action",
    "target_type",
    "target_id",
    "details",
    "request_id",
    "address",
)


def staff_actions(db: sqlite_utils.Database, args: dict[str, Any]) -> dict[str, Any]:
    """The same filtered page as the JSON staff log."""
    args = dict(args)
    after, limit = args.pop("after"), args.pop("limit")
    return audit.staff_actions(db, args, after, limit)


# -- 5. records of processing (GDPR art. 30) ---------------------------------------------------

NEVER_DISCLOSED = (
    "national_id (held to match identity, never served)",
    "full phone numbers (served masked as phone_masked only)",
    "family and third-party contacts (held, never served)",
)

PURPOSES = (
    {
        "name": "home_visit",
        "description": "Carrying out a planned field visit to a borrower with an overdue case: "
        "the assigned agent receives a minimized card for the visit's day only.",
        "visit_purposes": ["home_visit", "follow_up", "agreement_signing", "workplace_visit"],
        "roles": ["agent"],
    },
    {
        "name": "dispatch_planning",
        "description": "Planning and assigning visits, routes and agents.",
        "visit_purposes": [],
        "roles": ["dispatcher"],
    },
    {
        "name": "compliance_evidence",
        "description": "Keeping visit reports, identity confirmations, agreements and "
        "compliance flags as evidence that collection followed the rules; telling the agent "
        "the outcome of its own records (ID check, flags).",
        "visit_purposes": [],
        "roles": ["dispatcher", "agent"],
    },
    {
        "name": "visit_register",
        "description": "Supervising field visits: the register of every visit attempt's time, "
        "place (reported position, distance from the home) and method, its outcome, identity "
        "and badge checks and flags.",
        "visit_purposes": [],
        "roles": ["dispatcher"],
    },
    {
        "name": "audit",
        "description": "Accounting for every disclosure (exposure ledger) and staff action, "
        "detecting misuse; field names only, never values.",
        "visit_purposes": [],
        "roles": ["privacy_officer"],
    },
    {
        "name": "legal_escalation",
        "description": "Handing a case's evidence (field records, photos, agreements, the "
        "borrower's disclosures and the ledger proof) to a court or an auditor as a signed "
        "BagIt evidence pack; each pack is ledgered and puts the case under legal hold.",
        "visit_purposes": [],
        "roles": ["privacy_officer"],
    },
)

SECURITY_MEASURES = (
    "Field minimization: each role receives only the fields its purpose needs "
    "(disclosure policy); agents only for an assigned visit, for that visit's day.",
    "Exposure ledger: one append-only entry per borrower per response that carries any "
    "borrower fact (cards, field records, routes, visit notes), hash-chained (SHA-256) so "
    "edits, insertions and deletions are detectable.",
    "Ed25519 signatures on ledger checkpoints, agreement receipts and access tokens.",
    "Passwords hashed with Argon2id; login attempts rate limited.",
    "Short-lived access tokens bound to registered devices; revocation with remote wipe.",
    "Device card purge orders with acknowledgement; overdue purges block new cards.",
    "Retention purges leave signed certificates of what was removed, never the values.",
)


def records_of_processing(db: sqlite_utils.Database, rt: Runtime) -> dict[str, Any]:
    """The art. 30 record, generated from the configuration in force."""
    rules = RetentionRules.from_settings(rt.settings)
    return {
        "controller": rt.settings["CONTROLLER_NAME"],
        "generated_at": rt.clock(),
        "purposes": list(PURPOSES),
        "data_subjects": [
            {"category": "borrowers: identity and contact", "data": _held(db, "borrowers")},
            {"category": "borrowers: loan and collection status", "data": _held(db, "cases")},
            {
                "category": "borrowers: field records (compliance evidence)",
                "data": [
                    "visit reports with arrival/departure times and location",
                    "identity and agent-credential confirmations",
                    "payment agreements with signatures",
                    "attachments (signatures, photos)",
                    "compliance flags",
                ],
            },
            {
                "category": "borrowers: collection contacts (the contact log)",
                "data": [
                    "channel, direction, time, outcome and duration of each letter, notice, "
                    "call, SMS, e-mail and home visit",
                    "who made the contact (a user or a dialer seat), the visit it belongs to",
                    "free-text notes",
                    "compliance flags",
                ],
            },
            {
                "category": "borrowers: payments and promises to pay",
                "data": [
                    "payments imported from the bank (amount, currency, time, channel)",
                    "promises to pay (amount, due day, who recorded them)",
                ],
            },
            {
                "category": "third parties named by borrowers",
                "data": ["contacts (name, relation, phone)"],
            },
            {
                "category": "staff (agents, dispatchers, privacy officers, admins)",
                "data": _held(db, "users")
                + _held(db, "agents")
                + ["device ids", "login times and network addresses", "staff audit log"],
            },
        ],
        "disclosable_fields": sorted(FACT_KINDS),
        "never_disclosed": list(NEVER_DISCLOSED),
        "recipients": [
            {"role": role, "fields_by_purpose": purposes}
            for role, purposes in rt.disclosure.as_dict().items()
        ],
        "retention": [
            {
                "kind": "exposure_ledger",
                "days": rules.ledger_days,
                "clock": "from the entry's time",
                "basis": "CNIL 2021 recommendation on logging",
            },
            {
                "kind": "compliance_evidence",
                "days": rules.evidence_days,
                "clock": "after the case's last collection activity; suspended by a legal hold",
                "basis": "Reg F 12 CFR 1006.100; PIPL art. 56",
            },
            {
                "kind": "borrower_personal_data",
                "days": rules.personal_days,
                "clock": "after the case closes; suspended by a legal hold",
                "basis": "PIPL art. 19; GDPR art. 5(1)(e)",
            },
            {
                "kind": "attachments",
                "days": rules.evidence_days,
                "clock": "kept while a stored record references them (the evidence clock, "
                "suspended by a legal hold), removed with the last one; never referenced: "
                f"{rules.unreferenced_blob_s // 3600} hours after upload",
                "basis": "Reg F 12 CFR 1006.100; PIPL art. 56; GDPR art. 5(1)(c)",
            },
            {
                "kind": "contact_log",
                "days": rules.evidence_days,
                "clock": "with the case's compliance evidence (after its last collection "
                "activity; suspended by a legal hold); notes emptied at the personal-data clock",
                "basis": "Reg F 12 CFR 1006.100; PIPL art. 56",
            },
            {
                "kind": "payments_and_promises",
                "days": rules.evidence_days,
                "clock": "with the case's compliance evidence: what was promised and what was "
                "paid show whether a promise or an instalment was kept",
                "basis": "Reg F 12 CFR 1006.100; PIPL art. 56",
            },
            {
                "kind": "free_text_notes",
                "days": rules.personal_days,
                "clock": "the borrower's personal-data clock; in stored records replaced by "
                "a marker, the record kept",
                "basis": "PIPL art. 19; GDPR art. 5(1)(e)",
            },
        ],
        "compliance_profile": rt.compliance.to_dict(),
        "security_measures": list(SECURITY_MEASURES),
    }


_BOOKKEEPING = {
    "id",
    "user_id",
    "borrower_id",
    "created_at",
    "updated_at",
    "content_hash",
    "version",
    "password_hash",
}


def _held(db: sqlite_utils.Database, table: str) -> list[str]:
    return [c for c in audit_queries.table_columns(db, table) if c not in _BOOKKEEPING]
