"""The visit register's rules and spreadsheet-safe CSV cells, with plain values."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from server.domain.csv_cells import cell, to_csv
from server.domain.visit_register import (
    badge_before_contact,
    contact_moment,
    distance_from_home,
    local_time,
    register_lines,
    review_keys,
)

T = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
GRACE = 120


def at(minute: int, second: int = 0) -> datetime:
    return T.replace(minute=minute, second=second)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"arrived_at": "2026-11-24T02:10:00Z", "outcome": "promise_to_pay"}, at(10)),
        (
            {
                "arrived_at": "2026-11-24T02:10:00Z",
                "contacted_at": "2026-11-24T02:12:00Z",
                "outcome": "refused",
            },
            at(12),
        ),
        ({"arrived_at": "2026-11-24T02:10:00Z", "outcome": "not_home"}, None),
        ({"arrived_at": "2026-11-24T02:10:00Z", "outcome": "address_not_found"}, None),
        ({"arrived_at": "not a time", "outcome": "refused"}, None),
    ],
)
def test_contact_begins_when_the_report_says(body, expected):
    assert contact_moment(body) == expected


@pytest.mark.parametrize(
    ("contact", "badges", "expected"),
    [
        (at(10), [at(9)], True),
        (at(10), [at(10)], True),
        (at(10), [at(12)], True),  # inside the grace
        (at(10), [at(12, 1)], False),  # just past it
        (at(10), [at(30), at(9)], True),  # any badge in time counts
        (at(10), [], False),
        (None, [], None),  # nobody met: nothing to precede
    ],
)
def test_badge_before_contact(contact, badges, expected):
    assert badge_before_contact(contact, badges, GRACE) == expected


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    [
        ("2026-11-24T01:16:00.000000Z", "Asia/Shanghai", "09:16"),
        ("2026-11-24T15:30:00Z", "America/New_York", "10:30"),
        ("2026-11-24T01:16:00Z", None, None),
        ("2026-11-24T01:16:00Z", "Not/AZone", None),
        (None, "Asia/Shanghai", None),
    ],
)
def test_times_at_the_door_on_the_borrowers_clock(text, zone, expected):
    assert local_time(text, zone) == expected


def test_distance_from_home_needs_both_places():
    assert distance_from_home({"lat": 31.2, "lon": 121.4}, 31.2, 121.4) == 0.0
    assert distance_from_home({"lat": 31.201, "lon": 121.4}, 31.2, 121.4) == pytest.approx(
        111.2, abs=0.1
    )
    assert distance_from_home(None, 31.2, 121.4) is None
    assert distance_from_home({"lat": 31.2, "lon": 121.4}, None, None) is None
    assert distance_from_home({"lat": "31.2", "lon": 121.4}, 31.2, 121.4) is None


def _visit(visit_id: int, status: str = "planned", **extra) -> dict:
    return {
        "visit_id": visit_id,
        "visit_date": "2026-11-24",
        "agent_id": 7,
        "agent_name": "agent7",
        "team": "East",
        "case_id": visit_id,
        "case_external_id": f"C-{visit_id}",
        "borrower_name": f"Borrower {visit_id}",
        "purpose": "home_visit",
        "window_start": None,
        "window_end": None,
        "status": status,
        "home_lat": 31.2,
        "home_lon": 121.4,
        "time_zone": "Asia/Shanghai",
        **extra,
    }


def _record(rid: str, kind: str, visit_id: int, recorded: datetime, body: dict, flags=()):
    return {
        "id": rid,
        "kind": kind,
        "visit_id": visit_id,
        "agent_id": 7,
        "recorded_at": recorded.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "outcome": {"status": "flagged" if flags else "accepted", "flags": list(flags)},
        "body": body,
    }


def test_lines_one_per_report_and_one_per_visit_without():
    badge = _record("b", "id_confirmation", 1, at(9), {"confirmation_kind": "agent_credential"})
    first = _record(
        "r1",
        "visit_report",
        1,
        at(11),
        {"arrived_at": "2026-11-24T02:10:00Z", "outcome": "not_home"},
    )
    mismatch = _record(
        "i",
        "id_confirmation",
        1,
        at(41),
        {"confirmation_kind": "borrower_identity"},
        [{"code": "id_mismatch"}],
    )
    second = _record(
        "r2",
        "visit_report",
        1,
        at(45),
        {
            "arrived_at": "2026-11-24T02:40:00Z",
            "outcome": "refused",
            "location": {"lat": 31.2, "lon": 121.4, "accuracy_m": 5},
        },
        [{"code": "no_prior_notice"}],
    )
    records = [badge, first, mismatch, second]
    reviews = {("r2", "no_prior_notice"): {"status": "resolved", "disposition": "justified"}}
    lines = register_lines(
        [_visit(1, "completed"), _visit(2, "missed"), _visit(3, "cancelled"), _visit(4)],
        records,
        reviews,
        grace_s=GRACE,
    )
    assert [(line["visit_id"], line["attempt"]) for line in lines] == [
        (1, "reported"),
        (1, "reported"),
        (2, "missed"),
        (3, "cancelled"),
        (4, "not_attempted"),
    ]
    one, two = lines[0], lines[1]
    assert (one["record_id"], one["badge_shown_before_contact"], one["identity_result"]) == (
        "r1",
        None,  # not home: nobody to show the badge to
        None,
    )
    assert (two["record_id"], two["badge_shown_before_contact"], two["identity_result"]) == (
        "r2",
        True,
        "mismatch",  # the check made at this attempt, not the first
    )
    assert two["distance_from_home_m"] == 0.0
    assert (two["arrived_local"], two["departed_local"]) == ("10:40", None)  # UTC+8
    assert lines[2]["arrived_at"] is None and set(lines[2]) == set(one)  # one shape
    assert two["flags"] == [
        {
            "record_id": "r2",
            "code": "no_prior_notice",
            "review_status": "resolved",
            "review_disposition": "justified",
        },
        {
            "record_id": "i",
            "code": "id_mismatch",
            "review_status": None,
            "review_disposition": None,
        },
    ]
    assert review_keys(records) == [("i", "id_mismatch"), ("r2", "no_prior_notice")]


def test_a_badge_that_was_not_the_agents_does_not_count():
    wrong = _record(
        "b",
        "id_confirmation",
        1,
        at(9),
        {"confirmation_kind": "agent_credential"},
        [{"code": "badge_mismatch"}],
    )
    report = _record(
        "r", "visit_report", 1, at(20), {"arrived_at": "2026-11-24T02:10:00Z", "outcome": "refused"}
    )
    (line,) = register_lines([_visit(1)], [wrong, report], {}, grace_s=GRACE)
    assert line["badge_shown_before_contact"] is False


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+31 20 555", "'+31 20 555"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=cmd", "'\t=cmd"),
        ("\r=cmd", "'\r=cmd"),
        ("Borrower 1", "Borrower 1"),
        ("a=b", "a=b"),
        (12.5, 12.5),
        (None, None),
        (["=a", "b"], "'=a;b"),
    ],
)
def test_cells_that_would_run_as_formulas_are_quoted(value, expected):
    assert cell(value) == expected


def test_csv_round_trips_through_a_reader():
    text = to_csv(["name", "n"], [{"name": '=HYPERLINK("x","y"), "quoted"', "n": 3}])
    assert text.endswith("\r\n")
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert row == {"name": '\'=HYPERLINK("x","y"), "quoted"', "n": "3"}
