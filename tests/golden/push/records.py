"""Record builders for the golden corpus: well-formed records of every kind, and the
malformed, foreign and forged variants a phone (or an attacker) may send.

Pure functions of their arguments and of the random generator passed in: ids come from
`rng`, never from uuid4, so the corpus is the same every run.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sync.canonical import agreement_content_hash

from .plans import VisitPlan, blob_sha


def new_id(rng: random.Random) -> str:
    """A version-4 UUID drawn from the corpus's generator."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def envelope(
    rng: random.Random, kind: str, visit_id: int, seq: int, recorded_at: datetime, body: dict
) -> dict[str, Any]:
    return {
        "id": new_id(rng),
        "kind": kind,
        "visit_id": visit_id,
        "device_seq": seq,
        "recorded_at": iso(recorded_at),
        "body": body,
    }


def credential_body(badge: str) -> dict[str, Any]:
    return {
        "confirmation_kind": "agent_credential",
        "badge_number": badge,
        "borrower_acknowledged": True,
    }


def identity_body(last6: str) -> dict[str, Any]:
    return {"confirmation_kind": "borrower_identity", "id_last6": last6}


def location(rng: random.Random, plan: VisitPlan, mode: str) -> dict[str, Any] | None:
    """A GPS fix near the home, far from it, too vague, or none."""
    lat, lon = plan.case.home or (10.0, 10.0)
    if mode == "none":
        return None
    if mode == "far":
        return {"lat": round(lat + 0.03, 6), "lon": round(lon - 0.02, 6), "accuracy_m": 12.0}
    if mode == "vague":
        return {"lat": lat, "lon": lon, "accuracy_m": 4500.0}
    jitter = rng.randint(-30, 30) / 100_000
    return {
        "lat": round(lat + jitter, 6),
        "lon": round(lon - jitter, 6),
        "accuracy_m": float(rng.choice((5, 15, 40, 120))),
    }


NOTES = (
    None,
    "Borrower asked to call back next week.",
    "借款人不在家，邻居说周末回来。",
    "Talked at the door; dog 🐕 in the yard.",
    "Tab\tand\nnewline are fine.",
)


def report_body(
    rng: random.Random,
    plan: VisitPlan,
    arrived_at: datetime,
    outcome: str,
    agent: str,
    *,
    fix: str = "near",
    attachments: tuple[str, ...] = (),
) -> dict[str, Any]:
    body: dict[str, Any] = {"arrived_at": iso(arrived_at), "outcome": outcome}
    if rng.random() < 0.9:
        body["departed_at"] = iso(arrived_at + timedelta(minutes=rng.randint(4, 50)))
    if rng.random() < 0.25:
        body["contacted_at"] = iso(arrived_at + timedelta(minutes=rng.choice((1, 3, 8))))
    body["location"] = location(rng, plan, fix)
    if rng.random() < 0.2:
        body["third_party_present"] = True
        body["debt_discussed_with_third_party"] = rng.random() < 0.5
    if outcome == "promise_to_pay":
        body["promise_amount"] = rng.choice(("250.00", "1000", "99.5"))
        body["promise_date"] = (
            plan.visit_date + timedelta(days=rng.choice((3, 7, 14)))
        ).isoformat()
    note = rng.choice(NOTES)
    if note is not None:
        body["notes"] = note
    if attachments:
        body["attachments"] = [blob_sha(agent, name) for name in attachments]
    return body


def agreement_body(
    rng: random.Random,
    record_id: str,
    visit_id: int,
    case_id: int,
    plan: VisitPlan,
    signed_at: datetime,
    agent: str,
    signatures: tuple[str, str] = ("sig-borrower", "sig-agent"),
) -> dict[str, Any]:
    parts = rng.choice((1, 2, 3))
    amount = Decimal(rng.choice(("120.00", "333.33", "50.10")))
    lat, lon = plan.case.home or (10.0, 10.0)
    body: dict[str, Any] = {
        "agreement_id": record_id,
        "case_id": case_id,
        "visit_id": visit_id,
        "currency": "CNY",
        "total_amount": f"{amount * parts:.2f}",
        "installments": [
            {
                "due_date": (plan.visit_date + timedelta(days=30 * (i + 1))).isoformat(),
                "amount": f"{amount:.2f}",
            }
            for i in range(parts)
        ],
        "template_id": "repayment-plan",
        "template_version": rng.choice((2, 3)),
        "borrower_signature_sha256": blob_sha(agent, signatures[0]),
        "agent_signature_sha256": blob_sha(agent, signatures[1]),
        "signed_at": iso(signed_at),
        "signed_lat": f"{lat:.6f}",
        "signed_lon": f"{lon:.6f}",
    }
    body["content_hash"] = agreement_content_hash(body)
    return body


def rehash(body: dict[str, Any]) -> dict[str, Any]:
    """The body with its content hash recomputed (after a deliberate change)."""
    body = {k: v for k, v in body.items() if k != "content_hash"}
    body["content_hash"] = agreement_content_hash(body)
    return body


# Each mutation takes a well-formed visit_report record and breaks it in one way.
Mutation = Callable[[dict[str, Any]], Any]


def _with(record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**record, **changes}


def _body(record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**record, "body": {**record["body"], **changes}}


def _drop(record: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in names}


def _drop_body(record: dict[str, Any], *names: str) -> dict[str, Any]:
    return {**record, "body": {k: v for k, v in record["body"].items() if k not in names}}


MALFORMED_REPORTS: tuple[tuple[str, Mutation], ...] = (
    ("id not a uuid", lambda r: _with(r, id="not-a-uuid")),
    ("id a number", lambda r: _with(r, id=12345)),
    ("unknown kind", lambda r: _with(r, kind="selfie")),
    ("visit_id as text", lambda r: _with(r, visit_id=str(r["visit_id"]))),
    ("visit_id zero", lambda r: _with(r, visit_id=0)),
    ("visit_id beyond 64 bits", lambda r: _with(r, visit_id=2**70)),
    ("visit_id float", lambda r: _with(r, visit_id=1.5)),
    ("device_seq negative", lambda r: _with(r, device_seq=-1)),
    ("device_seq bool", lambda r: _with(r, device_seq=True)),
    ("recorded_at naive", lambda r: _with(r, recorded_at=r["recorded_at"].rstrip("Z"))),
    ("recorded_at words", lambda r: _with(r, recorded_at="yesterday")),
    ("recorded_at year 2200", lambda r: _with(r, recorded_at="2200-01-01T00:00:00Z")),
    ("body a list", lambda r: _with(r, body=[r["body"]])),
    ("body missing", lambda r: _drop(r, "body")),
    ("id missing", lambda r: _drop(r, "id")),
    ("envelope extra field", lambda r: _with(r, priority="high")),
    ("outcome missing", lambda r: _drop_body(r, "outcome")),
    ("outcome unknown", lambda r: _body(r, outcome="exploded")),
    ("arrived_at missing", lambda r: _drop_body(r, "arrived_at")),
    ("arrived_at not a time", lambda r: _body(r, arrived_at="half past nine")),
    ("departed before arrived", lambda r: _body(r, departed_at="2026-11-20T00:00:00Z")),
    ("notes with NUL", lambda r: _body(r, notes="bad\x00text")),
    ("notes with escape char", lambda r: _body(r, notes="bell\x07")),
    ("notes with lone surrogate", lambda r: _body(r, notes="half \ud800 pair")),
    ("notes too long", lambda r: _body(r, notes="x" * 4001)),
    ("unknown body field", lambda r: _body(r, mood="grumpy")),
    ("latitude out of range", lambda r: _body(r, location={"lat": 95.0, "lon": 10.0})),
    ("location a string", lambda r: _body(r, location="31.2,121.4")),
    ("third_party_present text", lambda r: _body(r, third_party_present="yes")),
    ("promise amount of 3 decimals", lambda r: _body(r, promise_amount="12.345")),
    ("promise date not a date", lambda r: _body(r, promise_date="soon")),
    ("attachment not a sha", lambda r: _body(r, attachments=["abc"])),
    ("attachments a string", lambda r: _body(r, attachments="0" * 64)),
)

MALFORMED_CONFIRMATIONS: tuple[tuple[str, Mutation], ...] = (
    ("kind unknown", lambda r: _body(r, confirmation_kind="fingerprint")),
    (
        "borrower_identity without digits",
        lambda r: _drop_body(
            _body(r, confirmation_kind="borrower_identity"),
            "id_last6",
            "badge_number",
            "borrower_acknowledged",
        ),
    ),
    (
        "digits too short",
        lambda r: _body(
            _drop_body(r, "badge_number", "borrower_acknowledged"),
            confirmation_kind="borrower_identity",
            id_last6="12345",
        ),
    ),
    ("digits on a badge check", lambda r: _body(r, id_last6="123456")),
    ("badge missing", lambda r: _drop_body(r, "badge_number")),
    ("badge empty", lambda r: _body(r, badge_number="")),
    ("acknowledged as text", lambda r: _body(r, borrower_acknowledged="yes")),
)

MALFORMED_AGREEMENTS: tuple[tuple[str, Mutation], ...] = (
    ("total not the sum", lambda r: {**r, "body": rehash({**r["body"], "total_amount": "1.00"})}),
    (
        "agreement_id not the record id",
        lambda r: {
            **r,
            "body": rehash({**r["body"], "agreement_id": "00000000-0000-4000-8000-000000000000"}),
        },
    ),
    (
        "case_id of another case",
        lambda r: {**r, "body": rehash({**r["body"], "case_id": r["body"]["case_id"] + 1})},
    ),
    (
        "visit_id of another visit",
        lambda r: {**r, "body": rehash({**r["body"], "visit_id": r["body"]["visit_id"] + 1})},
    ),
    ("template_version as text", lambda r: _body(r, template_version="3")),
    ("no installments", lambda r: _body(r, installments=[])),
    (
        "installment due date bad",
        lambda r: _body(
            r, installments=[{"due_date": "31/12/2026", "amount": r["body"]["total_amount"]}]
        ),
    ),
    ("amount a float", lambda r: {**r, "body": {**r["body"], "total_amount": 120.0}}),
    ("signed_at naive", lambda r: _body(r, signed_at="2026-11-24T10:00:00")),
    ("signature not a sha", lambda r: _body(r, agent_signature_sha256="nope")),
    ("content_hash upper case", lambda r: _body(r, content_hash=r["body"]["content_hash"].upper())),
    ("content_hash missing", lambda r: _drop_body(r, "content_hash")),
)
