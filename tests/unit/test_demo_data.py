"""The seeded Shanghai demo data set: shape, determinism and a plausible day of visits."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date
from functools import cache
from typing import Any

import pytest

from server.demo.data import (
    demo_agents,
    demo_case_rows,
    demo_staff,
    demo_visit_plan,
    national_id_check_char,
)
from server.domain.routing import haversine_m

DAY = date(2026, 11, 24)
CASE_KEYS = [
    "case_external_id", "borrower_external_id", "full_name", "national_id", "phones",
    "home_address", "home_lat", "home_lon", "work_address", "employer", "date_of_birth",
    "contacts", "income", "time_zone", "product", "overdue_amount", "currency",
    "days_past_due", "last_payment_date", "last_payment_amount", "hardship", "do_not_visit",
    "legal_hold", "status",
]  # fmt: skip
AGENT_KEYS = [
    "username", "display_name", "badge_number", "region", "home_lat", "home_lon", "time_zone",
]  # fmt: skip
VISIT_KEYS = [
    "case_external_id", "agent_username", "visit_date", "window_start", "window_end",
    "purpose", "notes", "notice_kind", "route_order",
]  # fmt: skip
MOBILE = re.compile(r"1(3\d|5[0-35-9]|8\d)\d{8}")
MONEY = re.compile(r"\d+\.\d{2}")
HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


@cache
def dataset() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The default data set, built once: cases, agents and the visit plan for DAY."""
    cases, agents = demo_case_rows(), demo_agents()
    return cases, agents, demo_visit_plan(cases, agents, DAY)


def test_same_seed_gives_identical_data() -> None:
    cases, agents, plan = dataset()
    again = demo_case_rows()
    assert again == cases
    assert demo_agents() == agents
    assert demo_visit_plan(again, demo_agents(), DAY) == plan


def test_another_seed_gives_other_data() -> None:
    assert demo_case_rows(50, seed=1) != demo_case_rows(50)


def test_counts_and_sequential_ids() -> None:
    cases, agents, _ = dataset()
    assert len(cases) == 2000
    assert [c["case_external_id"] for c in cases[:2]] == ["CASE-000001", "CASE-000002"]
    assert cases[-1]["case_external_id"] == "CASE-002000"
    assert [a["username"] for a in agents] == [f"agent{n:02d}" for n in range(1, 21)]
    assert [a["badge_number"] for a in agents[:2]] == ["B-1001", "B-1002"]
    assert len(demo_case_rows(7, seed=3)) == 7


def test_case_rows_have_exactly_the_import_keys() -> None:
    cases, agents, plan = dataset()
    assert all(list(row) == CASE_KEYS for row in cases)
    assert all(list(agent) == AGENT_KEYS for agent in agents)
    assert all(list(visit) == VISIT_KEYS for visit in plan)


def test_national_ids_are_unique_and_check_out() -> None:
    cases, _, _ = dataset()
    by_borrower = {c["borrower_external_id"]: c for c in cases}
    ids = [c["national_id"] for c in by_borrower.values()]

    assert len(set(ids)) == len(ids)
    for case in by_borrower.values():
        number = case["national_id"]
        assert re.fullmatch(r"\d{17}[\dX]", number)
        assert number[17] == national_id_check_char(number[:17])
        assert number[6:14] == case["date_of_birth"].replace("-", "")


@pytest.mark.parametrize(
    ("first17", "check"),
    [("11010519491231002", "X"), ("44052418800101001", "4")],
)
def test_check_char_matches_published_examples(first17: str, check: str) -> None:
    assert national_id_check_char(first17) == check


def test_field_formats() -> None:
    cases, _, _ = dataset()
    for case in cases:
        assert 1 <= len(case["phones"]) <= 2
        assert all(MOBILE.fullmatch(phone) for phone in case["phones"])
        assert len(case["contacts"]) <= 2
        assert all(set(c) == {"name", "relation", "phone"} for c in case["contacts"])
        assert MONEY.fullmatch(case["overdue_amount"]) and MONEY.fullmatch(case["income"])
        assert 1 <= case["days_past_due"] <= 360
        assert (case["last_payment_date"] is None) == (case["last_payment_amount"] is None)
        assert (case["time_zone"], case["currency"], case["status"]) == (
            "Asia/Shanghai",
            "CNY",
            "open",
        )
        date.fromisoformat(case["date_of_birth"])


def test_flags_are_rare() -> None:
    cases, _, _ = dataset()
    flags = ("hardship", "do_not_visit", "legal_hold")
    counts = Counter(flag for case in cases for flag in flags if case[flag])
    assert 20 <= counts["hardship"] <= 100
    assert 10 <= counts["do_not_visit"] <= 70
    assert 5 <= counts["legal_hold"] <= 40


def test_coordinates_lie_in_urban_shanghai() -> None:
    cases, agents, _ = dataset()
    for place in [*cases, *agents]:
        assert 31.10 <= place["home_lat"] <= 31.35
        assert 121.30 <= place["home_lon"] <= 121.65
        assert round(place["home_lat"], 6) == place["home_lat"]


def test_staff_accounts() -> None:
    assert [(s["username"], s["role"]) for s in demo_staff()] == [
        ("dispatcher01", "dispatcher"),
        ("dispatcher02", "dispatcher"),
        ("privacy01", "privacy_officer"),
        ("admin01", "admin"),
    ]


def test_no_flagged_borrower_is_planned() -> None:
    cases, _, plan = dataset()
    flagged = {
        c["borrower_external_id"]
        for c in cases
        if c["hardship"] or c["do_not_visit"] or c["legal_hold"]
    }
    by_case = {c["case_external_id"]: c for c in cases}
    assert all(by_case[v["case_external_id"]]["borrower_external_id"] not in flagged for v in plan)


def test_every_agent_gets_a_full_day_of_distinct_cases() -> None:
    cases, agents, plan = dataset()
    by_case = {c["case_external_id"]: c for c in cases}
    planned = [v["case_external_id"] for v in plan]
    borrowers = [by_case[case_id]["borrower_external_id"] for case_id in planned]

    assert Counter(v["agent_username"] for v in plan) == {a["username"]: 12 for a in agents}
    assert len(set(planned)) == len(planned)
    assert len(set(borrowers)) == len(borrowers)
    assert {v["visit_date"] for v in plan} == {"2026-11-24"}
    assert {v["route_order"] for v in plan} == {None}


def test_agents_visit_cases_near_their_home_base() -> None:
    cases, agents, plan = dataset()
    by_case = {c["case_external_id"]: c for c in cases}
    home = {a["username"]: (a["home_lat"], a["home_lon"]) for a in agents}
    for visit in plan:
        case = by_case[visit["case_external_id"]]
        base = home[visit["agent_username"]]
        assert haversine_m(*base, case["home_lat"], case["home_lon"]) < 5_000


def test_visit_windows_purposes_and_notices() -> None:
    _, _, plan = dataset()
    windowed = [v for v in plan if v["window_start"] is not None]

    assert 0.2 <= len(windowed) / len(plan) <= 0.45
    for visit in windowed:
        assert HHMM.fullmatch(visit["window_start"]) and HHMM.fullmatch(visit["window_end"])
        assert "09:00" <= visit["window_start"] < visit["window_end"] <= "20:00"
    assert all(v["window_end"] is None for v in plan if v["window_start"] is None)
    purposes = Counter(v["purpose"] for v in plan)
    assert purposes.most_common(1)[0][0] == "home_visit"
    assert set(purposes) <= {"home_visit", "agreement_signing", "follow_up"}
    notices = Counter(v["notice_kind"] for v in plan)
    assert set(notices) <= {"appointment", "letter", "sms", None}
    assert notices[None] < len(plan) / 2
    assert all(v["notes"] for v in plan)


def test_plan_stops_when_cases_run_out() -> None:
    cases = demo_case_rows(30, seed=5)
    plan = demo_visit_plan(cases, demo_agents(4, seed=5), DAY, per_agent=12)
    assert 0 < len(plan) <= 30
    assert len({v["case_external_id"] for v in plan}) == len(plan)
