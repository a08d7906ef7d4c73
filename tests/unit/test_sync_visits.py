"""What a report or the end of its day makes of a visit (sync/visits.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from sync.visits import (
    ATTEMPTED_OUTCOMES,
    COMPLETED_OUTCOMES,
    VISIT_OUTCOMES,
    day_ends_at,
    status_after_reports,
    status_at_day_close,
)

DAY = date(2026, 11, 24)


def test_every_outcome_moves_a_visit_one_way_or_the_other():
    assert set(VISIT_OUTCOMES) == COMPLETED_OUTCOMES | ATTEMPTED_OUTCOMES
    assert not COMPLETED_OUTCOMES & ATTEMPTED_OUTCOMES


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        ("met_borrower", "completed"),
        ("promise_to_pay", "completed"),
        ("agreement_signed", "completed"),
        ("refused", "completed"),
        ("not_home", "attempted"),
        ("address_not_found", "attempted"),
        ("moved", "attempted"),
        ("third_party_met", "attempted"),
        ("other", "attempted"),
    ],
)
def test_report_to_status_for_every_outcome(outcome, status):
    assert status_after_reports("planned", [outcome]) == status
    # A report recorded offline that arrives after the day closed is a fact all the same.
    assert status_after_reports("missed", [outcome]) == status
    # A cancelled visit stays cancelled; the report is stored and flagged.
    assert status_after_reports("cancelled", [outcome]) == "cancelled"


@pytest.mark.parametrize(
    "outcomes",
    [["not_home", "met_borrower"], ["met_borrower", "not_home"], ["moved", "refused", "other"]],
)
def test_one_completed_outcome_completes_the_visit_in_any_order(outcomes):
    assert status_after_reports("attempted", outcomes) == "completed"
    assert status_after_reports("completed", outcomes) == "completed"


def test_no_report_changes_nothing():
    assert status_after_reports("planned", []) == "planned"


def test_the_day_ends_at_the_borrowers_midnight():
    assert day_ends_at(DAY, "Asia/Shanghai") == datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
    assert day_ends_at(DAY, "America/New_York") == datetime(2026, 11, 25, 5, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "now", "after"),
    [
        ("planned", datetime(2026, 11, 24, 15, 59, 59, tzinfo=UTC), "planned"),
        ("planned", datetime(2026, 11, 24, 16, 0, tzinfo=UTC), "missed"),
        ("attempted", datetime(2026, 11, 25, tzinfo=UTC), "attempted"),
        ("completed", datetime(2026, 11, 25, tzinfo=UTC), "completed"),
        ("cancelled", datetime(2026, 11, 25, tzinfo=UTC), "cancelled"),
        ("missed", datetime(2026, 11, 25, tzinfo=UTC), "missed"),
    ],
)
def test_day_close_misses_only_planned_visits_whose_day_ended(status, now, after):
    assert status_at_day_close(status, DAY, "Asia/Shanghai", now) == after
