"""The case lifecycle through the API: status and flags change with a reason and a version;
every change that ends a case's visits cancels them and takes their cards off every phone,
whether a dispatcher, an import or the borrower's own request made it."""

from __future__ import annotations

import json

import pytest

from tests.api.lifecycle_steps import (
    API,
    borrower_of,
    case_version,
    change_case,
    import_rows,
    ledger_head,
    plan_visit,
    pull,
)
from tests.conftest import TODAY, case_row


def _cards_on_two_phones(world, client, auth) -> tuple[dict[str, int], dict[str, str]]:
    """C-0001's borrower on both agents' phones: v1 is agent1's, a second visit agent2's."""
    second = plan_visit(client, auth, world.cases["C-0001"], world.users["agent2"], TODAY)
    assert second.status_code == 201, second.json
    phones = {"agent1": world.visits["v1"], "agent2": second.json["visit"]["id"]}
    cursors = {}
    for agent, visit_id in phones.items():
        page = pull(client, auth, agent)
        assert visit_id in [v["id"] for v in page["upserts"]]
        cursors[agent] = page["cursor"]
    return phones, cursors


def _purged_from_both_phones(client, auth, db, phones, cursors, borrower_id, mark) -> None:
    """Each phone's next pull orders the purge; it confirms; nothing of the borrower is
    disclosed to anyone from `mark` on."""
    for agent, visit_id in phones.items():
        page = pull(client, auth, agent, cursors[agent])
        assert {"visit_id": visit_id, "reason": "case_closed"} in [
            {"visit_id": p["visit_id"], "reason": p["reason"]} for p in page["purges"]
        ]
        assert all(
            v["borrower"] is None or v["borrower"]["borrower_id"] != borrower_id
            for v in page["upserts"]
        )
        acked = client.post(
            f"{API}/sync/purge-acks", json={"visit_ids": [visit_id]}, headers=auth.headers(agent)
        )
        assert acked.json["confirmed"] == [visit_id]
        after = pull(client, auth, agent, page["cursor"])
        assert visit_id not in [p["visit_id"] for p in after["purges"]]
        assert visit_id not in [v["id"] for v in after["upserts"]]
        refused = client.get(f"{API}/visits/{visit_id}", headers=auth.headers(agent))
        assert refused.status_code == 404
    cards = db.execute(
        "SELECT device_id, purge_reason, purge_confirmed_at IS NOT NULL FROM device_cards "
        "WHERE borrower_id = ? ORDER BY device_id",
        [borrower_id],
    ).fetchall()
    assert cards == [("phone-agent1", "case_closed", 1), ("phone-agent2", "case_closed", 1)]
    disclosed = db.execute(
        "SELECT count(*) FROM exposure_ledger WHERE borrower_id = ? AND seq > ?",
        [borrower_id, mark],
    ).fetchone()[0]
    assert disclosed == 0


def test_closing_a_case_purges_its_cards_from_both_phones(world, client, auth, db):
    phones, cursors = _cards_on_two_phones(world, client, auth)
    case_id = world.cases["C-0001"]
    closed = change_case(client, auth, case_id, status="closed_paid", reason="Paid at the branch")
    assert closed.status_code == 200, closed.json
    body = closed.json
    assert body["case"]["status"] == "closed_paid" and body["case"]["closed_at"]
    assert body["changed"] == ["status"] and body["stops_visits"] == ["case_closed"]
    assert (body["visits_cancelled"], body["purges_ordered"]) == (2, 2)
    statuses = {
        r[0]
        for r in db.execute(
            "SELECT status FROM visits WHERE id IN (?, ?)", list(phones.values())
        ).fetchall()
    }
    assert statuses == {"cancelled"}
    _purged_from_both_phones(
        client, auth, db, phones, cursors, borrower_of(db, case_id), ledger_head(db)
    )


@pytest.mark.parametrize(
    "row",
    [
        {"status": "closed_settled"},
        {"status": "closed"},  # the old feeds' word, read as closed_paid
        {"do_not_visit": True},
        {"legal_hold": True},
        {"deceased": True},
        {"dispute": True},
    ],
)
def test_a_reimport_that_ends_the_case_purges_its_cards_the_same_way(world, client, auth, db, row):
    phones, cursors = _cards_on_two_phones(world, client, auth)
    case_id = world.cases["C-0001"]
    report = import_rows(client, auth, [case_row(1, **row)])
    assert (report["updated"], report["visits_cancelled"], report["purges_ordered"]) == (1, 2, 2)
    case = db.execute("SELECT status FROM cases WHERE id = ?", [case_id]).fetchone()[0]
    assert case == ("closed_paid" if row.get("status") == "closed" else row.get("status", "open"))
    history = db.execute(
        "SELECT source, reason FROM case_history WHERE case_id = ?", [case_id]
    ).fetchall()
    assert history == [("import", "case import")]
    _purged_from_both_phones(
        client, auth, db, phones, cursors, borrower_of(db, case_id), ledger_head(db)
    )
    # The same file again changes nothing and orders nothing.
    again = import_rows(client, auth, [case_row(1, **row)])
    assert (again["unchanged"], again["visits_cancelled"], again["purges_ordered"]) == (1, 0, 0)


def test_an_import_that_changes_only_money_keeps_the_cards(world, client, auth, db):
    phones, _ = _cards_on_two_phones(world, client, auth)
    report = import_rows(client, auth, [case_row(1, overdue_amount="900.00")])
    assert (report["updated"], report["purges_ordered"]) == (1, 0)
    open_orders = db.execute(
        "SELECT count(*) FROM device_cards WHERE purge_ordered_at IS NOT NULL"
    ).fetchone()[0]
    assert open_orders == 0
    assert db.execute("SELECT count(*) FROM case_history").fetchone()[0] == 0


def test_a_case_change_needs_its_version_a_reason_and_something_to_change(world, client, auth):
    case_id = world.cases["C-0002"]
    dispatcher = auth.headers("dispatcher")
    version = case_version(client, auth, case_id)
    url = f"{API}/cases/{case_id}"
    no_version = client.patch(url, json={"status": "legal", "reason": "r"}, headers=dispatcher)
    assert no_version.status_code == 428
    no_reason = client.patch(url, json={"status": "legal", "version": version}, headers=dispatcher)
    assert (no_reason.status_code, no_reason.json["error"]["field"]) == (422, "reason")
    nothing = client.patch(url, json={"reason": "r", "version": version}, headers=dispatcher)
    assert nothing.status_code == 422
    bad = client.patch(
        url, json={"status": "closed", "reason": "r", "version": version}, headers=dispatcher
    )
    assert (bad.status_code, bad.json["error"]["field"]) == (422, "status")
    unknown_flag = client.patch(
        url, json={"flags": {"vip": True}, "reason": "r", "version": version}, headers=dispatcher
    )
    assert unknown_flag.status_code == 422
    missing = client.patch(
        f"{API}/cases/999999",
        json={"status": "legal", "reason": "r", "version": 1},
        headers=dispatcher,
    )
    assert missing.status_code == 404
    first = client.patch(
        url,
        json={"status": "legal", "reason": "r"},
        headers={**dispatcher, "If-Match": str(version)},
    )
    assert first.status_code == 200 and first.json["case"]["version"] == version + 1
    stale = client.patch(
        url,
        json={"flags": {"hardship": True}, "reason": "r", "version": version},
        headers=dispatcher,
    )
    assert stale.status_code == 409
    assert stale.json["error"]["code"] == "version_conflict"
    assert stale.json["error"]["details"]["current_version"] == version + 1


def test_a_change_is_in_the_staff_log_and_the_history_without_its_reason_leaking(
    world, client, auth, db
):
    case_id = world.cases["C-0002"]
    changed = change_case(
        client,
        auth,
        case_id,
        flags={"deceased": True, "hardship": False},
        reason="Death certificate received from the family",
    )
    assert changed.status_code == 200, changed.json
    assert changed.json["changed"] == ["flags.deceased"]
    assert changed.json["case"]["flags"]["deceased"] is True
    assert changed.json["stops_visits"] == ["case_deceased"]
    (details,) = db.execute(
        "SELECT details FROM staff_audit WHERE action = 'case_changed' AND target_id = ?",
        [str(case_id)],
    ).fetchone()
    assert json.loads(details) == {
        "changed": ["flags.deceased"],
        "source": "api",
        "reason_given": True,
        "from_version": changed.json["case"]["version"] - 1,
    }
    assert "Death" not in details
    history = db.execute(
        "SELECT status, flags, reason, source FROM case_history WHERE case_id = ?", [case_id]
    ).fetchall()
    assert history == [
        ("open", '["deceased"]', "Death certificate received from the family", "api")
    ]


def test_the_answer_carries_case_flags_only_to_whom_the_policy_gives_them(world, client, auth, db):
    case_id = world.cases["C-0002"]
    borrower_id = borrower_of(db, case_id)
    mark = ledger_head(db)
    by_dispatcher = change_case(client, auth, case_id, status="legal")
    assert by_dispatcher.json["case"]["flags"]["do_not_visit"] is False
    entry = db.execute(
        "SELECT role, fields, purpose FROM exposure_ledger WHERE borrower_id = ? AND seq > ? "
        "AND endpoint LIKE 'PATCH%'",
        [borrower_id, mark],
    ).fetchall()
    assert entry == [("dispatcher", '["case_flags"]', "dispatch_planning")]
    version = case_version(client, auth, case_id)
    mark = ledger_head(db)
    by_admin = change_case(client, auth, case_id, user="admin", status="open", version=version)
    assert by_admin.status_code == 200, by_admin.json
    assert "flags" not in by_admin.json["case"]
    assert ledger_head(db) == mark


def test_closed_at_is_kept_while_closed_and_cleared_when_reopened(world, client, auth):
    case_id = world.cases["C-0003"]
    first = change_case(client, auth, case_id, status="closed_paid").json["case"]["closed_at"]
    world.clock.advance(minutes=5)
    again = change_case(client, auth, case_id, status="closed_settled").json["case"]
    assert again["closed_at"] == first
    reopened = change_case(client, auth, case_id, status="open").json["case"]
    assert reopened["closed_at"] is None


def test_a_closed_case_refuses_new_visits_with_the_rule_named(world, client, auth):
    case_id = world.cases["C-0002"]
    change_case(client, auth, case_id, status="closed_written_off")
    refused = plan_visit(client, auth, case_id, world.users["agent1"], "2026-11-27")
    assert refused.status_code == 422
    codes = [r["code"] for r in refused.json["error"]["details"]["refusals"]]
    assert codes == ["case_closed"]


def test_a_dispute_stops_visits_unless_the_policy_says_otherwise(
    world, client, auth, db, make_app, tmp_path
):
    changed = change_case(client, auth, world.cases["C-0002"], flags={"dispute": True})
    assert changed.json["stops_visits"] == ["case_dispute"]
    assert changed.json["visits_cancelled"] == 1
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"dispute_stops_visits": False}))
    lenient = make_app(COMPLIANCE_POLICY_FILE=str(policy)).test_client()
    headers = auth.headers("dispatcher")
    version = lenient.get(f"{API}/cases/{world.cases['C-0003']}", headers=headers).json["version"]
    kept = lenient.patch(
        f"{API}/cases/{world.cases['C-0003']}",
        json={"flags": {"dispute": True}, "reason": "r", "version": version},
        headers=headers,
    )
    assert (kept.json["stops_visits"], kept.json["visits_cancelled"]) == ([], 0)
    status = db.execute("SELECT status FROM visits WHERE id = ?", [world.visits["v3"]]).fetchone()
    assert status == ("planned",)


def test_bulk_change_answers_each_case_in_one_transaction(world, client, auth, db):
    dispatcher = auth.headers("dispatcher")
    pull(client, auth, "agent1")  # v1's card (case C-0001) is on agent1's phone
    c1, c2 = world.cases["C-0001"], world.cases["C-0002"]
    response = client.post(
        f"{API}/cases/bulk-change",
        json={
            "changes": [
                {
                    "case_id": c1,
                    "version": case_version(client, auth, c1),
                    "status": "closed_paid",
                    "reason": "paid",
                },
                {"case_id": c2, "version": 99, "status": "closed_paid", "reason": "paid"},
                {"case_id": 999999, "version": 1, "status": "closed_paid", "reason": "paid"},
                {
                    "case_id": c2,
                    "version": case_version(client, auth, c2),
                    "status": "open",
                    "reason": "no change",
                },
            ]
        },
        headers=dispatcher,
    )
    assert response.status_code == 200, response.json
    body = response.json
    assert [r["status"] for r in body["results"]] == ["changed", "refused", "refused", "unchanged"]
    assert [r["error"]["code"] for r in body["results"] if r["error"]] == [
        "version_conflict",
        "not_found",
    ]
    assert (body["changed"], body["refused"], body["visits_cancelled"]) == (1, 2, 1)
    assert body["results"][0]["case"]["status"] == "closed_paid"
    assert body["purges_ordered"] == 1
    orders = db.execute(
        "SELECT visit_id, purge_reason FROM device_cards WHERE purge_ordered_at IS NOT NULL"
    ).fetchall()
    assert orders == [(world.visits["v1"], "case_closed")]


def test_free_text_about_a_purged_borrower_goes_with_their_personal_data(
    world, client, auth, db, app
):
    case_id = world.cases["C-0003"]
    borrower_id = borrower_of(db, case_id)
    noted = client.post(
        f"{API}/borrowers/{borrower_id}/requests",
        json={
            "kind": "do_not_contact",
            "channel": "phone",
            "source": "letter",
            "note": "Wife answers; she is ill",
        },
        headers=auth.headers("dispatcher"),
    )
    assert noted.status_code == 201, noted.json
    change_case(client, auth, case_id, status="closed_paid", reason="Paid by her brother")
    world.clock.advance(days=181)
    result = app.test_cli_runner().invoke(args=["purge"])
    assert result.exit_code == 0, result.output
    assert db.execute(
        "SELECT note FROM borrower_requests WHERE borrower_id = ?", [borrower_id]
    ).fetchall() == [(None,)]
    assert db.execute(
        "SELECT reason, status FROM case_history WHERE case_id = ?", [case_id]
    ).fetchall() == [(None, "closed_paid")]
