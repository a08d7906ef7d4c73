"""The privacy officer's reports: ids, field names, roles, times and purposes, never values."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from schemas.audit import ExposureSchema
from schemas.common import StrictSchema, aware_datetime
from server.domain.anomaly_rules import ANOMALY_KINDS

PURGE_STATUSES = ("held", "purge_pending", "purged", "not_tracked")


class PeriodArgsSchema(StrictSchema):
    since = aware_datetime(metadata={"description": "from this time (inclusive)"})
    until = aware_datetime(metadata={"description": "to this time (exclusive); default now"})

    @validates_schema
    def _since_before_until(self, data, **_kwargs):
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ValidationError("must be before until", field_name="since")


def _after() -> fields.Int:
    return fields.Int(
        load_default=0,
        validate=validate.Range(min=0),
        metadata={"description": "entries after this seq"},
    )


# -- borrower disclosure report ------------------------------------------------------------


class DisclosureQueryArgsSchema(PeriodArgsSchema):
    format = fields.Str(load_default="json", validate=validate.OneOf(["json", "csv", "html"]))
    after = _after()
    limit = fields.Int(load_default=1000, validate=validate.Range(min=1, max=10000))


class DisclosureSchema(StrictSchema):
    """One disclosure: who received which fields, when, through what, and why."""

    seq = fields.Int()
    occurred_at = fields.Str()
    user_id = fields.Int()
    username = fields.Str(allow_none=True)
    role = fields.Str()
    device_id = fields.Str(allow_none=True)
    case_id = fields.Int(allow_none=True)
    visit_id = fields.Int(allow_none=True)
    fields_ = fields.List(fields.Str(), data_key="fields")
    purpose = fields.Str()
    endpoint = fields.Str()
    request_id = fields.Str()
    outcome = fields.Str()
    purge_status = fields.Str(
        allow_none=True,
        validate=validate.OneOf(PURGE_STATUSES),
        metadata={"description": "the device's copy: held, purge_pending, purged, not_tracked"},
    )
    purge_reason = fields.Str(allow_none=True)
    purge_ordered_at = fields.Str(allow_none=True)
    purge_confirmed_at = fields.Str(allow_none=True)


class RecipientSchema(StrictSchema):
    user_id = fields.Int()
    username = fields.Str(allow_none=True)
    role = fields.Str()
    entries = fields.Int()
    first_at = fields.Str()
    last_at = fields.Str()


class DisclosureSummarySchema(StrictSchema):
    entries = fields.Int()
    recipients = fields.Int()
    devices = fields.Int()
    first_at = fields.Str(allow_none=True)
    last_at = fields.Str(allow_none=True)
    fields_ = fields.List(fields.Str(), data_key="fields")


class DisclosureReportSchema(StrictSchema):
    borrower_id = fields.Int()
    controller = fields.Str()
    generated_at = aware_datetime()
    since = aware_datetime()
    until = aware_datetime()
    retention_days = fields.Int()
    summary = fields.Nested(DisclosureSummarySchema)
    recipients = fields.List(fields.Nested(RecipientSchema))
    items = fields.List(fields.Nested(DisclosureSchema))
    next_after = fields.Int(allow_none=True)


# -- per-agent and per-device history -------------------------------------------------------


class HistoryQueryArgsSchema(PeriodArgsSchema):
    after = _after()
    limit = fields.Int(load_default=1000, validate=validate.Range(min=1, max=5000))


class HistoryEntrySchema(ExposureSchema):
    """A ledger entry as history shows it: the audit columns without the chain's hashes."""

    class Meta(StrictSchema.Meta):
        exclude = ("request_id", "outcome", "prev_hash", "hash")


class JustifyingVisitSchema(StrictSchema):
    """A visit as it stood (visit_history version) when the entry was served."""

    visit_id = fields.Int()
    case_id = fields.Int(allow_none=True)
    version = fields.Int(allow_none=True)
    assigned_agent_id = fields.Int(allow_none=True)
    visit_date = fields.Str(allow_none=True)
    status = fields.Str(allow_none=True)
    recipient_id = fields.Int()
    assigned_to_recipient = fields.Bool()


class HistoryDaySchema(StrictSchema):
    date = fields.Str()
    entries = fields.List(fields.Nested(HistoryEntrySchema))
    visits = fields.List(fields.Nested(JustifyingVisitSchema))


class HistorySchema(StrictSchema):
    user_id = fields.Int(allow_none=True)
    device_id = fields.Str(allow_none=True)
    time_zone = fields.Str()
    since = aware_datetime()
    until = aware_datetime()
    days = fields.List(fields.Nested(HistoryDaySchema))
    next_after = fields.Int(allow_none=True)


# -- anomalies ----------------------------------------------------------------------------


class AnomalyQueryArgsSchema(PeriodArgsSchema):
    kind = fields.List(
        fields.Str(validate=validate.OneOf(ANOMALY_KINDS)),
        metadata={"description": "repeat to ask for several kinds; default all"},
    )
    after = fields.Int(
        load_default=0,
        validate=validate.Range(min=0),
        metadata={"description": "anomalies after this position"},
    )
    limit = fields.Int(load_default=200, validate=validate.Range(min=1, max=1000))


class AnomalyDetailSchema(StrictSchema):
    reason = fields.Str(allow_none=True)
    assigned_agent_id = fields.Int(allow_none=True)
    time_zone = fields.Str()
    working_hours = fields.Str()
    borrowers = fields.Int()
    baseline_median = fields.Float()
    threshold = fields.Float()
    visits = fields.Int()
    reported_visits = fields.Int()
    purge_ordered_at = fields.Str()
    hours_unacknowledged = fields.Float()


class AnomalySchema(StrictSchema):
    kind = fields.Str(validate=validate.OneOf(ANOMALY_KINDS))
    user_id = fields.Int(allow_none=True)
    device_id = fields.Str(allow_none=True)
    borrower_id = fields.Int(allow_none=True)
    visit_id = fields.Int(allow_none=True)
    day = fields.Str(allow_none=True, metadata={"description": "local day of the recipient"})
    first_at = fields.Str(allow_none=True)
    last_at = fields.Str(allow_none=True)
    seqs = fields.List(fields.Int(), metadata={"description": "ledger entries behind it"})
    seq_count = fields.Int(metadata={"description": "all entries, when seqs is capped"})
    detail = fields.Nested(AnomalyDetailSchema)


class AnomalyPageSchema(StrictSchema):
    since = aware_datetime()
    until = aware_datetime()
    kinds = fields.List(fields.Str())
    total = fields.Int()
    items = fields.List(fields.Nested(AnomalySchema))
    next_after = fields.Int(allow_none=True)


# -- records of processing ------------------------------------------------------------------


class RecordsOfProcessingQueryArgsSchema(StrictSchema):
    format = fields.Str(load_default="json", validate=validate.OneOf(["json", "html"]))


class ProcessingPurposeSchema(StrictSchema):
    name = fields.Str()
    description = fields.Str()
    visit_purposes = fields.List(fields.Str())
    roles = fields.List(fields.Str())


class DataSubjectSchema(StrictSchema):
    category = fields.Str()
    data = fields.List(fields.Str())


class RecipientCategorySchema(StrictSchema):
    role = fields.Str()
    fields_by_purpose = fields.Dict(keys=fields.Str(), values=fields.List(fields.Str()))


class RetentionRuleSchema(StrictSchema):
    kind = fields.Str()
    days = fields.Int()
    clock = fields.Str()
    basis = fields.Str()


class RecordsOfProcessingSchema(StrictSchema):
    controller = fields.Str()
    generated_at = aware_datetime()
    purposes = fields.List(fields.Nested(ProcessingPurposeSchema))
    data_subjects = fields.List(fields.Nested(DataSubjectSchema))
    disclosable_fields = fields.List(fields.Str())
    never_disclosed = fields.List(fields.Str())
    recipients = fields.List(fields.Nested(RecipientCategorySchema))
    retention = fields.List(fields.Nested(RetentionRuleSchema))
    compliance_profile = fields.Dict(keys=fields.Str())
    security_measures = fields.List(fields.Str())
