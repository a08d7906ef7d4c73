"""The WatermelonDB mapping, with plain values: rows to native records, cards to rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from sync.watermelon import (
    RECORD_TABLES,
    app_schema_js,
    ms_to_iso,
    native_record,
    next_stamp,
    outcome_row,
    visit_row,
)

AT = int(datetime(2026, 11, 24, 10, 0, tzinfo=UTC).timestamp() * 1000)
RID = "2e8606e9-b78b-4986-94cb-36c63fbceb43"


def test_a_report_row_becomes_the_native_record():
    row = {
        "id": RID,
        "_status": "created",
        "_changed": "",
        "visit_id": "25",
        "device_seq": 3,
        "recorded_at": AT,
        "arrived_at": AT - 60_000,
        "departed_at": None,
        "contacted_at": None,
        "outcome": "not_home",
        "promise_amount": "",
        "notes": "Left a card.",
        "location_lat": 31.2,
        "location_lon": 121.4,
        "location_accuracy_m": 8,
        "third_party_present": False,
        "attachments": '["' + "ab" * 32 + '"]',
    }
    assert native_record(RECORD_TABLES["visit_reports"], row) == {
        "id": RID,
        "kind": "visit_report",
        "visit_id": 25,
        "device_seq": 3,
        "recorded_at": "2026-11-24T10:00:00.000Z",
        "body": {
            "arrived_at": "2026-11-24T09:59:00.000Z",
            "outcome": "not_home",
            "notes": "Left a card.",
            "third_party_present": False,
            "attachments": ["ab" * 32],
            "location": {"lat": 31.2, "lon": 121.4, "accuracy_m": 8},
        },
    }


def test_an_agreement_row_names_itself_and_its_visit_in_the_body():
    row = {"id": RID, "visit_id": "25", "device_seq": None, "recorded_at": AT, "case_id": 7}
    record = native_record(RECORD_TABLES["agreements"], row)
    assert record["device_seq"] == 0
    assert record["body"] == {"case_id": 7, "agreement_id": RID, "visit_id": 25}


@pytest.mark.parametrize(
    ("column", "value"),
    [("visit_id", "v-25"), ("recorded_at", "yesterday"), ("recorded_at", 1e300)],
)
def test_odd_values_are_left_for_validation_to_name(column, value):
    row = {"id": RID, "visit_id": "25", "recorded_at": AT, column: value}
    assert native_record(RECORD_TABLES["contact_attempts"], row)[column] == value


def test_unknown_columns_stay_in_the_body_so_the_record_is_refused_naming_them():
    row = {"id": RID, "visit_id": "1", "recorded_at": AT, "mood": "grumpy"}
    assert native_record(RECORD_TABLES["contact_attempts"], row)["body"] == {"mood": "grumpy"}


def test_a_visit_row_carries_only_what_the_card_discloses():
    view = {
        "id": 27,
        "case_id": 206,
        "visit_date": "2026-11-24",
        "status": "planned",
        "updated_at": "2026-11-24T10:23:02Z",
        "card_available_from": None,
        "borrower": {
            "borrower_id": 189,
            "case_id": 206,
            "display_name": "Sun Xia",
            "home_geo": {"lat": 31.2, "lon": 121.5},
            "phone_masked": ["152****8255"],
            "case_flags": {"hardship": True},
            "expires_at": datetime(2026, 11, 24, 22, tzinfo=UTC),
        },
    }
    row = visit_row(view)
    assert row["id"] == "27" and row["visit_updated_at"] == "2026-11-24T10:23:02Z"
    assert (row["home_lat"], row["home_lon"], row["display_name"]) == (31.2, 121.5, "Sun Xia")
    assert json.loads(row["phone_masked"]) == ["152****8255"]
    assert row["flag_hardship"] is True and row["flag_do_not_visit"] is None
    assert row["card_expires_at"] == int(datetime(2026, 11, 24, 22, tzinfo=UTC).timestamp() * 1000)
    for withheld in ("home_address", "time_zone", "overdue_amount", "dispatcher_notes"):
        assert withheld not in row
    assert "display_name" not in visit_row({**view, "borrower": None})


def test_an_outcome_row_sends_no_empty_fact():
    outcome = {"record_id": RID, "status": "accepted", "flags": [], "receipt": None}
    row = outcome_row(outcome, "visit_report")
    assert row["flags"] is None and row["receipt"] is None and row["id"] == RID


def test_stamps_only_move_forward():
    assert next_stamp(1000, None) == 1000
    assert next_stamp(1000, 999) == 1000
    assert next_stamp(1000, 1000) == 1001
    assert next_stamp(900, 1000) == 1001


def test_moments_and_the_schema_text():
    assert ms_to_iso(0) == "1970-01-01T00:00:00.000Z"
    assert ms_to_iso(True) is True and ms_to_iso(float("nan")) != ms_to_iso(0)
    assert "name: 'record_outcomes'" in app_schema_js()
