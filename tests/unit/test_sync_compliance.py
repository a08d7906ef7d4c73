"""Compliance policy profiles, overrides, and each rule firing and not firing."""

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from sync import compliance as rules
from sync.compliance import (
    CompliancePolicy,
    InvalidPolicy,
    OutOfHoursConsent,
    policy_from_dict,
    profile,
)
from sync.geo import GeoFix

SHANGHAI = "Asia/Shanghai"
CST = timezone(timedelta(hours=8))
DEFAULT = profile("default")
HOME = (31.2304, 121.4737)


def local(hour, minute=0, second=0, day=14):
    """A moment in Shanghai local time on 2025-03-<day>."""
    return datetime(2025, 3, day, hour, minute, second, tzinfo=CST)


def codes(flags):
    return [flag.code for flag in flags]


# --- policy -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "start", "end"),
    [
        ("default", time(8), time(21)),
        ("cn-bank", time(8), time(22)),
        ("us-regf", time(8), time(21)),
    ],
)
def test_profiles_carry_their_visit_windows(name, start, end):
    policy = profile(name)
    assert (policy.name, policy.visit_window_start, policy.visit_window_end) == (name, start, end)
    assert policy.max_home_visits_per_case == 1 and policy.home_visit_period_days == 7
    assert policy.location_tolerance_m == 500 and policy.clock_skew_limit_s == 300
    assert policy.late_sync_limit_s == 24 * 3600
    assert policy.prior_notice_required and policy.credential_before_contact


def test_unknown_profile_is_refused():
    with pytest.raises(InvalidPolicy, match="unknown compliance profile"):
        profile("eu")


def test_overrides_start_from_the_named_profile():
    policy = policy_from_dict(
        {
            "profile": "cn-bank",
            "name": "lender-x",
            "visit_window_start": "09:30",
            "location_tolerance_m": 250,
            "planned_window_grace_min": None,
        }
    )
    assert policy.name == "lender-x"
    assert policy.visit_window_start == time(9, 30)
    assert policy.visit_window_end == time(22)
    assert policy.location_tolerance_m == 250.0
    assert policy.planned_window_grace_min is None


def test_to_dict_round_trips():
    policy = profile("cn-bank")
    assert policy_from_dict(policy.to_dict()) == policy


@pytest.mark.parametrize(
    "data",
    [
        {"profile": "nowhere"},
        {"max_visits": 2},
        {"visit_window_start": "8:00"},
        {"visit_window_start": "24:00"},
        {"visit_window_start": "22:00"},
        {"max_home_visits_per_case": 0},
        {"max_home_visits_per_case": True},
        {"max_home_visits_per_case": "1"},
        {"location_tolerance_m": -1},
        {"location_tolerance_m": float("inf")},
        {"prior_notice_required": "yes"},
        {"clock_skew_limit_s": 0},
        {"planned_window_grace_min": -5},
        {"name": ""},
    ],
)
def test_invalid_overrides_are_refused(data):
    with pytest.raises(InvalidPolicy):
        policy_from_dict(data)


# --- rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arrived", "departed", "consent", "policy", "expected"),
    [
        (local(8), local(9), None, DEFAULT, []),
        (local(20, 30), local(21), None, DEFAULT, []),
        (local(7, 59), local(8, 30), None, DEFAULT, ["outside_visit_hours"]),
        (local(20, 30), local(21, 0, 1), None, DEFAULT, ["outside_visit_hours"]),
        (local(21, 30), None, None, DEFAULT, ["outside_visit_hours"]),
        (local(21, 30), None, None, profile("cn-bank"), []),
        (local(22, 30), None, None, profile("cn-bank"), ["outside_visit_hours"]),
        # The same instant written in UTC is still judged in the borrower's time zone.
        (local(22).astimezone(UTC), None, None, DEFAULT, ["outside_visit_hours"]),
        # Consent in force honours the override.
        (
            local(21, 30),
            local(22),
            OutOfHoursConsent(local(10, day=1), local(10, day=30)),
            DEFAULT,
            [],
        ),
        (local(21, 30), None, OutOfHoursConsent(local(10, day=1)), DEFAULT, []),
        # Expired consent, or consent given only after the visit, does not.
        (
            local(21, 30),
            None,
            OutOfHoursConsent(local(10, day=1), local(10, day=10)),
            DEFAULT,
            ["outside_visit_hours", "consent_expired"],
        ),
        (
            local(21, 30),
            None,
            OutOfHoursConsent(local(10, day=20)),
            DEFAULT,
            ["outside_visit_hours", "consent_expired"],
        ),
        # A lender that does not accept consent overrides.
        (
            local(21, 30),
            None,
            OutOfHoursConsent(local(10, day=1)),
            CompliancePolicy(consent_overrides_window=False),
            ["outside_visit_hours"],
        ),
    ],
)
def test_visit_hours(arrived, departed, consent, policy, expected):
    assert codes(rules.check_visit_hours(arrived, departed, SHANGHAI, consent, policy)) == expected


def test_visit_hours_across_a_daylight_saving_change():
    # 2025-03-09 07:30 EDT is 11:30 UTC; a naive +5 h offset would call it 06:30.
    arrived = datetime(2025, 3, 9, 11, 30, tzinfo=UTC)
    assert codes(rules.check_visit_hours(arrived, None, "America/New_York", None, DEFAULT)) == [
        "outside_visit_hours"
    ]
    arrived = datetime(2025, 3, 9, 12, 30, tzinfo=UTC)
    assert rules.check_visit_hours(arrived, None, "America/New_York", None, DEFAULT) == ()


@pytest.mark.parametrize(
    ("arrived", "start", "end", "policy", "expected"),
    [
        (local(10), time(10), time(11), DEFAULT, []),
        (local(9, 30), time(10), time(11), DEFAULT, []),
        (local(11, 30), time(10), time(11), DEFAULT, []),
        (local(9, 29), time(10), time(11), DEFAULT, ["outside_planned_window"]),
        (local(11, 31), time(10), time(11), DEFAULT, ["outside_planned_window"]),
        (local(10, day=15), time(10), time(11), DEFAULT, ["outside_planned_window"]),
        (local(18), time(10), None, DEFAULT, []),
        (local(18), None, None, DEFAULT, []),
        (local(18), time(10), time(11), CompliancePolicy(planned_window_grace_min=None), []),
    ],
)
def test_planned_window(arrived, start, end, policy, expected):
    found = rules.check_planned_window(arrived, date(2025, 3, 14), start, end, SHANGHAI, policy)
    assert codes(found) == expected


@pytest.mark.parametrize(
    ("others", "policy", "expected"),
    [
        ((), DEFAULT, []),
        ((local(10, day=7),), DEFAULT, []),  # exactly 7 days earlier
        ((local(10, day=21),), DEFAULT, []),  # exactly 7 days later
        ((local(10, 1, day=7),), DEFAULT, ["visit_frequency_exceeded"]),
        ((local(9, day=14),), DEFAULT, ["visit_frequency_exceeded"]),
        # A visit synced earlier but made later still counts (out-of-order sync).
        ((local(10, day=16),), DEFAULT, ["visit_frequency_exceeded"]),
        ((local(10, day=16),), CompliancePolicy(max_home_visits_per_case=2), []),
        (
            (local(10, day=12), local(10, day=16)),
            CompliancePolicy(max_home_visits_per_case=2),
            ["visit_frequency_exceeded"],
        ),
    ],
)
def test_visit_frequency(others, policy, expected):
    assert codes(rules.check_visit_frequency(local(10), others, policy)) == expected


# 0.0045 degrees of latitude is about 500 m.
@pytest.mark.parametrize(
    ("fix", "home", "expected"),
    [
        (GeoFix(*HOME, 10), HOME, []),
        (GeoFix(HOME[0] + 0.0044, HOME[1], 0), HOME, []),
        (GeoFix(HOME[0] + 0.0046, HOME[1], 0), HOME, ["location_mismatch"]),
        # 600 m away, but the fix is only good to 150 m: 500 + 150 covers it.
        (GeoFix(HOME[0] + 0.0054, HOME[1], 150), HOME, []),
        (GeoFix(HOME[0] + 0.0054, HOME[1], 50), HOME, ["location_mismatch"]),
        (GeoFix(HOME[0] + 0.05, HOME[1], 1500), HOME, ["location_unavailable"]),
        (None, HOME, ["location_unavailable"]),
        (GeoFix(0, 0, 5), (None, None), []),
    ],
)
def test_location(fix, home, expected):
    assert codes(rules.check_location(fix, *home, DEFAULT)) == expected


@pytest.mark.parametrize(
    ("given", "given_at", "policy", "expected"),
    [
        (True, local(9, day=13), DEFAULT, []),
        (True, None, DEFAULT, []),
        (False, None, DEFAULT, ["no_prior_notice"]),
        (True, local(10, 5), DEFAULT, ["no_prior_notice"]),
        (False, None, CompliancePolicy(prior_notice_required=False), []),
    ],
)
def test_prior_notice(given, given_at, policy, expected):
    assert codes(rules.check_prior_notice(local(10), given, given_at, policy)) == expected


@pytest.mark.parametrize(
    ("contact", "credentials", "policy", "expected"),
    [
        (local(10), (local(9, 59),), DEFAULT, []),
        (local(10), (local(10, 2),), DEFAULT, []),  # within the 120 s grace
        (local(10), (local(10, 2, 1),), DEFAULT, ["credential_not_shown_first"]),
        (local(10), (local(10, 30), local(9, 58)), DEFAULT, []),  # the earliest counts
        (local(10), (), DEFAULT, ["credential_not_shown_first"]),
        (None, (), DEFAULT, []),  # nobody was met
        (local(10), (), CompliancePolicy(credential_before_contact=False), []),
        (
            local(10),
            (local(10, 1),),
            CompliancePolicy(credential_grace_s=0),
            ["credential_not_shown_first"],
        ),
    ],
)
def test_credential_first(contact, credentials, policy, expected):
    assert codes(rules.check_credential_first(contact, credentials, policy)) == expected


@pytest.mark.parametrize(
    ("discussed", "expected"), [(False, []), (True, ["third_party_debt_discussed"])]
)
def test_third_party(discussed, expected):
    assert codes(rules.check_third_party(discussed)) == expected


@pytest.mark.parametrize(
    ("hardship", "do_not_visit", "legal_hold", "expected"),
    [
        (False, False, False, []),
        (True, False, False, ["case_hardship"]),
        (False, True, False, ["case_do_not_visit"]),
        (False, False, True, ["case_legal_hold"]),
        (True, True, True, ["case_do_not_visit", "case_hardship", "case_legal_hold"]),
    ],
)
def test_case_flags(hardship, do_not_visit, legal_hold, expected):
    assert codes(rules.check_case_flags(hardship, do_not_visit, legal_hold)) == expected


RECEIVED = local(18)


@pytest.mark.parametrize(
    ("sent", "recorded", "expected"),
    [
        (RECEIVED, local(10), []),
        (RECEIVED + timedelta(seconds=300), local(10), []),
        (RECEIVED + timedelta(seconds=301), local(10), ["clock_skew"]),
        (RECEIVED - timedelta(minutes=20), local(10), ["clock_skew"]),
        (None, local(10), []),
        # Clock fixed before sending, but the record was stamped in the future.
        (RECEIVED, RECEIVED + timedelta(minutes=6), ["clock_skew"]),
        (None, RECEIVED + timedelta(minutes=4), []),
    ],
)
def test_clock_skew(sent, recorded, expected):
    assert codes(rules.check_clock_skew(sent, recorded, RECEIVED, DEFAULT)) == expected


@pytest.mark.parametrize(
    ("recorded", "expected"),
    [
        (RECEIVED - timedelta(hours=24), []),
        (RECEIVED - timedelta(hours=24, seconds=1), ["late_sync"]),
        (RECEIVED - timedelta(days=3), ["late_sync"]),
    ],
)
def test_late_sync(recorded, expected):
    assert codes(rules.check_late_sync(recorded, RECEIVED, DEFAULT)) == expected


@pytest.mark.parametrize(
    ("shown", "expected"),
    [("SH-0042", []), (" sh-0042 ", []), ("SH-0043", ["badge_mismatch"]), ("", ["badge_mismatch"])],
)
def test_badge(shown, expected):
    assert codes(rules.check_badge(shown, "SH-0042")) == expected


@pytest.mark.parametrize(
    ("id_match", "refused", "expected"),
    [
        (True, None, []),
        (False, None, ["id_mismatch"]),
        (None, None, ["id_unverifiable"]),
        (None, "id_check_limit_reached", ["id_check_limit_reached"]),
        (None, "id_not_compared", ["id_not_compared"]),
    ],
)
def test_borrower_identity(id_match, refused, expected):
    assert codes(rules.check_borrower_identity(id_match, refused)) == expected


def test_every_flag_code_is_documented_in_the_module_table():
    documented = rules.__doc__
    constants = [
        value
        for name, value in vars(rules).items()
        if name.isupper() and isinstance(value, str) and name not in ("__doc__",)
    ]
    assert len(constants) == 22
    for code in constants:
        assert f"`{code}`" in documented, code


def test_flags_are_json_friendly():
    flag = rules.check_late_sync(RECEIVED - timedelta(days=2), RECEIVED, DEFAULT)[0]
    assert flag.to_dict() == {
        "code": "late_sync",
        "message": "Received 48.0 h after it was recorded.",
        "details": {"delay_s": 172800.0, "limit_s": 86400},
    }


# --- out-of-hours consent with its own window ------------------------------------------

EVENING = OutOfHoursConsent(local(10, day=1), local(10, day=30), time(21), time(22, 30))


@pytest.mark.parametrize(
    ("arrived", "departed", "consents", "expected"),
    [
        # Inside the consented hours, while the consent is in force: no flag.
        (local(21, 15), local(21, 45), [EVENING], []),
        # Only the departure is out of hours; it lies in the consented window.
        (local(20, 30), local(21, 30), [EVENING], []),
        # Outside the consented window: flagged, and no consent for those hours to blame.
        (local(22, 45), None, [EVENING], ["outside_visit_hours"]),
        (local(7, 30), None, [EVENING], ["outside_visit_hours"]),
        # After it expired.
        (local(21, 15, day=30), None, [EVENING], ["outside_visit_hours", "consent_expired"]),
        # After it was withdrawn.
        (
            local(21, 15, day=20),
            None,
            [OutOfHoursConsent(local(10, day=1), None, time(21), time(22), local(9, day=20))],
            ["outside_visit_hours", "consent_expired"],
        ),
        # Before it was withdrawn, it still covered the visit.
        (
            local(21, 15, day=19),
            None,
            [OutOfHoursConsent(local(10, day=1), None, time(21), time(22), local(9, day=20))],
            [],
        ),
        # A window across midnight.
        (
            local(6, 30),
            local(7),
            [OutOfHoursConsent(local(10, day=1), None, time(21), time(7, 30))],
            [],
        ),
        # One consent of several covers it.
        (
            local(7, 30),
            None,
            [EVENING, OutOfHoursConsent(local(10, day=1), None, time(7), time(8))],
            [],
        ),
    ],
)
def test_visit_hours_with_consented_windows(arrived, departed, consents, expected):
    flags = rules.check_visit_hours(arrived, departed, SHANGHAI, consents, DEFAULT)
    assert codes(flags) == expected


def test_consent_expired_names_the_withdrawal():
    withdrawn = OutOfHoursConsent(local(10, day=1), None, None, None, local(9, day=20))
    flags = rules.check_visit_hours(local(22, day=21), None, SHANGHAI, [withdrawn], DEFAULT)
    assert flags[1].details["withdrawn_at"] == "2025-03-20T09:00:00+08:00"


def test_a_dispute_stops_visits_unless_the_policy_says_otherwise():
    assert DEFAULT.dispute_stops_visits is True
    assert policy_from_dict({"dispute_stops_visits": False}).dispute_stops_visits is False
    with pytest.raises(InvalidPolicy):
        policy_from_dict({"dispute_stops_visits": "no"})
