"""Push: store what the field recorded, reconciled against what changed on the server.

One batch is one transaction. Every record gets its own outcome; a malformed record is
rejected on its own and never costs the good records beside it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from typing import Any

import sqlite_utils
from marshmallow import ValidationError

from schemas.sync import BODY_SCHEMAS, RecordSchema
from server.clock import parse_iso, to_iso
from server.domain.dispatch_rules import HOME_PURPOSES
from server.errors import PayloadTooLarge
from server.runtime import Caller, Runtime
from server.services.attachments import complete_blobs
from server.storage import accounts
from server.storage import cases as case_rows
from server.storage import sync as sync_rows
from server.storage import visits as visit_rows
from server.storage.connection import transaction
from server.timing import phase
from sync.receipts import sign_receipt
from sync.reconcile import reconcile_batch, replay_outcome
from sync.records import (
    AgentFacts,
    CaseFacts,
    IncomingRecord,
    RecordOutcome,
    ServerFacts,
    StoredRecord,
    VisitFacts,
    referenced_blobs,
)

_RECORD = RecordSchema()


class BatchTooLarge(PayloadTooLarge):
    """More records in one push than the server takes."""

    code = "batch_too_large"


def _first_error(messages: Any, prefix: str) -> str:
    while isinstance(messages, dict) and messages:
        key, messages = next(iter(messages.items()))
        prefix = f"{prefix}.{key}" if prefix else str(key)
    return prefix


def _validate(raw: Any) -> tuple[IncomingRecord | None, str | None, RecordOutcome | None]:
    """(record, typed ID characters, None) or (None, None, rejection) for one raw record."""
    record_id = str(raw.get("id")) if isinstance(raw, dict) else "?"
    try:
        if not isinstance(raw, dict):
            raise ValidationError({"_record": ["must be an object"]})
        envelope = _RECORD.load(raw)
        try:
            body = BODY_SCHEMAS[envelope["kind"]].load(envelope["body"])
        except ValidationError as exc:
            raise ValidationError({"body": exc.messages}) from None
    except ValidationError as exc:
        field = _first_error(exc.messages, "")
        return (
            None,
            None,
            RecordOutcome(
                record_id, "rejected", "malformed", f"{field}: invalid ({_message(exc.messages)})"
            ),
        )
    typed = body.pop("id_last6", None)
    record = IncomingRecord.create(
        id=str(envelope["id"]),
        kind=envelope["kind"],
        visit_id=envelope["visit_id"],
        device_seq=envelope["device_seq"],
        recorded_at=envelope["recorded_at"],
        body=body,
    )
    return record, typed, None


def _message(messages: Any) -> str:
    while isinstance(messages, dict) and messages:
        messages = next(iter(messages.values()))
    return str(messages[0]) if isinstance(messages, list) and messages else str(messages)


def push(db: sqlite_utils.Database, rt: Runtime, caller: Caller, batch: dict) -> dict[str, Any]:
    principal = caller.principal
    assert principal is not None and principal.device_id is not None
    if len(batch["records"]) > rt.settings["MAX_PUSH_RECORDS"]:
        raise BatchTooLarge(
            f"at most {rt.settings['MAX_PUSH_RECORDS']} records per push", field="records"
        )
    raws = batch["records"]
    digests = [_raw_digest(raw) for raw in raws]
    with phase("replays"):
        replays = _known_replays(db, principal.user_id, raws, digests)
    with phase("validate"):
        checked = [
            (None, None, None) if i in replays else _validate(raw) for i, raw in enumerate(raws)
        ]
    incoming = [record for record, _, _ in checked if record is not None]
    typed = {record.id: last6 for record, last6, _ in checked if record and last6}
    now = caller.now
    with transaction(db):
        with phase("facts"):
            facts = _facts(db, rt, caller, incoming, typed, batch["device_time"])
        with phase("reconcile"):
            decided = iter(reconcile_batch(incoming, facts, rt.compliance, now))
        outcomes = [
            replays[i][0] if i in replays else rejection or next(decided)
            for i, (_, _, rejection) in enumerate(checked)
        ]
        by_id = {record.id: record for record in incoming}
        with phase("store"):
            receipts = _store(db, rt, caller, by_id, outcomes, raws, digests)
        confirmed = sync_rows.confirm_purges(
            db, principal.device_id, batch.get("purge_acks") or [], to_iso(now)
        )
        queue = batch.get("queue") or {}
        sync_rows.record_push(
            db,
            {
                "device_id": principal.device_id,
                "now": to_iso(now),
                "device_time": to_iso(batch["device_time"]),
                "clock_skew_s": round((batch["device_time"] - now).total_seconds(), 3),
                "queued_count": queue.get("pending"),
                "oldest_queued_at": to_iso(queue["oldest_recorded_at"])
                if queue.get("oldest_recorded_at")
                else None,
            },
        )
    kinds = {rid: (r.kind, dict(r.body)) for rid, r in by_id.items()}
    kinds.update({outcome.record_id: kind_body for outcome, kind_body in replays.values()})
    return {
        "server_time": now,
        "outcomes": [outcome_out(o, kinds.get(o.record_id), receipts) for o in outcomes],
        "purges_confirmed": confirmed,
    }


def _raw_digest(raw: Any) -> str | None:
    """A digest of the record as sent; none for bodies carrying typed ID characters, since
    six characters inside a stored digest could be recovered by trying them all."""
    if not isinstance(raw, dict) or not isinstance(raw.get("body"), dict):
        return None
    if "id_last6" in raw["body"]:
        return None
    text = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _known_replays(
    db: sqlite_utils.Database, agent_id: int, raws: list[Any], digests: list[str | None]
) -> dict[int, tuple[RecordOutcome, tuple[str, dict]]]:
    """Records already stored exactly as sent by this agent: answered from the store, with
    no validation or reconciliation. Stored records never change, so no lock is needed."""
    ids = [str(raw.get("id")) for raw, digest in zip(raws, digests, strict=True) if digest]
    stored = sync_rows.stored_records(db, ids)
    replays = {}
    for index, (raw, digest) in enumerate(zip(raws, digests, strict=True)):
        row = stored.get(str(raw.get("id"))) if digest else None
        if row and row["agent_id"] == agent_id and row["raw_digest"] == digest:
            original = RecordOutcome.from_dict(json.loads(row["outcome"]))
            replays[index] = (
                replay_outcome(row["id"], original),
                (row["kind"], json.loads(row["body"])),
            )
    return replays


def _store(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    by_id: dict[str, IncomingRecord],
    outcomes: list[RecordOutcome],
    raws: list[Any],
    digests: list[str | None],
) -> dict[str, dict[str, Any]]:
    """Insert stored records (and receipts); log rejections; return receipts by agreement."""
    principal = caller.principal
    assert principal is not None
    now = to_iso(caller.now)
    visit_cases: dict[int, int] = {}
    receipts: dict[str, dict[str, Any]] = {}
    rows, rejections = [], []
    for index, outcome in enumerate(outcomes):
        record = by_id.get(outcome.record_id)
        if outcome.stored and record is not None:
            if record.visit_id not in visit_cases:
                visit_cases[record.visit_id] = visit_rows.get_visit(db, record.visit_id)["case_id"]
            rows.append(
                {
                    "id": record.id,
                    "kind": record.kind,
                    "agent_id": principal.user_id,
                    "device_id": principal.device_id,
                    "visit_id": record.visit_id,
                    "case_id": visit_cases[record.visit_id],
                    "device_seq": record.device_seq,
                    "recorded_at": to_iso(record.recorded_at),
                    "received_at": now,
                    "digest": record.digest,
                    "status": outcome.status,
                    "outcome": json.dumps(outcome.to_dict()),
                    "body": _body_json(record),
                    "raw_digest": digests[index],
                }
            )
            if record.kind == "agreement" and outcome.content_hash:
                receipt = sign_receipt(
                    rt.keys.private_key, record.id, outcome.content_hash, caller.now
                ).to_dict()
                sync_rows.insert_receipt(db, receipt)
                receipts[record.id] = receipt
        elif outcome.status == "rejected":
            digest = (
                record.digest
                if record
                else hashlib.sha256(
                    json.dumps(raws[index], sort_keys=True, default=str).encode()
                ).hexdigest()
            )
            rejections.append(
                {
                    "record_id": outcome.record_id[:64],
                    "digest": digest,
                    "agent_id": principal.user_id,
                    "device_id": principal.device_id,
                    "reason": outcome.reason or "rejected",
                    "message": outcome.message[:500],
                    "received_at": now,
                }
            )
    sync_rows.insert_records(db, rows)
    sync_rows.insert_rejections(db, rejections)
    replayed = [o.record_id for o in outcomes if o.status == "duplicate"]
    receipts.update(sync_rows.receipts(db, replayed))
    return receipts


def _body_json(record: IncomingRecord) -> str:
    def plain(value: Any) -> Any:
        if isinstance(value, datetime):
            return to_iso(value)
        if isinstance(value, date):
            return value.isoformat()
        return str(value)

    return json.dumps(dict(record.body), sort_keys=True, default=plain)


def id_verification(kind: str | None, body: dict | None, outcome: dict[str, Any]) -> str | None:
    """match / mismatch / unverifiable for a stored borrower_identity confirmation."""
    if kind != "id_confirmation" or (body or {}).get("confirmation_kind") != "borrower_identity":
        return None
    if outcome.get("status") not in ("accepted", "flagged", "duplicate"):
        return None
    codes = {flag["code"] for flag in outcome.get("flags", [])}
    if "id_mismatch" in codes:
        return "mismatch"
    if "id_unverifiable" in codes:
        return "unverifiable"
    return "match"


def outcome_out(
    outcome: RecordOutcome, kind_body: tuple[str, dict] | None, receipts: dict[str, dict]
) -> dict[str, Any]:
    data = outcome.to_dict()
    kind, body = kind_body or (None, None)
    data["receipt"] = receipts.get(outcome.record_id)
    data["id_verification"] = id_verification(kind, body, data)
    return data


def _facts(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    incoming: list[IncomingRecord],
    typed: dict[str, str],
    device_time: datetime,
) -> ServerFacts:
    """Everything reconciliation needs to know about the batch's visits and ids."""
    principal = caller.principal
    assert principal is not None
    user = accounts.get_user(db, principal.user_id) or {}
    agent = AgentFacts(id=principal.user_id, badge_number=user.get("badge_number") or "")
    visit_ids = sorted({r.visit_id for r in incoming})
    joined = visit_rows.joined_by_ids(db, visit_ids)
    history = sync_rows.visit_history_agents(db, visit_ids)
    case_ids = sorted({p["case"]["id"] for p in joined})
    prior = sync_rows.records_for_cases(
        db, case_ids, ("visit_report", "agreement", "id_confirmation")
    )
    visits = {p["visit"]["id"]: _visit_facts(p, history, prior) for p in joined}
    stored = {
        row["id"]: StoredRecord(
            row["agent_id"], row["digest"], RecordOutcome.from_dict(json.loads(row["outcome"]))
        )
        for row in sync_rows.stored_records(db, [r.id for r in incoming]).values()
    }
    blobs: set[str] = set()
    for record in incoming:
        try:
            blobs |= referenced_blobs(record)
        except ValueError:
            continue  # the engine answers malformed for it
    return ServerFacts(
        agent=agent,
        visits=visits,
        stored=stored,
        id_matches=_compare_ids(db, rt, principal.user_id, incoming, typed, visits, stored),
        complete_blobs=complete_blobs(db, blobs),
        device_sent_at=device_time,
    )


def _visit_facts(parts: dict, history: dict[int, set[int]], prior: list[dict]) -> VisitFacts:
    visit, case, borrower = parts["visit"], parts["case"], parts["borrower"]
    home_times, agreements, credentials = [], set(), []
    for row in prior:
        if row["case_id"] != case["id"]:
            continue
        body = json.loads(row["body"])
        if row["kind"] == "visit_report" and row["purpose"] in HOME_PURPOSES:
            home_times.append(parse_iso(body["arrived_at"]))
        elif row["kind"] == "agreement":
            agreements.add(row["id"])
        elif (
            row["kind"] == "id_confirmation"
            and row["visit_id"] == visit["id"]
            and body.get("confirmation_kind") == "agent_credential"
        ):
            flags = {f["code"] for f in json.loads(row["outcome"]).get("flags", [])}
            if "badge_mismatch" not in flags:
                credentials.append(parse_iso(row["recorded_at"]))
    return VisitFacts(
        id=visit["id"],
        case=CaseFacts(
            id=case["id"],
            time_zone=borrower["time_zone"],
            home_lat=borrower["home_lat"],
            home_lon=borrower["home_lon"],
            hardship=bool(case["hardship"]),
            do_not_visit=bool(case["do_not_visit"]),
            legal_hold=bool(case["legal_hold"]),
            home_visit_times=tuple(sorted(home_times)),
            agreement_ids=frozenset(agreements),
        ),
        agent_id=visit["agent_id"],
        status=visit["status"],
        visit_date=date.fromisoformat(visit["visit_date"]),
        window_start=visit["window_start"],
        window_end=visit["window_end"],
        notice_given=bool(visit["notice_kind"]),
        notice_given_at=parse_iso(visit["notice_given_at"]) if visit["notice_given_at"] else None,
        home_visit=visit["purpose"] in HOME_PURPOSES,
        previous_agent_ids=frozenset(history.get(visit["id"], set())),
        credential_times=tuple(sorted(credentials)),
    )


def _compare_ids(
    db: sqlite_utils.Database,
    rt: Runtime,
    agent_id: int,
    incoming: list[IncomingRecord],
    typed: dict[str, str],
    visits: dict[int, VisitFacts],
    stored: dict[str, StoredRecord],
) -> dict[str, bool | None]:
    """Compare typed ID characters with the borrower's ID, for this agent's visits only and a
    bounded number of times per visit, so the comparison is no oracle for guessing."""
    results: dict[str, bool | None] = {}
    used: dict[int, int] = {}
    for record in incoming:
        last6 = typed.get(record.id)
        visit = visits.get(record.visit_id)
        if last6 is None or visit is None or record.id in stored:
            continue
        if not visit.was_assigned_to(agent_id):
            continue
        if record.visit_id not in used:
            used[record.visit_id] = sync_rows.id_checks_for_visit(db, record.visit_id)
        used[record.visit_id] += 1
        if used[record.visit_id] > rt.settings["MAX_ID_CHECKS_PER_VISIT"]:
            results[record.id] = None
            continue
        national_id = case_rows.national_id_for_case(db, visit.case.id)
        if not national_id:
            results[record.id] = None
            continue
        results[record.id] = national_id[-6:].upper() == last6.upper()
    return results
