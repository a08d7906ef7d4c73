"""The sync wire contract: push batches, record bodies, outcomes, pulls, purge acks."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from schemas.common import (
    DeferredObject,
    NestedOrNull,
    StrictSchema,
    TaggedUnion,
    aware_datetime,
    business_date,
    json_int,
    money,
    validate_business_day,
)
from schemas.disclosure import borrower_fact, borrower_facts_by_key, borrower_subject
from schemas.fast_dump import FastDump
from schemas.visits import AgentVisitSchema
from sync.contacts import CONTACT, DIRECTIONS, FIELD_CHANNELS, check_outcome, check_promise
from sync.records import CONFIRMATION_KINDS
from sync.visits import VISIT_OUTCOMES

_SHA256 = validate.Regexp(r"^[0-9a-f]{64}$", error="lowercase SHA-256 hex")


class LocationSchema(StrictSchema):
    lat = fields.Float(required=True, validate=validate.Range(min=-90, max=90))
    lon = fields.Float(required=True, validate=validate.Range(min=-180, max=180))
    accuracy_m = fields.Float(load_default=0.0, validate=validate.Range(min=0, max=100_000))


class VisitReportBodySchema(StrictSchema):
    arrived_at = aware_datetime(required=True)
    departed_at = aware_datetime(allow_none=True)
    contacted_at = aware_datetime(allow_none=True)
    outcome = fields.Str(required=True, validate=validate.OneOf(VISIT_OUTCOMES))
    promise_amount = money(allow_none=True)
    promise_date = business_date(allow_none=True)
    notes = fields.Str(allow_none=True, validate=validate.Length(max=4000))
    location = NestedOrNull(LocationSchema)
    third_party_present = fields.Bool(load_default=False)
    debt_discussed_with_third_party = fields.Bool(load_default=False)
    attachments = fields.List(
        fields.Str(validate=_SHA256), load_default=list, validate=validate.Length(max=20)
    )


class IdConfirmationBodySchema(StrictSchema):
    confirmation_kind = fields.Str(
        required=True, validate=validate.OneOf(sorted(CONFIRMATION_KINDS))
    )
    id_last6 = fields.Str(
        load_only=True,
        validate=validate.Regexp(r"^[0-9A-Za-z]{6}$"),
        metadata={
            "description": "borrower_identity: last 6 characters typed by the agent; "
            "compared on the server and never stored"
        },
    )
    badge_number = fields.Str(validate=validate.Length(min=1, max=64))
    borrower_acknowledged = fields.Bool()
    attachments = fields.List(
        fields.Str(validate=_SHA256), load_default=list, validate=validate.Length(max=5)
    )

    @validates_schema
    def _kind_fields(self, data: dict, **_kwargs: object) -> None:
        if data["confirmation_kind"] == "borrower_identity" and "id_last6" not in data:
            raise ValidationError("required for borrower_identity", "id_last6")
        if data["confirmation_kind"] == "agent_credential":
            if "badge_number" not in data:
                raise ValidationError("required for agent_credential", "badge_number")
            if "id_last6" in data:
                raise ValidationError("only for borrower_identity", "id_last6")


# How the agreement's canonical form (docs/agreement-canonical-form.md) wants its values
# spelled, for the OpenAPI document only (`document` metadata: server/api/openapi_types.py):
# the sync engine checks them, and reads a few other spellings (an integer amount, more
# coordinate digits, uppercase hex) that it canonicalises.
_AMOUNT_TEXT = {"type": "string", "pattern": r"^[0-9]{1,15}(\.[0-9]{1,2})?$"}
_COORDINATE_TEXT = {"type": "string", "pattern": r"^-?[0-9]{1,3}(\.[0-9]{1,6})?$"}
_HEX64 = {"pattern": "^[0-9a-f]{64}$"}
_POSITIVE_ID = {"minimum": 1}


class InstallmentSchema(StrictSchema):
    due_date = fields.Str(
        required=True, validate=validate_business_day, metadata={"description": "YYYY-MM-DD"}
    )
    amount = fields.Raw(
        required=True,
        metadata={"description": 'decimal text, e.g. "1200.50"', "document": _AMOUNT_TEXT},
    )


class AgreementBodySchema(StrictSchema):
    """The canonical fields plus the claimed hash. Value rules (amounts, timestamps,
    coordinates) are those of docs/agreement-canonical-form.md and are checked by the sync
    engine, which answers `rejected`/`malformed` with the offending field."""

    agreement_id = fields.Str(
        required=True,
        metadata={"description": "equals the record id", "document": {"format": "uuid"}},
    )
    case_id = fields.Int(required=True, strict=True, metadata={"document": _POSITIVE_ID})
    visit_id = fields.Int(required=True, strict=True, metadata={"document": _POSITIVE_ID})
    currency = fields.Str(
        required=True,
        metadata={"description": "ISO 4217, capitals", "document": {"pattern": "^[A-Z]{3}$"}},
    )
    total_amount = fields.Raw(
        required=True, metadata={"description": "decimal text", "document": _AMOUNT_TEXT}
    )
    installments = fields.List(
        fields.Nested(InstallmentSchema), required=True, validate=validate.Length(min=1, max=120)
    )
    template_id = fields.Str(
        required=True, metadata={"document": {"minLength": 1, "maxLength": 128}}
    )
    template_version = fields.Int(required=True, strict=True, metadata={"document": _POSITIVE_ID})
    borrower_signature_sha256 = fields.Str(required=True, metadata={"document": _HEX64})
    agent_signature_sha256 = fields.Str(required=True, metadata={"document": _HEX64})
    signed_at = fields.Str(
        required=True,
        metadata={"description": "ISO 8601 with offset", "document": {"format": "date-time"}},
    )
    signed_lat = fields.Raw(
        required=True,
        metadata={"description": "decimal text, 6 fraction digits", "document": _COORDINATE_TEXT},
    )
    signed_lon = fields.Raw(
        required=True,
        metadata={"description": "decimal text, 6 fraction digits", "document": _COORDINATE_TEXT},
    )
    content_hash = fields.Str(required=True, validate=_SHA256)


class ContactBodySchema(StrictSchema):
    """A call or message the agent made in the field (docs/contacts.md)."""

    channel = fields.Str(required=True, validate=validate.OneOf(FIELD_CHANNELS))
    direction = fields.Str(load_default="outbound", validate=validate.OneOf(DIRECTIONS))
    occurred_at = aware_datetime(required=True, metadata={"description": "call start, sms sent"})
    outcome = fields.Str(
        required=True,
        validate=validate.Length(min=1, max=40),
        metadata={"description": "from the channel's vocabulary (docs/contacts.md)"},
    )
    duration_s = json_int(allow_none=True, validate=validate.Range(min=0, max=86_400))
    notes = fields.Str(allow_none=True, validate=validate.Length(max=2000))
    external_ref = fields.Str(
        allow_none=True,
        validate=validate.Length(min=1, max=128),
        metadata={"description": "the dialer's or SMS gateway's id of this contact, if known"},
    )
    promise_amount = money(allow_none=True, metadata={"description": "outcome promise only"})
    promise_date = business_date(allow_none=True, metadata={"description": "the day it is due"})

    @validates_schema
    def _outcome_of_channel(self, data: dict, **_kwargs: object) -> None:
        problem = check_outcome(data["channel"], data["outcome"])
        if problem:
            raise ValidationError(problem, "outcome")
        promise = check_promise(
            data["outcome"], data.get("promise_amount"), data.get("promise_date")
        )
        if promise:
            raise ValidationError(promise[1], promise[0])


BODY_SCHEMAS = {
    "visit_report": VisitReportBodySchema(),
    "id_confirmation": IdConfirmationBodySchema(),
    "agreement": AgreementBodySchema(),
    CONTACT: ContactBodySchema(),
}


class RecordSchema(StrictSchema):
    """One offline record. Validated per record: a bad one is rejected, not the batch."""

    id = fields.UUID(required=True, metadata={"description": "client-generated UUID"})
    kind = fields.Str(required=True, validate=validate.OneOf(sorted(BODY_SCHEMAS)))
    visit_id = json_int(required=True, validate=validate.Range(min=1))
    device_seq = json_int(required=True, validate=validate.Range(min=0))
    recorded_at = aware_datetime(required=True, metadata={"description": "device clock"})
    # Checked by its kind's body schema right after the envelope (push_validation.py), so
    # not walked here a second time as a free-form value.
    body = DeferredObject(
        required=True,
        metadata={
            "description": "VisitReportBody, IdConfirmationBody, AgreementBody or ContactBody "
            "by kind"
        },
    )


def _typed_record(kind: str, body: StrictSchema) -> type[RecordSchema]:
    """The envelope of one kind with its body typed: what the document shows a client (push
    itself still reads a RecordSchema, then the body schema of its kind)."""
    name = type(body).__name__.removesuffix("BodySchema")
    return type(
        f"{name}RecordSchema",
        (RecordSchema,),
        {
            "__doc__": f"A pushed record of kind `{kind}`.",
            "__module__": __name__,
            "kind": fields.Str(required=True, validate=validate.OneOf([kind])),
            "body": fields.Nested(type(body), required=True),
        },
    )


# One schema per record kind (VisitReportRecord, IdConfirmationRecord, ...), documented as
# the items of a push.
RECORD_SCHEMAS = {kind: _typed_record(kind, body) for kind, body in BODY_SCHEMAS.items()}


class QueueReportSchema(StrictSchema):
    pending = json_int(required=True, validate=validate.Range(min=0))
    oldest_recorded_at = aware_datetime(allow_none=True)


class PushSchema(StrictSchema):
    device_time = aware_datetime(required=True, metadata={"description": "device clock at send"})
    queue = fields.Nested(QueueReportSchema)
    purge_acks = fields.List(json_int(), load_default=list, validate=validate.Length(max=1000))
    records = fields.List(
        TaggedUnion("kind", RECORD_SCHEMAS),
        required=True,
        metadata={
            "description": "records of any kind, told apart by `kind`; each is validated and "
            "answered on its own: a bad record is rejected in its outcome, not the batch"
        },
    )


class FlagSchema(StrictSchema):
    """A compliance flag on a record: what it says is about the borrower's visit (distance
    from the home, local times, the case's flags, other visits)."""

    code = fields.Str(metadata=borrower_fact("flag_details"))
    message = fields.Str(metadata=borrower_fact("flag_details"))
    details = fields.Dict(metadata=borrower_fact("flag_details"))


class ReceiptSchema(StrictSchema):
    agreement_id = fields.Str()
    content_hash = fields.Str()
    received_at = fields.Str()
    key_id = fields.Str()
    signature = fields.Str()


class OutcomeSchema(StrictSchema):
    record_id = fields.Str(metadata=borrower_subject("record"))
    status = fields.Str(metadata={"description": "accepted|flagged|duplicate|rejected|retry"})
    reason = fields.Str(allow_none=True)
    message = fields.Str()
    field = fields.Str(allow_none=True)
    flags = fields.List(fields.Nested(FlagSchema))
    content_hash = fields.Str(allow_none=True)
    missing_blobs = fields.List(fields.Str())
    original_status = fields.Str(allow_none=True)
    receipt = NestedOrNull(ReceiptSchema)
    id_verification = fields.Str(allow_none=True, metadata=borrower_fact("id_result"))


class PushResultSchema(FastDump, StrictSchema):
    server_time = aware_datetime()
    outcomes = fields.List(fields.Nested(OutcomeSchema))
    purges_confirmed = fields.List(fields.Int())


class PullArgsSchema(StrictSchema):
    cursor = fields.Str(validate=validate.Length(max=512))
    limit = fields.Int(load_default=50, validate=validate.Range(min=1, max=200))


class PurgeOrderSchema(StrictSchema):
    visit_id = fields.Int()
    reason = fields.Str()
    ordered_at = fields.Str()


class BlockedSchema(StrictSchema):
    reason = fields.Str()
    visit_ids = fields.List(fields.Int())


class PullResultSchema(FastDump, StrictSchema):
    cursor = fields.Str()
    has_more = fields.Bool()
    server_time = aware_datetime()
    upserts = fields.List(fields.Nested(AgentVisitSchema))
    purges = fields.List(fields.Nested(PurgeOrderSchema))
    outcomes = fields.List(fields.Nested(OutcomeSchema))
    blocked = NestedOrNull(BlockedSchema)


class PurgeAckSchema(StrictSchema):
    visit_ids = fields.List(json_int(), required=True, validate=validate.Length(max=1000))


class PurgeAckResultSchema(StrictSchema):
    confirmed = fields.List(fields.Int())


class RecordQueryArgsSchema(StrictSchema):
    visit_id = fields.Int()
    case_id = fields.Int()
    agent_id = fields.Int()
    kind = fields.Str(validate=validate.OneOf(sorted(BODY_SCHEMAS)))
    status = fields.Str(validate=validate.OneOf(["accepted", "flagged"]))
    after = fields.Int(load_default=0, validate=validate.Range(min=0, max=2**63 - 1))
    limit = fields.Int(load_default=100, validate=validate.Range(min=1, max=500))


# What each key of a stored record's body tells about the borrower (None: nothing); a key
# not named here is ledgered as `field_record`.
RECORD_BODY_FACTS: dict[str, str | None] = {
    "arrived_at": "visit_outcome",
    "departed_at": "visit_outcome",
    "contacted_at": "visit_outcome",
    "outcome": "visit_outcome",
    "third_party_present": "visit_outcome",
    "debt_discussed_with_third_party": "visit_outcome",
    "promise_amount": "promise_to_pay",
    "promise_date": "promise_to_pay",
    "notes": "visit_notes",
    "location": "gps_fix",
    "signed_lat": "gps_fix",
    "signed_lon": "gps_fix",
    "borrower_acknowledged": "visit_outcome",
    "installments": "agreement_terms",
    "total_amount": "agreement_terms",
    "currency": "agreement_terms",
    "template_id": "agreement_terms",
    "template_version": "agreement_terms",
    "signed_at": "agreement_terms",
    "borrower_signature_sha256": "agreement_terms",
    "agent_signature_sha256": "agreement_terms",
    "content_hash": "agreement_terms",
    # Ids the reader already has, the kind of check, the agent's own badge, and blob hashes
    # (never the bytes).
    "confirmation_kind": None,
    "agreement_id": None,
    "case_id": None,
    "visit_id": None,
    "badge_number": None,
    "attachments": None,
}


class StoredRecordSchema(StrictSchema):
    seq = fields.Int()
    id = fields.Str()
    kind = fields.Str()
    agent_id = fields.Int()
    device_id = fields.Str()
    visit_id = fields.Int(metadata=borrower_subject("visit"))
    case_id = fields.Int()
    device_seq = fields.Int()
    recorded_at = fields.Str()
    received_at = fields.Str()
    status = fields.Str()
    flags = fields.List(fields.Nested(FlagSchema))
    content_hash = fields.Str(allow_none=True, metadata=borrower_fact("agreement_terms"))
    id_verification = fields.Str(allow_none=True, metadata=borrower_fact("id_result"))
    body = fields.Dict(metadata=borrower_facts_by_key("field_record", RECORD_BODY_FACTS))


class RecordPageSchema(StrictSchema):
    items = fields.List(fields.Nested(StoredRecordSchema))
    next_after = fields.Int(allow_none=True)


class DeviceHealthSchema(StrictSchema):
    device_id = fields.Str()
    agent_id = fields.Int()
    username = fields.Str()
    device_status = fields.Str()
    last_push_at = fields.Str(allow_none=True)
    last_pull_at = fields.Str(allow_none=True)
    clock_skew_s = fields.Float(allow_none=True)
    queued_count = fields.Int(allow_none=True)
    oldest_queued_at = fields.Str(allow_none=True)
    oldest_queued_age_s = fields.Float(allow_none=True)
    unconfirmed_purges = fields.Int()
    oldest_unconfirmed_purge_at = fields.Str(allow_none=True)
    rejected_records = fields.Int()
    state = fields.Str(metadata={"description": "ok | behind | blocked | revoked | never_synced"})
