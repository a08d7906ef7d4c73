"""Payment import rows and reports, the promises worklist and the card's repayment status."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from marshmallow import fields, validate

from schemas.common import NestedOrNull, StrictSchema, business_date, money
from schemas.disclosure import borrower_fact, borrower_subject
from server.domain.repayment import NEXT_ACTIONS, STATES

_ID_TEXT = r"[A-Za-z0-9._:/-]{1,64}"
_CURRENCY_TEXT = r"[A-Z]{3}"
_SOURCE_TEXT = r"[a-z0-9_]{1,32}"
_ID = validate.Regexp(f"^{_ID_TEXT}$", error="1-64 of A-Z a-z 0-9 . _ : / -")
_POSITIVE = validate.Range(min=0, min_inclusive=False, error="must be greater than 0")
PAID_AT_RANGE = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 12, 31, tzinfo=UTC))
DEFAULT_SOURCE = "core_banking"
_KINDS = ("promise", "instalment")


class PaymentRowSchema(StrictSchema):
    """One payment of an import (JSON Lines object or CSV row)."""

    payment_id = fields.Str(required=True, validate=_ID)
    case_external_id = fields.Str(required=True, validate=_ID)
    amount = money(required=True, validate=_POSITIVE)
    currency = fields.Str(required=True, validate=validate.Regexp(f"^{_CURRENCY_TEXT}$"))
    # A bank's time without an offset is ambiguous by hours, which can move a payment past a
    # deadline: refused rather than read as UTC.
    paid_at = fields.AwareDateTime(
        required=True,
        format="iso",
        validate=validate.Range(min=PAID_AT_RANGE[0], max=PAID_AT_RANGE[1]),
        metadata={"description": "ISO 8601 with a UTC offset"},
    )
    source = fields.Str(
        load_default=DEFAULT_SOURCE,
        validate=validate.Regexp(f"^{_SOURCE_TEXT}$", error="1-32 of a-z 0-9 _"),
        metadata={"description": "how the bank received it: bank_transfer, card, cash, ..."},
    )


_FAST = {
    "payment_id": re.compile(_ID_TEXT),
    "case_external_id": re.compile(_ID_TEXT),
    "amount": re.compile(r"[0-9]{1,15}(\.[0-9]{1,2})?"),
    "currency": re.compile(_CURRENCY_TEXT),
    "paid_at": re.compile(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
    ),
    "source": re.compile(_SOURCE_TEXT),
}
_REQUIRED = frozenset(_FAST) - {"source"}
_CENT = Decimal("0.01")


def fast_load_row(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    """The row exactly as PaymentRowSchema loads it, when it is plainly well formed: text
    fields in their simplest spelling. None: anything else, which the schema then decides
    (and explains). A large import spends most of its time in the schema otherwise;
    tests/unit/test_payment_rows.py holds the two to the same answers."""
    if not _REQUIRED <= raw.keys() <= _FAST.keys():
        return None
    for name, value in raw.items():
        if type(value) is not str or not _FAST[name].fullmatch(value):
            return None
    amount = Decimal(raw["amount"])
    try:
        paid_at = datetime.fromisoformat(raw["paid_at"].replace("Z", "+00:00"))
    except ValueError:
        return None
    if amount <= 0 or not PAID_AT_RANGE[0] <= paid_at <= PAID_AT_RANGE[1]:
        return None
    return {
        "payment_id": raw["payment_id"],
        "case_external_id": raw["case_external_id"],
        "amount": amount.quantize(_CENT),
        "currency": raw["currency"],
        "paid_at": paid_at,
        "source": raw.get("source", DEFAULT_SOURCE),
    }


class PaymentImportArgsSchema(StrictSchema):
    format = fields.Str(
        validate=validate.OneOf(["jsonl", "csv"]),
        metadata={"description": "overrides the Content-Type guess"},
    )


class PaymentImportErrorSchema(StrictSchema):
    row = fields.Int(
        required=True, metadata={"description": "1-based data row (CSV header excluded)"}
    )
    payment_id = fields.Str(allow_none=True)
    field = fields.Str(allow_none=True)
    message = fields.Str(required=True)


class PaymentImportReportSchema(StrictSchema):
    """Counts and row errors; they echo the importer's own ids, never a borrower value."""

    format = fields.Str()
    total_rows = fields.Int()
    created = fields.Int()
    unchanged = fields.Int(metadata={"description": "already imported with the same content"})
    rejected = fields.Int()
    errors = fields.List(fields.Nested(PaymentImportErrorSchema))
    errors_truncated = fields.Bool()


class PromiseWorklistArgsSchema(StrictSchema):
    day = business_date(
        metadata={"description": "judge on this day (default: today in each borrower's zone)"}
    )
    team = fields.Str(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "only items recorded by agents of this region"},
    )
    agent_id = fields.Int(
        validate=validate.Range(min=1, max=2**63 - 1),
        metadata={"description": "only items recorded by this agent"},
    )
    after = fields.Int(
        load_default=0,
        validate=validate.Range(min=0, max=2**63 - 1),
        metadata={"description": "cases with an id above this (the last page's next_after)"},
    )
    limit = fields.Int(
        load_default=50,
        validate=validate.Range(min=1, max=200),
        metadata={"description": "cases per page; a case's items are never split"},
    )


class RepaymentStatusSchema(StrictSchema):
    """Where one promise or instalment stands on the day asked about."""

    kind = fields.Str(validate=validate.OneOf(_KINDS))
    state = fields.Str(validate=validate.OneOf(STATES))
    due_date = fields.Str()
    amount_due = fields.Str(metadata={"description": "what is still owed on it"})
    currency = fields.Str()


class WorklistStatusSchema(RepaymentStatusSchema):
    deadline = fields.Str(metadata={"description": "the due date plus the grace days"})
    paid_on_time = fields.Str()
    paid_late = fields.Str()


class PromiseTermsSchema(StrictSchema):
    amount = fields.Str()
    due_date = fields.Str()
    made_on = fields.Str(metadata={"description": "the day it was made, borrower's time"})


class InstalmentTermsSchema(StrictSchema):
    agreement_id = fields.Str()
    number = fields.Int(metadata={"description": "1 for the first instalment"})
    amount = fields.Str()
    due_date = fields.Str()


class NextActionSchema(StrictSchema):
    action = fields.Str(validate=validate.OneOf(NEXT_ACTIONS))
    reason = fields.Str()


class PromiseWorklistItemSchema(StrictSchema):
    """A broken promise or an overdue instalment, and what to do next."""

    case_id = fields.Int(metadata=borrower_subject("case"))
    case_external_id = fields.Str()
    kind = fields.Str(validate=validate.OneOf(_KINDS))
    obligation_id = fields.Str()
    source = fields.Str(metadata={"description": "what recorded it: visit_report, agreement…"})
    agent_id = fields.Int(allow_none=True, metadata={"description": "who recorded it"})
    visit_id = fields.Int(allow_none=True)
    promise = NestedOrNull(PromiseTermsSchema, metadata=borrower_fact("promise_to_pay"))
    instalment = NestedOrNull(InstalmentTermsSchema, metadata=borrower_fact("agreement_terms"))
    status = fields.Nested(WorklistStatusSchema, metadata=borrower_fact("repayment_status"))
    # The action also tells whether the borrower asked not to be phoned or written to.
    next_action = fields.Nested(NextActionSchema, metadata=borrower_fact("borrower_requests"))


class PromiseWorklistSchema(StrictSchema):
    day = fields.Str(allow_none=True)
    items = fields.List(fields.Nested(PromiseWorklistItemSchema))
    next_after = fields.Int(allow_none=True)
