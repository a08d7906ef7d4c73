"""Borrower requests: recorded with source, taker and time; do-not-visit stops visits with
the rule named; out-of-hours consent is honoured inside its window and validity only, and
its withdrawal takes the visits that relied on it off the phones."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api.lifecycle_steps import (
    API,
    borrower_of,
    change_case,
    dispatcher_visit,
    iso,
    ledger_head,
    plan_visit,
    pull,
    push,
    report,
    stored_flags,
)
from tests.conftest import T0, TODAY

# The evening before the world's day, in Shanghai (UTC+8).
EVENING = T0 - timedelta(hours=12, minutes=30)  # 21:30 local on 2026-11-23


def _request(client, auth, borrower_id, **body):
    return client.post(
        f"{API}/borrowers/{borrower_id}/requests", json=body, headers=auth.headers("dispatcher")
    )


def _consent(client, auth, borrower_id, **overrides):
    body = {
        "kind": "out_of_hours_consent",
        "source": "letter",
        "taken_at": iso(T0 - timedelta(days=3)),
        "window_start": "21:00",
        "window_end": "22:30",
        "valid_until": iso(T0 + timedelta(days=30)),
        "evidence": "Signed consent form, scan 2026-118",
        **overrides,
    }
    response = _request(client, auth, borrower_id, **body)
    assert response.status_code == 201, response.json
    return response.json["request"]


def _withdraw(client, auth, borrower_id, request_id, **body):
    body.setdefault("source", "phone")
    return client.post(
        f"{API}/borrowers/{borrower_id}/requests/{request_id}/withdraw",
        json=body,
        headers=auth.headers("dispatcher"),
    )


def test_do_not_visit_refuses_new_home_visits_with_the_rule_named(world, client, auth, db):
    case_id = world.cases["C-0002"]
    borrower_id = borrower_of(db, case_id)
    pull(client, auth, "agent1")  # v2's card is on agent1's phone
    recorded = _request(client, auth, borrower_id, kind="do_not_visit", source="phone")
    assert recorded.status_code == 201, recorded.json
    body = recorded.json
    assert body["request"]["taken_by"] == world.users["dispatcher"]
    assert body["request"]["source"] == "phone" and body["request"]["active"] is True
    assert (body["cases_changed"], body["visits_cancelled"], body["purges_ordered"]) == (1, 1, 1)
    refused = plan_visit(client, auth, case_id, world.users["agent1"], "2026-11-27")
    assert refused.status_code == 422
    error = refused.json["error"]
    assert error["code"] == "dispatch_refused" and error["field"] == "case_id"
    assert [r["code"] for r in error["details"]["refusals"]] == ["case_do_not_visit"]
    page = pull(client, auth, "agent1")
    assert {"visit_id": world.visits["v2"], "reason": "case_closed"} in [
        {"visit_id": p["visit_id"], "reason": p["reason"]} for p in page["purges"]
    ]
    # The request holds the flag: lifting it needs the request withdrawn first.
    lift = change_case(client, auth, case_id, flags={"do_not_visit": False})
    assert lift.status_code == 409 and lift.json["error"]["field"] == "flags.do_not_visit"
    withdrawn = _withdraw(client, auth, borrower_id, body["request"]["id"])
    assert withdrawn.status_code == 200 and withdrawn.json["request"]["active"] is False
    assert change_case(client, auth, case_id, flags={"do_not_visit": False}).status_code == 200
    assert plan_visit(client, auth, case_id, world.users["agent1"], "2026-11-27").status_code == 201


def test_a_do_not_visit_request_also_binds_a_case_imported_later(world, client, auth, db):
    from tests.api.lifecycle_steps import import_rows
    from tests.conftest import case_row

    borrower_id = borrower_of(db, world.cases["C-0002"])
    _request(client, auth, borrower_id, kind="do_not_visit", source="portal")
    import_rows(client, auth, [case_row(2, case_external_id="C-0002-B")])
    new_case = db.execute("SELECT id FROM cases WHERE external_id = 'C-0002-B'").fetchone()[0]
    refused = plan_visit(client, auth, new_case, world.users["agent1"], "2026-11-27")
    assert [r["code"] for r in refused.json["error"]["details"]["refusals"]] == [
        "case_do_not_visit"
    ]
    # And an import that clears the flag on the borrower's case leaves it set.
    import_rows(client, auth, [case_row(2, do_not_visit=False, overdue_amount="10.00")])
    flag = db.execute(
        "SELECT do_not_visit FROM cases WHERE id = ?", [world.cases["C-0002"]]
    ).fetchone()
    assert flag == (1,)


def _evening_report(visit_id, minutes_after=0):
    return report(visit_id, "met_borrower", EVENING + timedelta(minutes=minutes_after))


def test_a_report_inside_a_recorded_consent_is_not_flagged_outside_it_is(world, client, auth, db):
    v2 = world.visits["v2"]
    _consent(client, auth, borrower_of(db, world.cases["C-0002"]))
    inside = _evening_report(v2)  # 21:30-21:45 local
    outside = _evening_report(v2, minutes_after=75)  # 22:45-23:00 local
    push(client, auth, "agent1", [inside, outside])
    assert "outside_visit_hours" not in stored_flags(db, inside["id"])
    assert "outside_visit_hours" in stored_flags(db, outside["id"])
    assert "consent_expired" not in stored_flags(db, outside["id"])


def test_after_withdrawal_or_expiry_a_report_is_flagged(world, client, auth, db):
    borrower_2 = borrower_of(db, world.cases["C-0002"])
    consent = _consent(client, auth, borrower_2)
    withdrawn = _withdraw(
        client, auth, borrower_2, consent["id"], taken_at=iso(EVENING - timedelta(hours=1))
    )
    assert withdrawn.status_code == 200, withdrawn.json
    after_withdrawal = _evening_report(world.visits["v2"])
    push(client, auth, "agent1", [after_withdrawal])
    assert {"outside_visit_hours", "consent_expired"} <= set(
        stored_flags(db, after_withdrawal["id"])
    )

    borrower_3 = borrower_of(db, world.cases["C-0003"])
    _consent(client, auth, borrower_3, valid_until=iso(EVENING - timedelta(minutes=1)))
    after_expiry = _evening_report(world.visits["v3"])
    push(client, auth, "agent2", [after_expiry])
    assert {"outside_visit_hours", "consent_expired"} <= set(stored_flags(db, after_expiry["id"]))


def test_a_consent_lets_planning_use_its_hours_and_its_withdrawal_purges_the_visit(
    world, client, auth, db
):
    case_id = world.cases["C-0002"]
    borrower_id = borrower_of(db, case_id)
    late = {"window_start": "21:00", "window_end": "22:00"}
    refused = plan_visit(client, auth, case_id, world.users["agent1"], TODAY, **late)
    # 21:00 is the last lawful minute; 22:00 is not.
    assert refused.status_code == 422 and refused.json["error"]["field"] == "window_end"
    consent = _consent(client, auth, borrower_id)
    planned = plan_visit(client, auth, case_id, world.users["agent1"], TODAY, **late)
    assert planned.status_code == 201, planned.json
    assert "out_of_hours_consent" in {w["code"] for w in planned.json["warnings"]}
    evening_visit = planned.json["visit"]["id"]
    page = pull(client, auth, "agent1")
    assert evening_visit in [v["id"] for v in page["upserts"]]

    withdrawn = _withdraw(client, auth, borrower_id, consent["id"])
    assert withdrawn.status_code == 200, withdrawn.json
    assert (withdrawn.json["visits_cancelled"], withdrawn.json["purges_ordered"]) == (1, 1)
    assert dispatcher_visit(client, auth, evening_visit)["status"] == "cancelled"
    assert dispatcher_visit(client, auth, world.visits["v2"])["status"] == "planned"
    after = pull(client, auth, "agent1", page["cursor"])
    assert {"visit_id": evening_visit, "reason": "cancelled"} in [
        {"visit_id": p["visit_id"], "reason": p["reason"]} for p in after["purges"]
    ]
    again = _withdraw(client, auth, borrower_id, consent["id"])
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "kind": "out_of_hours_consent",
                "window_start": "21:00",
                "window_end": "22:00",
                "valid_until": "2026-12-24T00:00:00Z",
            },
            "evidence",
        ),
        ({"kind": "do_not_contact"}, "channel"),
        ({"kind": "do_not_contact", "channel": "pigeon"}, "channel"),
        ({"kind": "do_not_visit", "channel": "sms"}, "channel"),
        ({"kind": "preferred_contact_times", "window_start": "18:00"}, "window_end"),
        (
            {"kind": "preferred_contact_times", "window_start": "18:00", "window_end": "18:00"},
            "window_end",
        ),
        (
            {
                "kind": "preferred_contact_times",
                "window_start": "18:00",
                "window_end": "20:00",
                "weekdays": [0],
            },
            "weekdays.0",
        ),
        ({"kind": "do_not_visit", "visit_id": 1}, "visit_id"),
        ({"kind": "do_not_visit", "taken_at": "2027-01-01T00:00:00Z"}, "taken_at"),
        (
            {
                "kind": "out_of_hours_consent",
                "window_start": "21:00",
                "window_end": "22:00",
                "valid_until": "2026-11-01T00:00:00Z",
                "evidence": "form",
            },
            "valid_until",
        ),
    ],
)
def test_a_request_must_fit_its_kind(world, client, auth, db, body, field):
    response = _request(
        client, auth, borrower_of(db, world.cases["C-0001"]), source="phone", **body
    )
    assert response.status_code == 422, response.json
    assert response.json["error"]["field"] == field


def test_requests_are_listed_with_their_source_and_taker_and_the_listing_is_ledgered(
    world, client, auth, db
):
    borrower_id = borrower_of(db, world.cases["C-0001"])
    dispatcher = auth.headers("dispatcher")
    assert (
        _request(
            client, auth, borrower_id, kind="do_not_contact", channel="sms", source="portal"
        ).status_code
        == 201
    )
    times = _request(
        client,
        auth,
        borrower_id,
        kind="preferred_contact_times",
        window_start="18:00",
        window_end="20:00",
        weekdays=[1, 3, 5],
        source="visit",
        visit_id=world.visits["v1"],
        note="Evenings after work",
    )
    assert times.status_code == 201, times.json
    assert times.json["request"]["weekdays"] == [1, 3, 5]
    mark = ledger_head(db)
    listed = client.get(f"{API}/borrowers/{borrower_id}/requests", headers=dispatcher)
    assert listed.status_code == 200
    assert [(r["kind"], r["source"], r["taken_by"]) for r in listed.json["items"]] == [
        ("do_not_contact", "portal", world.users["dispatcher"]),
        ("preferred_contact_times", "visit", world.users["dispatcher"]),
    ]
    entries = db.execute(
        "SELECT borrower_id, fields, purpose FROM exposure_ledger WHERE seq > ?", [mark]
    ).fetchall()
    assert entries == [(borrower_id, '["borrower_requests"]', "dispatch_planning")]
    only = client.get(
        f"{API}/borrowers/{borrower_id}/requests",
        query_string={"kind": "do_not_contact", "active": "true"},
        headers=dispatcher,
    )
    assert [r["channel"] for r in only.json["items"]] == ["sms"]
    logged = db.execute(
        "SELECT details FROM staff_audit WHERE action = 'borrower_request_recorded'"
    ).fetchall()
    assert len(logged) == 2 and all("Evenings" not in d for (d,) in logged)


def test_unknown_borrower_or_request_is_404(world, client, auth, db):
    assert _request(client, auth, 999999, kind="do_not_visit", source="phone").status_code == 404
    borrower_id = borrower_of(db, world.cases["C-0001"])
    assert _withdraw(client, auth, borrower_id, 999999).status_code == 404
    other = borrower_of(db, world.cases["C-0002"])
    mine = _request(
        client, auth, borrower_id, kind="do_not_contact", channel="email", source="letter"
    ).json["request"]
    assert _withdraw(client, auth, other, mine["id"]).status_code == 404
