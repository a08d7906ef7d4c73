"""The values reconciliation takes in (records, server facts) and gives back (outcomes).

Body fields the engine reads, per kind (the schema has already validated them; datetimes may
arrive as aware `datetime` objects or ISO 8601 text with an offset):

- every kind: `attachments` — optional list of SHA-256 hex of blobs the record references.
- `visit_report`: `arrived_at` (required), `departed_at`, `contacted_at` (first contact with
  anyone at the door; defaults to `arrived_at` unless `outcome` says nobody was met),
  `outcome` (required), `location` {`lat`, `lon`, `accuracy_m`},
  `third_party_present`, `debt_discussed_with_third_party`.
- `id_confirmation`: `confirmation_kind` = `borrower_identity` | `agent_credential`; for
  `agent_credential`, `badge_number` (required) and `borrower_acknowledged`. The typed ID
  characters never reach this package: the server compares them and passes only the result.
- `agreement`: every field of sync.canonical.AGREEMENT_FIELDS plus the claimed
  `content_hash`; `agreement_id` must equal the record id.
- `contact`: a call or message the agent made in the field: `channel` (`phone_call`,
  `sms`), `direction`, `occurred_at`, `outcome` from the channel's vocabulary
  (sync/contacts.py).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .canonical import (
    CanonicalFormError,
    agreement_canonical_bytes,
    canonical_sha256,
    canonical_uuid,
    parse_aware_datetime,
    record_digest,
)
from .compliance import Flag, OutOfHoursConsent, parse_hhmm
from .geo import GeoFix
from .visits import NO_CONTACT_OUTCOMES, VISIT_STATUSES

if TYPE_CHECKING:  # sync.contacts reads MalformedRecord from here
    from .contact_rules import DoNotContact
    from .contacts import LoggedContact

RECORD_KINDS: frozenset[str] = frozenset(
    {"visit_report", "id_confirmation", "agreement", "contact"}
)
Status = Literal["accepted", "flagged", "duplicate", "rejected", "retry"]
CONFIRMATION_KINDS: frozenset[str] = frozenset({"borrower_identity", "agent_credential"})
# The wire name of the typed ID characters; a body still holding them is refused outright,
# because a digest over six characters could be brute-forced back out of the store.
TYPED_ID_FIELD = "id_last6"

MALFORMED = "malformed"
TAMPERED = "tampered"
NOT_YOURS = "not_yours"
ID_REUSED = "id_reused"
ATTACHMENT_MISSING = "attachment_missing"

STORED_MESSAGE = "Stored."
STORED_FLAGGED_MESSAGE = "Stored; needs compliance review."

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class MalformedRecord(ValueError):
    """A record the schema let through but the engine cannot read; `field` says where."""

    code = MALFORMED

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class IncomingRecord:
    """One record as pushed by a device; build it with `create` so the digest is right."""

    id: str
    kind: str
    visit_id: int
    device_seq: int
    recorded_at: datetime
    body: Mapping[str, Any]
    digest: str

    @classmethod
    def create(
        cls,
        *,
        id: str,
        kind: str,
        visit_id: int,
        device_seq: int,
        recorded_at: datetime,
        body: Mapping[str, Any],
    ) -> IncomingRecord:
        """A record with its digest over kind, visit, recorded_at and body (not device_seq)."""
        if TYPED_ID_FIELD in body:
            raise ValueError(f"remove {TYPED_ID_FIELD!r} from the body before reconciling")
        try:
            record_id = canonical_uuid("id", id)
        except CanonicalFormError:
            record_id = id  # Reconciliation answers `malformed`; construction must not fail.
        content = {"visit_id": visit_id, "recorded_at": recorded_at, "body": body}
        return cls(
            id=record_id,
            kind=kind,
            visit_id=visit_id,
            device_seq=device_seq,
            recorded_at=recorded_at,
            body=MappingProxyType(dict(body)),
            digest=record_digest(kind, content),
        )


@dataclass(frozen=True)
class RecordOutcome:
    """The server's answer for one record; `reason` is set for rejected and retry."""

    record_id: str
    status: Status
    reason: str | None = None
    message: str = ""
    flags: tuple[Flag, ...] = ()
    content_hash: str | None = None
    missing_blobs: tuple[str, ...] = ()
    original_status: str | None = None

    @property
    def stored(self) -> bool:
        """True when the server must insert this record now."""
        return self.status in ("accepted", "flagged")

    def to_dict(self) -> dict[str, Any]:
        """The wire form, also fit for storing and replaying with from_dict."""
        return {
            "record_id": self.record_id,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "flags": [flag.to_dict() for flag in self.flags],
            "content_hash": self.content_hash,
            "missing_blobs": list(self.missing_blobs),
            "original_status": self.original_status,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecordOutcome:
        """Rebuild a stored outcome."""
        return cls(
            record_id=data["record_id"],
            status=data["status"],
            reason=data.get("reason"),
            message=data.get("message", ""),
            flags=tuple(
                Flag(f["code"], f["message"], dict(f.get("details", {})))
                for f in data.get("flags", ())
            ),
            content_hash=data.get("content_hash"),
            missing_blobs=tuple(data.get("missing_blobs", ())),
            original_status=data.get("original_status"),
        )


@dataclass(frozen=True)
class CaseFacts:
    """The case and its borrower, as far as the rules need them."""

    id: int
    time_zone: str
    home_lat: float | None = None
    home_lon: float | None = None
    hardship: bool = False
    do_not_visit: bool = False
    legal_hold: bool = False
    # The borrower's recorded out-of-hours consents, withdrawn and expired ones included.
    consents: tuple[OutOfHoursConsent, ...] = ()
    # arrived_at of every stored visit_report on a home visit to this case.
    home_visit_times: tuple[datetime, ...] = ()
    # ids of every agreement already stored for this case.
    agreement_ids: frozenset[str] = frozenset()
    # The parts of the two above that the pushing agent stored: what the agent's view of a
    # flag may rest on (other people's visits and agreements are not the agent's to know).
    own_home_visit_times: tuple[datetime, ...] = ()
    own_agreement_ids: frozenset[str] = frozenset()
    # The case's contact log (calls, messages, letters; sync/contacts.py) and the borrower's
    # do-not-contact requests, withdrawn ones included: what the channel rules read.
    contacts: tuple[LoggedContact, ...] = ()
    do_not_contact: tuple[DoNotContact, ...] = ()

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.time_zone!r}") from None


@dataclass(frozen=True)
class VisitFacts:
    """The visit as the server knows it now; window times are 'HH:MM' borrower local time."""

    id: int
    case: CaseFacts
    agent_id: int | None
    status: str
    visit_date: date
    window_start: str | None = None
    window_end: str | None = None
    notice_given: bool = False
    notice_given_at: datetime | None = None
    home_visit: bool = True
    # Every agent the visit was ever assigned to (from its history), current one included.
    previous_agent_ids: frozenset[int] = frozenset()
    # recorded_at of the pushing agent's stored agent_credential confirmations for this
    # visit whose badge matched (another agent's badge proves nothing about this one's).
    credential_times: tuple[datetime, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in VISIT_STATUSES:
            raise ValueError(f"unknown visit status {self.status!r}")
        for name in ("window_start", "window_end"):
            if getattr(self, name) is not None:
                parse_hhmm(getattr(self, name), name)

    def was_assigned_to(self, agent_id: int) -> bool:
        """True if the visit is or ever was this agent's."""
        return self.agent_id == agent_id or agent_id in self.previous_agent_ids


@dataclass(frozen=True)
class AgentFacts:
    """The pushing agent."""

    id: int
    badge_number: str


@dataclass(frozen=True)
class StoredRecord:
    """A record already in the store under the same id: who pushed it, its digest and outcome."""

    agent_id: int
    digest: str
    outcome: RecordOutcome


@dataclass(frozen=True)
class ServerFacts:
    """Everything the server looked up for one push; keyed lookups cover the batch's ids."""

    agent: AgentFacts
    visits: Mapping[int, VisitFacts]
    stored: Mapping[str, StoredRecord] = field(default_factory=dict)
    # record id -> the server's comparison of typed ID characters (None: nothing on file).
    id_matches: Mapping[str, bool | None] = field(default_factory=dict)
    # record id -> the flag code saying why its typed ID characters were not compared
    # (compliance.ID_CHECK_LIMIT_REACHED, compliance.ID_NOT_COMPARED).
    id_refusals: Mapping[str, str] = field(default_factory=dict)
    # The batch's referenced blobs that are stored, verified and uploaded by the pushing
    # agent: a record may reference only these (another agent's blob counts as missing).
    complete_blobs: frozenset[str] = frozenset()
    device_sent_at: datetime | None = None


@dataclass(frozen=True)
class VisitReport:
    """The parts of a visit_report body the rules read."""

    arrived_at: datetime
    departed_at: datetime | None
    contacted_at: datetime | None
    outcome: str
    fix: GeoFix | None
    third_party_present: bool
    debt_discussed_with_third_party: bool

    @property
    def contact_at(self) -> datetime | None:
        """When contact began, or None if nobody was met."""
        if self.contacted_at is not None:
            return self.contacted_at
        return None if self.outcome in NO_CONTACT_OUTCOMES else self.arrived_at


@dataclass(frozen=True)
class IdConfirmation:
    """The parts of an id_confirmation body the rules read."""

    confirmation_kind: str
    badge_number: str | None
    borrower_acknowledged: bool | None


@dataclass(frozen=True)
class AgreementClaim:
    """An agreement's ids, its claimed hash and the hash recomputed from its canonical form."""

    agreement_id: str
    case_id: int
    visit_id: int
    claimed_hash: str
    content_hash: str


def check_envelope(record: IncomingRecord) -> None:
    """Raise MalformedRecord unless the fields around the body are well formed."""
    try:
        if canonical_uuid("id", record.id) != record.id:
            raise MalformedRecord("id", "must be a lowercase hyphenated UUID")
    except CanonicalFormError as error:
        raise MalformedRecord("id", error.message) from None
    if record.kind not in RECORD_KINDS:
        raise MalformedRecord("kind", f"must be one of {sorted(RECORD_KINDS)}")
    if not _is_int(record.visit_id) or record.visit_id <= 0:
        raise MalformedRecord("visit_id", "must be a positive integer")
    if not _is_int(record.device_seq) or record.device_seq < 0:
        raise MalformedRecord("device_seq", "must be an integer >= 0")
    _moment(record.recorded_at, "recorded_at")
    if not isinstance(record.body, Mapping):
        raise MalformedRecord("body", "must be an object")


def referenced_blobs(record: IncomingRecord) -> frozenset[str]:
    """SHA-256 of every blob the record references (attachments and signatures)."""
    listed = record.body.get("attachments") or ()
    if isinstance(listed, str) or not isinstance(listed, list | tuple):
        raise MalformedRecord("body.attachments", "must be a list of SHA-256 hex")
    hashes = {_sha256(item, "body.attachments") for item in listed}
    if record.kind == "agreement":
        for name in ("borrower_signature_sha256", "agent_signature_sha256"):
            hashes.add(_sha256(record.body.get(name), f"body.{name}"))
    return frozenset(hashes)


def parse_visit_report(body: Mapping[str, Any]) -> VisitReport:
    """Read a visit_report body; raises MalformedRecord."""
    outcome = body.get("outcome")
    if not isinstance(outcome, str) or not outcome:
        raise MalformedRecord("body.outcome", "is required")
    arrived_at = _moment(body.get("arrived_at"), "body.arrived_at")
    departed_at = _optional_moment(body.get("departed_at"), "body.departed_at")
    if departed_at is not None and departed_at < arrived_at:
        raise MalformedRecord("body.departed_at", "must not be before arrived_at")
    return VisitReport(
        arrived_at=arrived_at,
        departed_at=departed_at,
        contacted_at=_optional_moment(body.get("contacted_at"), "body.contacted_at"),
        outcome=outcome,
        fix=_fix(body.get("location")),
        third_party_present=_flag(body, "third_party_present"),
        debt_discussed_with_third_party=_flag(body, "debt_discussed_with_third_party"),
    )


def parse_id_confirmation(body: Mapping[str, Any]) -> IdConfirmation:
    """Read an id_confirmation body; raises MalformedRecord."""
    kind = body.get("confirmation_kind")
    if kind not in CONFIRMATION_KINDS:
        choices = ", ".join(sorted(CONFIRMATION_KINDS))
        raise MalformedRecord("body.confirmation_kind", f"must be one of {choices}")
    badge = body.get("badge_number")
    if kind == "agent_credential" and (not isinstance(badge, str) or not badge.strip()):
        raise MalformedRecord("body.badge_number", "is required for agent_credential")
    acknowledged = body.get("borrower_acknowledged")
    if acknowledged is not None and not isinstance(acknowledged, bool):
        raise MalformedRecord("body.borrower_acknowledged", "must be true or false")
    return IdConfirmation(
        confirmation_kind=kind,
        badge_number=badge if kind == "agent_credential" else None,
        borrower_acknowledged=acknowledged,
    )


def parse_agreement(body: Mapping[str, Any]) -> AgreementClaim:
    """Read an agreement body and recompute its hash; raises MalformedRecord."""
    try:
        claimed = canonical_sha256("content_hash", body.get("content_hash"))
        canonical = agreement_canonical_bytes(body)
    except CanonicalFormError as error:
        raise MalformedRecord(f"body.{error.field}", error.message) from None
    installments = sum(Decimal(str(item["amount"])) for item in body["installments"])
    if installments != Decimal(str(body["total_amount"])):
        raise MalformedRecord("body.total_amount", "must equal the sum of the installments")
    return AgreementClaim(
        agreement_id=canonical_uuid("agreement_id", body["agreement_id"]),
        case_id=body["case_id"],
        visit_id=body["visit_id"],
        claimed_hash=claimed,
        content_hash=hashlib.sha256(canonical).hexdigest(),
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _moment(value: object, name: str) -> datetime:
    if type(value) is datetime and value.tzinfo is UTC:
        return value  # as validation gives it: aware, nothing to check
    try:
        return parse_aware_datetime(name, value)
    except CanonicalFormError as error:
        raise MalformedRecord(name, error.message) from None


def _optional_moment(value: object, name: str) -> datetime | None:
    return None if value is None else _moment(value, name)


def _flag(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise MalformedRecord(f"body.{name}", "must be true or false")
    return value


def _fix(value: object) -> GeoFix | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise MalformedRecord("body.location", "must be an object with lat, lon, accuracy_m")
    try:
        return GeoFix(
            lat=_number(value.get("lat")),
            lon=_number(value.get("lon")),
            accuracy_m=_number(value.get("accuracy_m", 0.0) or 0.0),
        )
    except (TypeError, ValueError) as error:
        raise MalformedRecord("body.location", str(error)) from None


def _number(value: object) -> float:
    if type(value) is float:
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _sha256(value: object, name: str) -> str:
    if isinstance(value, str) and _SHA256_HEX.fullmatch(value.lower()):
        return value.lower()
    raise MalformedRecord(name, "must be a SHA-256 in 64 hex characters")
