"""The WatermelonDB front door's wire shapes: pull arguments, push body, and the change
sets (rows per table) it answers. Rows are allow-lists like every response schema here:
a column not named below never leaves, and every borrower fact is declared for the ledger."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, pre_load, validate

from schemas.common import DeferredObject, NestedOrNull, StrictSchema, aware_datetime, json_int
from schemas.disclosure import borrower_fact, borrower_subject
from schemas.sync import BlockedSchema
from sync.watermelon import TABLES, Table, row_json_schema

# JavaScript's largest safe integer: a WatermelonDB timestamp is a JS number.
MAX_STAMP = 2**53 - 1
_NULLS = ("", "null", "undefined")


class WatermelonPullArgsSchema(StrictSchema):
    last_pulled_at = fields.Int(
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=0, max=MAX_STAMP),
        metadata={"description": "the `timestamp` of the last pull applied; null: first sync"},
    )
    schema_version = fields.Int(
        load_default=1,
        validate=validate.Range(min=0, max=1_000_000),
        metadata={"description": "the app schema's version (this server speaks version 1)"},
    )
    migration = fields.Str(
        allow_none=True,
        load_default=None,
        validate=validate.Length(max=10_000),
        metadata={"description": "JSON of WatermelonDB's migration info, or null"},
    )
    send_created_as_updated = fields.Bool(
        load_default=False,
        metadata={"description": "the app syncs with sendCreatedAsUpdated: true"},
    )
    turbo = fields.Bool(load_default=False, metadata={"description": "unsafeTurbo: refused"})

    @pre_load
    def _nulls(self, data: Any, **_kwargs: object) -> Any:
        """`?last_pulled_at=null`, as a template string writes a JS null, means none."""
        if not hasattr(data, "items"):
            return data
        return {
            key: None if key in ("last_pulled_at", "migration") and value in _NULLS else value
            for key, value in data.items()
        }


def _pushed_table(table: Table) -> type[StrictSchema]:
    """One table's local changes. Each row is validated on its own as a native record (a
    bad one is answered in `record_outcomes`, not by refusing the push): loaded as it is,
    documented with the table's columns."""
    row = DeferredObject(metadata={"document": row_json_schema(table)})
    name = "".join(part.title() for part in table.name.split("_"))
    return type(
        f"Pushed{name}Schema",
        (StrictSchema,),
        {
            "__module__": __name__,
            "__doc__": f"Local changes to `{table.name}`.",
            "created": fields.List(row, load_default=list),
            "updated": fields.List(row, load_default=list),
            "deleted": fields.List(
                fields.Str(validate=validate.Length(max=256)), load_default=list
            ),
        },
    )


WatermelonPushChangesSchema = type(
    "WatermelonPushChangesSchema",
    (StrictSchema,),
    {
        "__module__": __name__,
        "__doc__": "Every table of the app schema; rows of `visits` and `record_outcomes` "
        "and deleted ids are not stored (docs/watermelondb.md).",
        **{table.name: fields.Nested(_pushed_table(table)) for table in TABLES},
    },
)


class WatermelonPushSchema(StrictSchema):
    last_pulled_at = json_int(
        required=True,
        validate=validate.Range(min=0, max=MAX_STAMP),
        metadata={"description": "the `lastPulledAt` synchronize() passes to pushChanges"},
    )
    device_time = aware_datetime(
        metadata={"description": "phone clock at send; clock-skew checks need it"}
    )
    changes = fields.Nested(
        WatermelonPushChangesSchema,
        required=True,
        metadata={"description": "{table: {created: [rows], updated: [rows], deleted: [ids]}}"},
    )


class VisitRowSchema(StrictSchema):
    """A visit with its borrower card flattened into columns."""

    id = fields.Str()
    case_id = fields.Int()
    case_external_id = fields.Str()
    visit_date = fields.Str()
    window_start = fields.Str(allow_none=True)
    window_end = fields.Str(allow_none=True)
    route_order = fields.Int(allow_none=True)
    purpose = fields.Str()
    status = fields.Str()
    notice_kind = fields.Str(allow_none=True)
    notice_given_at = fields.Str(allow_none=True)
    version = fields.Int()
    visit_updated_at = fields.Str()
    card_available_from = fields.Int(allow_none=True)
    borrower_id = fields.Int(metadata=borrower_subject("borrower"))
    card_expires_at = fields.Int(allow_none=True)
    display_name = fields.Str(metadata=borrower_fact("display_name"))
    home_address = fields.Str(allow_none=True, metadata=borrower_fact("home_address"))
    home_lat = fields.Float(allow_none=True, metadata=borrower_fact("home_geo"))
    home_lon = fields.Float(allow_none=True, metadata=borrower_fact("home_geo"))
    phone_masked = fields.Str(metadata=borrower_fact("phone_masked"))
    time_zone = fields.Str(allow_none=True, metadata=borrower_fact("time_zone"))
    product = fields.Str(metadata=borrower_fact("product"))
    overdue_amount = fields.Str(metadata=borrower_fact("overdue_amount"))
    currency = fields.Str(metadata=borrower_fact("currency"))
    days_past_due = fields.Int(metadata=borrower_fact("days_past_due"))
    last_payment_date = fields.Str(allow_none=True, metadata=borrower_fact("last_payment_date"))
    last_payment_amount = fields.Str(allow_none=True, metadata=borrower_fact("last_payment_amount"))
    flag_do_not_visit = fields.Bool(allow_none=True, metadata=borrower_fact("case_flags"))
    flag_hardship = fields.Bool(allow_none=True, metadata=borrower_fact("case_flags"))
    flag_legal_hold = fields.Bool(allow_none=True, metadata=borrower_fact("case_flags"))
    flag_dispute = fields.Bool(allow_none=True, metadata=borrower_fact("case_flags"))
    flag_deceased = fields.Bool(allow_none=True, metadata=borrower_fact("case_flags"))
    dispatcher_notes = fields.Str(allow_none=True, metadata=borrower_fact("dispatcher_notes"))
    repayment_status = fields.Str(allow_none=True, metadata=borrower_fact("repayment_status"))


class OutcomeRowSchema(StrictSchema):
    """What became of one record the phone pushed, as the agent may see it."""

    id = fields.Str()
    record_id = fields.Str(metadata=borrower_subject("record"))
    record_kind = fields.Str(allow_none=True)
    status = fields.Str()
    reason = fields.Str(allow_none=True)
    message = fields.Str(allow_none=True)
    flags = fields.Str(
        allow_none=True,
        metadata=borrower_fact("flag_details", description="JSON list of the agent's flags"),
    )
    content_hash = fields.Str(allow_none=True)
    original_status = fields.Str(allow_none=True)
    receipt = fields.Str(allow_none=True, metadata={"description": "JSON signed receipt"})
    id_verification = fields.Str(allow_none=True, metadata=borrower_fact("id_result"))


class RecordRowSchema(StrictSchema):
    """A phone table's row as the server sends it: never a record's content."""

    id = fields.Str()


class TypedIdWipeSchema(StrictSchema):
    """An answered borrower_identity confirmation: the typed characters are cleared."""

    id = fields.Str()
    id_last6 = fields.Str(allow_none=True)


def _table_changes(row: type[StrictSchema]) -> type[StrictSchema]:
    name = row.__name__.removesuffix("Schema").removesuffix("Row")
    return type(
        f"{name}ChangesSchema",
        (StrictSchema,),
        {
            "__module__": __name__,
            "__doc__": "Rows created, updated and deleted (ids) in one table.",
            "created": fields.List(fields.Nested(row)),
            "updated": fields.List(fields.Nested(row)),
            "deleted": fields.List(fields.Str()),
        },
    )


_RECORD_CHANGES = _table_changes(RecordRowSchema)


class WatermelonChangesSchema(StrictSchema):
    visits = fields.Nested(_table_changes(VisitRowSchema))
    record_outcomes = fields.Nested(_table_changes(OutcomeRowSchema))
    visit_reports = fields.Nested(_RECORD_CHANGES)
    id_confirmations = fields.Nested(_table_changes(TypedIdWipeSchema))
    agreements = fields.Nested(_RECORD_CHANGES)
    contact_attempts = fields.Nested(_RECORD_CHANGES)


class WatermelonPullResultSchema(StrictSchema):
    changes = fields.Nested(WatermelonChangesSchema)
    timestamp = fields.Int(metadata={"description": "keep as lastPulledAt (server clock, ms)"})
    server_time = aware_datetime()
    has_more = fields.Bool(metadata={"description": "sync again: more was waiting"})
    blocked = NestedOrNull(BlockedSchema)


class WatermelonPushResultSchema(StrictSchema):
    server_time = aware_datetime()
    experimental_rejected_ids = fields.Dict(
        keys=fields.Str(),
        values=fields.List(fields.Str()),
        data_key="experimentalRejectedIds",
        metadata={"description": "rows left unsynced on the phone, pushed again next time"},
    )
    purges_confirmed = fields.List(fields.Int())
