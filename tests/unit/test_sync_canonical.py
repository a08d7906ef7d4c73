"""Canonical agreement bytes, content hash, and record digests."""

import hashlib
import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from sync.canonical import (
    CanonicalFormError,
    agreement_canonical_bytes,
    agreement_content_hash,
    record_digest,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "agreement-canonical-form.md"
EXAMPLE_HASH = "a95d68ab2a578ba746520ae9442c65529499bf47df2a7be691b21232e9e7356c"
EXAMPLE_BYTES = (
    b'{"agent_signature_sha256":"794d6233d8c1be44927ef3a886ee518f272e5137e5edab5160c7a930fa9e2fad",'
    b'"agreement_id":"3f2504e0-4f89-41d3-9a0c-0305e82c3301",'
    b'"borrower_signature_sha256":"8389c8f79d388f90f91eff5b0f8bf62326e99d7b94e7e936938597aa0f901bea",'
    b'"case_id":4012,"currency":"CNY","installments":[{"amount":"1000.00","due_date":"2025-04-15"},'
    b'{"amount":"1000.00","due_date":"2025-05-15"},{"amount":"1000.00","due_date":"2025-06-15"}],'
    b'"signed_at":"2025-03-14T10:42:07Z","signed_lat":"31.230416","signed_lon":"121.473700",'
    b'"template_id":"repayment-plan-zh","template_version":3,"total_amount":"3000.00",'
    b'"visit_id":88731}'
)


def example_agreement(**changes):
    """The worked example of docs/agreement-canonical-form.md, as a device sends it."""
    agreement = {
        "agreement_id": "3F2504E0-4F89-41D3-9A0C-0305E82C3301",
        "case_id": 4012,
        "visit_id": 88731,
        "currency": "CNY",
        "total_amount": "3000",
        "installments": [
            {"due_date": "2025-04-15", "amount": "1000.00"},
            {"due_date": "2025-05-15", "amount": "1000.0"},
            {"due_date": "2025-06-15", "amount": "1000"},
        ],
        "template_id": "repayment-plan-zh",
        "template_version": 3,
        "borrower_signature_sha256": hashlib.sha256(b"borrower signature png").hexdigest(),
        "agent_signature_sha256": hashlib.sha256(b"agent signature png").hexdigest().upper(),
        "signed_at": "2025-03-14T18:42:07.512+08:00",
        "signed_lat": 31.2304163,
        "signed_lon": "121.4737",
        "content_hash": EXAMPLE_HASH,
    }
    agreement.update(changes)
    return agreement


def doc_blocks():
    """The fenced blocks of the canonical-form document, in order."""
    return re.findall(r"```(\w+)\n(.*?)\n```", DOC.read_text(encoding="utf-8"), re.S)


def test_worked_example_matches_bytes_and_hash():
    assert agreement_canonical_bytes(example_agreement()) == EXAMPLE_BYTES
    assert agreement_content_hash(example_agreement()) == EXAMPLE_HASH
    assert hashlib.sha256(EXAMPLE_BYTES).hexdigest() == EXAMPLE_HASH


def test_document_states_the_same_example():
    blocks = doc_blocks()
    device_json = json.loads(blocks[0][1])
    assert agreement_canonical_bytes(device_json) == EXAMPLE_BYTES
    assert blocks[1][1].encode("utf-8") == EXAMPLE_BYTES
    assert blocks[2][1] == EXAMPLE_HASH
    assert device_json["content_hash"] == EXAMPLE_HASH
    assert f"{len(EXAMPLE_BYTES)} bytes" in DOC.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "changes",
    [
        {"agreement_id": "3f2504e0-4f89-41d3-9a0c-0305e82c3301"},
        {"total_amount": Decimal("3000.000")},
        {"total_amount": 3000},
        {
            "installments": [
                {"due_date": date(2025, 4, 15), "amount": Decimal("1000")},
                {"due_date": "2025-05-15", "amount": "1000.00"},
                {"due_date": "2025-06-15", "amount": 1000},
            ]
        },
        {"signed_at": datetime(2025, 3, 14, 10, 42, 7, 999_999, tzinfo=UTC)},
        {"signed_at": "2025-03-14T10:42:07Z"},
        {"signed_lat": "31.230416"},
        {"signed_lat": Decimal("31.2304155")},
        {"signed_lon": 121.4737},
        {"content_hash": "0" * 64, "notes": "not hashed"},
    ],
)
def test_equivalent_spellings_give_the_same_hash(changes):
    assert agreement_content_hash(example_agreement(**changes)) == EXAMPLE_HASH


@pytest.mark.parametrize(
    "changes",
    [
        {"agreement_id": "3f2504e0-4f89-41d3-9a0c-0305e82c3302"},
        {"case_id": 4013},
        {"visit_id": 88732},
        {"currency": "USD"},
        {"total_amount": "3000.01"},
        {"template_id": "repayment-plan-en"},
        {"template_version": 4},
        {"borrower_signature_sha256": "0" * 64},
        {"agent_signature_sha256": "1" * 64},
        {"signed_at": "2025-03-14T10:42:08Z"},
        {"signed_lat": "31.230417"},
        {"signed_lon": "-121.4737"},
        # Installments keep the order given: swapping two changes the hash.
        {
            "installments": [
                {"due_date": "2025-05-15", "amount": "1000"},
                {"due_date": "2025-04-15", "amount": "1000"},
                {"due_date": "2025-06-15", "amount": "1000"},
            ]
        },
    ],
)
def test_any_hashed_field_change_changes_the_hash(changes):
    assert agreement_content_hash(example_agreement(**changes)) != EXAMPLE_HASH


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"total_amount": 3000.0}, "total_amount"),
        ({"total_amount": "3000.005"}, "total_amount"),
        ({"total_amount": "-3000"}, "total_amount"),
        ({"total_amount": "0"}, "total_amount"),
        ({"total_amount": "1e3"}, "total_amount"),
        ({"total_amount": "1,000.00"}, "total_amount"),
        ({"total_amount": Decimal("NaN")}, "total_amount"),
        ({"total_amount": "1000000000000000"}, "total_amount"),
        ({"installments": []}, "installments"),
        ({"installments": {"due_date": "2025-04-15"}}, "installments"),
        ({"installments": [{"due_date": "2025-04-15", "amount": 10.5}]}, "installments[0].amount"),
        ({"installments": [{"due_date": "20250415", "amount": "1"}]}, "installments[0].due_date"),
        ({"installments": [{"amount": "1"}]}, "installments[0].due_date"),
        ({"signed_at": "2025-03-14T10:42:07"}, "signed_at"),
        ({"signed_at": datetime(2025, 3, 14, 10, 42, 7)}, "signed_at"),
        ({"signed_lat": 90.5}, "signed_lat"),
        ({"signed_lon": "east"}, "signed_lon"),
        ({"agreement_id": "not-a-uuid"}, "agreement_id"),
        ({"case_id": "4012"}, "case_id"),
        ({"case_id": True}, "case_id"),
        ({"template_version": 0}, "template_version"),
        ({"currency": "cny"}, "currency"),
        ({"template_id": "line\nbreak"}, "template_id"),
        ({"template_id": ""}, "template_id"),
        ({"borrower_signature_sha256": "abc"}, "borrower_signature_sha256"),
        ({"agent_signature_sha256": None}, "agent_signature_sha256"),
    ],
)
def test_values_without_a_canonical_form_are_refused(changes, field):
    with pytest.raises(CanonicalFormError) as raised:
        agreement_canonical_bytes(example_agreement(**changes))
    assert raised.value.field == field
    assert raised.value.code == "malformed"


def test_non_ascii_text_is_raw_utf8():
    canonical = agreement_canonical_bytes(example_agreement(template_id="还款计划-v3"))
    assert '"template_id":"还款计划-v3"'.encode() in canonical


def test_negative_zero_coordinate_loses_its_sign():
    canonical = agreement_canonical_bytes(example_agreement(signed_lon="-0.0000001"))
    assert b'"signed_lon":"0.000000"' in canonical


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ({"amount": 10}, {"amount": Decimal("10.00")}),
        ({"amount": 10.5}, {"amount": Decimal("10.50")}),
        ({"b": 1, "a": 2}, {"a": 2, "b": 1}),
        ({"note": None, "x": 1}, {"x": 1}),
        (
            {"at": datetime(2025, 3, 14, 18, 0, tzinfo=timezone(timedelta(hours=8)))},
            {"at": datetime(2025, 3, 14, 10, 0, tzinfo=UTC)},
        ),
        ({"at": datetime(2025, 3, 14, 10, 0, tzinfo=UTC)}, {"at": "2025-03-14T10:00:00Z"}),
        ({"day": date(2025, 3, 14)}, {"day": "2025-03-14"}),
        ({"items": (1, 2)}, {"items": [1, 2]}),
    ],
)
def test_record_digest_ignores_representation(left, right):
    assert record_digest("visit_report", left) == record_digest("visit_report", right)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ({"amount": 10}, {"amount": 11}),
        ({"items": [1, 2]}, {"items": [2, 1]}),
        ({"flag": True}, {"flag": False}),
        (
            {"at": datetime(2025, 3, 14, 10, 0, 0, 1, tzinfo=UTC)},
            {"at": datetime(2025, 3, 14, 10, 0, tzinfo=UTC)},
        ),
        ({"x": "a"}, {"x": "a", "y": "b"}),
    ],
)
def test_record_digest_tells_content_apart(left, right):
    assert record_digest("visit_report", left) != record_digest("visit_report", right)


def test_record_digest_covers_the_kind():
    assert record_digest("visit_report", {"x": 1}) != record_digest("agreement", {"x": 1})


@pytest.mark.parametrize(
    "body", [{"x": float("nan")}, {"x": {1, 2}}, {1: "non-text key"}, {"x": b"bytes"}]
)
def test_record_digest_refuses_unstable_values(body):
    with pytest.raises((TypeError, ValueError)):
        record_digest("visit_report", body)
