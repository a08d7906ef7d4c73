"""Flag review: a flag on a stored record is an item a dispatcher assigns, resolves with a
disposition and reopens, with history, optimistic concurrency and the staff log; and the
compliance summary of an agent, from a seeded world."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

import pytest

from server.services import flag_reviews
from tests.api.lifecycle_steps import push, report
from tests.conftest import PASSWORD, TODAY

API = "/api/v1"
CREDENTIAL = "credential_not_shown_first"
THIRD_PARTY = "third_party_debt_discussed"
COMMENT = "Checked the phone log: the badge was shown, the app was offline"


@dataclass
class Flagged:
    met: str  # v1's report: met the borrower with no badge shown first
    third: str  # v2's report: third party met, debt discussed with them


@pytest.fixture
def flagged(client, auth, world) -> Flagged:
    """agent1 reports on both its visits; three review items come out of it."""
    outcomes = push(
        client,
        auth,
        "agent1",
        [
            report(world.visits["v1"], "met_borrower"),
            report(
                world.visits["v2"],
                "third_party_met",
                third_party_present=True,
                debt_discussed_with_third_party=True,
            ),
        ],
    )
    assert [o["status"] for o in outcomes] == ["flagged", "flagged"], outcomes
    assert [f["code"] for f in outcomes[1]["flags"]] == [CREDENTIAL, THIRD_PARTY]
    return Flagged(outcomes[0]["record_id"], outcomes[1]["record_id"])


def _url(record_id: str, code: str, action: str = "") -> str:
    return f"{API}/flags/{record_id}/{code}" + (f"/{action}" if action else "")


def _post(client, auth, record_id, code, action, body, user="dispatcher", headers=None):
    return client.post(
        _url(record_id, code, action),
        json=body,
        headers={**auth.headers(user), **(headers or {})},
    )


def _list(client, auth, **query) -> dict:
    response = client.get(f"{API}/flags", query_string=query, headers=auth.headers("dispatcher"))
    assert response.status_code == 200, response.json
    return response.json


def _keys(page: dict) -> list[tuple[str, str]]:
    return [(item["record_id"], item["code"]) for item in page["items"]]


def _second_dispatcher(client, auth) -> int:
    response = client.post(
        f"{API}/users",
        json={"username": "dispatcher2", "password": PASSWORD, "role": "dispatcher"},
        headers=auth.headers("admin"),
    )
    assert response.status_code == 201, response.json
    return response.json["id"]


# -- the list -------------------------------------------------------------------------------


def test_every_flag_is_an_open_item_and_the_push_wrote_no_review_row(
    client, auth, world, db, flagged
):
    page = _list(client, auth)
    assert _keys(page) == [
        (flagged.met, CREDENTIAL),
        (flagged.third, CREDENTIAL),
        (flagged.third, THIRD_PARTY),
    ]
    first = page["items"][0]
    assert (first["status"], first["version"], first["assignee_id"]) == ("open", 0, None)
    assert first["visit_id"] == world.visits["v1"] and first["day"] == TODAY
    assert first["agent_id"] == world.users["agent1"]
    assert first["details"]["contact_at"] and first["message"]
    assert page["next_after"] is None
    # open items are derived from the stored records: the push path wrote nothing for review
    assert db.execute("SELECT count(*) FROM flag_reviews").fetchone()[0] == 0


def test_filters_by_code_agent_day_status_and_team(client, auth, world, flagged):
    assert _keys(_list(client, auth, code=THIRD_PARTY)) == [(flagged.third, THIRD_PARTY)]
    assert len(_list(client, auth, agent_id=world.users["agent1"])["items"]) == 3
    assert _list(client, auth, agent_id=world.users["agent2"])["items"] == []
    assert len(_list(client, auth, day=TODAY)["items"]) == 3
    assert _list(client, auth, day="2026-11-25")["items"] == []
    assert _list(client, auth, visit_id=world.visits["v2"])["items"][0]["record_id"] == (
        flagged.third
    )
    assert _list(client, auth, team="north")["items"] == []
    patched = client.patch(
        f"{API}/users/{world.users['agent1']}",
        json={"region": "north"},
        headers=auth.headers("admin"),
    )
    assert patched.status_code == 200, patched.json
    north = _list(client, auth, team="north")["items"]
    assert len(north) == 3 and {item["team"] for item in north} == {"north"}
    resolved = _post(
        client,
        auth,
        flagged.met,
        CREDENTIAL,
        "resolve",
        {"disposition": "justified", "comment": COMMENT, "version": 0},
    )
    assert resolved.status_code == 200, resolved.json
    assert _keys(_list(client, auth, status="resolved")) == [(flagged.met, CREDENTIAL)]
    assert len(_list(client, auth, status="open")["items"]) == 2
    assert _list(client, auth, status="assigned")["items"] == []


def test_pages_follow_the_cursor_without_gaps_or_repeats(client, auth, flagged):
    first = _list(client, auth, limit=2)
    assert len(first["items"]) == 2 and first["next_after"] == first["items"][-1]["position"]
    second = _list(client, auth, limit=2, after=first["next_after"])
    assert second["next_after"] is None
    assert _keys(first) + _keys(second) == _keys(_list(client, auth))
    # the same cursor gives the same page
    assert _list(client, auth, limit=2, after=first["next_after"]) == second


# -- transitions ----------------------------------------------------------------------------


def test_assign_then_resolve_then_reopen_keeps_the_history(client, auth, world, db, flagged):
    dispatcher = world.users["dispatcher"]
    assigned = _post(
        client,
        auth,
        flagged.third,
        THIRD_PARTY,
        "assign",
        {"assignee_id": dispatcher, "version": 0},
    )
    assert assigned.status_code == 200, assigned.json
    assert (assigned.json["status"], assigned.json["assignee_id"]) == ("assigned", dispatcher)
    assert assigned.json["version"] == 1
    resolved = _post(
        client,
        auth,
        flagged.third,
        THIRD_PARTY,
        "resolve",
        {"disposition": "breach", "comment": COMMENT},
        headers={"If-Match": '"1"'},
    )
    assert resolved.status_code == 200, resolved.json
    body = resolved.json
    assert (body["status"], body["disposition"], body["comment"]) == ("resolved", "breach", COMMENT)
    assert body["resolved_by"] == dispatcher and body["resolved_at"].startswith(TODAY)
    reopened = _post(
        client,
        auth,
        flagged.third,
        THIRD_PARTY,
        "reopen",
        {"comment": "The agent disputes it", "version": 2},
    )
    assert reopened.status_code == 200, reopened.json
    # back to its reviewer, the disposition gone from the item
    assert (reopened.json["status"], reopened.json["assignee_id"]) == ("assigned", dispatcher)
    assert reopened.json["disposition"] is None and reopened.json["resolved_at"] is None
    item = client.get(_url(flagged.third, THIRD_PARTY), headers=auth.headers("dispatcher"))
    assert item.status_code == 200
    history = item.json["history"]
    assert [(h["action"], h["from_status"], h["to_status"]) for h in history] == [
        ("assign", "open", "assigned"),
        ("resolve", "assigned", "resolved"),
        ("reopen", "resolved", "assigned"),
    ]
    assert [h["version"] for h in history] == [1, 2, 3]
    assert [h["comment"] for h in history] == [None, COMMENT, "The agent disputes it"]
    assert history[1]["disposition"] == "breach"
    assert {h["acted_by"] for h in history} == {dispatcher}
    # every transition in the staff log, without the reviewer's words
    logged = list(
        db.query(
            "SELECT action, target_type, target_id, details, user_id FROM staff_audit "
            "WHERE action LIKE 'flag_review_%' ORDER BY id"
        )
    )
    assert [row["action"] for row in logged] == [
        "flag_review_assign",
        "flag_review_resolve",
        "flag_review_reopen",
    ]
    assert {row["target_id"] for row in logged} == {f"{flagged.third}/{THIRD_PARTY}"}
    assert {row["user_id"] for row in logged} == {dispatcher}
    assert json.loads(logged[1]["details"])["disposition"] == "breach"
    assert all(COMMENT not in row["details"] for row in logged)
    # the other items did not move
    others = _list(client, auth, status="open")
    assert _keys(others) == [(flagged.met, CREDENTIAL), (flagged.third, CREDENTIAL)]


@pytest.mark.parametrize("disposition", ["justified", "breach", "data_error"])
def test_resolve_with_each_disposition_and_not_twice(client, auth, world, db, flagged, disposition):
    body = {"disposition": disposition, "comment": COMMENT, "version": 0}
    first = _post(client, auth, flagged.met, CREDENTIAL, "resolve", body)
    assert first.status_code == 200, first.json
    assert (first.json["status"], first.json["disposition"]) == ("resolved", disposition)
    row = db.execute(
        "SELECT status, disposition, comment, version FROM flag_reviews "
        "WHERE record_id = ? AND code = ?",
        [flagged.met, CREDENTIAL],
    ).fetchone()
    assert tuple(row) == ("resolved", disposition, COMMENT, 1)
    again = _post(client, auth, flagged.met, CREDENTIAL, "resolve", {**body, "version": 1})
    assert again.status_code == 409
    assert again.json["error"]["code"] == "review_already_resolved"
    assign = _post(
        client,
        auth,
        flagged.met,
        CREDENTIAL,
        "assign",
        {"assignee_id": world.users["dispatcher"], "version": 1},
    )
    assert assign.status_code == 409
    assert assign.json["error"]["code"] == "review_already_resolved"
    assert db.execute("SELECT count(*) FROM flag_review_history").fetchone()[0] == 1


def test_reopening_an_item_that_is_not_resolved_is_a_conflict(client, auth, flagged):
    response = _post(
        client, auth, flagged.met, CREDENTIAL, "reopen", {"comment": "why", "version": 0}
    )
    assert response.status_code == 409
    assert response.json["error"]["code"] == "review_not_resolved"
    assert response.json["error"]["field"] == "status"


def test_two_reviewers_on_one_version_one_wins_the_other_gets_409(client, auth, world, flagged):
    other = _second_dispatcher(client, auth)
    mine = _post(
        client,
        auth,
        flagged.met,
        CREDENTIAL,
        "assign",
        {"assignee_id": world.users["dispatcher"], "version": 0},
    )
    assert mine.status_code == 200, mine.json
    theirs = _post(
        client,
        auth,
        flagged.met,
        CREDENTIAL,
        "resolve",
        {"disposition": "justified", "comment": COMMENT, "version": 0},
        user="dispatcher2",
    )
    assert theirs.status_code == 409
    assert theirs.json["error"]["code"] == "version_conflict"
    assert theirs.json["error"]["field"] == "version"
    assert theirs.json["error"]["details"]["current_version"] == 1
    # with the version they now see, the second reviewer takes it over
    retaken = _post(
        client,
        auth,
        flagged.met,
        CREDENTIAL,
        "assign",
        {"assignee_id": other},
        user="dispatcher2",
        headers={"If-Match": "1"},
    )
    assert retaken.status_code == 200, retaken.json
    assert (retaken.json["assignee_id"], retaken.json["version"]) == (other, 2)


# -- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("resolve", {"disposition": "justified", "version": 0}, "comment"),
        ("resolve", {"disposition": "justified", "comment": "   ", "version": 0}, "comment"),
        ("resolve", {"disposition": "fine", "comment": COMMENT, "version": 0}, "disposition"),
        ("resolve", {"comment": COMMENT, "version": 0}, "disposition"),
        ("resolve", {"disposition": "breach", "comment": "x" * 2001, "version": 0}, "comment"),
        ("reopen", {"version": 0}, "comment"),
        ("assign", {"version": 0}, "assignee_id"),
        ("assign", {"assignee_id": "2", "version": 0}, "assignee_id"),
        ("assign", {"assignee_id": 2, "version": -1}, "version"),
        ("assign", {"assignee_id": 2, "version": 0, "status": "resolved"}, "status"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(client, auth, flagged, action, body, field):
    response = _post(client, auth, flagged.met, CREDENTIAL, action, body)
    assert response.status_code == 422, response.json
    error = response.json["error"]
    assert field == error["field"] or field in error["details"].get("fields", {}), error


def test_assignee_must_be_an_active_dispatcher(client, auth, world, flagged):
    for user_id in (world.users["agent1"], world.users["privacy"], 1, 999999):
        response = _post(
            client, auth, flagged.met, CREDENTIAL, "assign", {"assignee_id": user_id, "version": 0}
        )
        assert response.status_code == 422, (user_id, response.json)
        assert response.json["error"]["field"] == "assignee_id"


def test_a_transition_needs_a_version_that_agrees(client, auth, world, flagged):
    body = {"assignee_id": world.users["dispatcher"]}
    missing = _post(client, auth, flagged.met, CREDENTIAL, "assign", body)
    assert missing.status_code == 428 and missing.json["error"]["code"] == "version_required"
    disagree = _post(
        client,
        auth,
        flagged.met,
        CREDENTIAL,
        "assign",
        {**body, "version": 0},
        headers={"If-Match": "3"},
    )
    assert disagree.status_code == 422 and disagree.json["error"]["field"] == "version"
    garbled = _post(
        client, auth, flagged.met, CREDENTIAL, "assign", body, headers={"If-Match": "abc"}
    )
    assert garbled.status_code == 422 and garbled.json["error"]["field"] == "If-Match"


def test_unknown_record_or_code_is_404(client, auth, flagged):
    headers = auth.headers("dispatcher")
    for record_id, code in (
        ("00000000-0000-4000-8000-000000000000", CREDENTIAL),
        (flagged.met, THIRD_PARTY),  # a real record without that flag
        ("not-a-record", "nothing"),
    ):
        read = client.get(_url(record_id, code), headers=headers)
        assert read.status_code == 404 and read.json["error"]["code"] == "not_found"
        written = _post(
            client,
            auth,
            record_id,
            code,
            "resolve",
            {"disposition": "breach", "comment": COMMENT, "version": 0},
        )
        assert written.status_code == 404, written.json
    # an upper-case spelling of a record id names the same record
    upper = client.get(_url(flagged.met.upper(), CREDENTIAL), headers=headers)
    assert upper.status_code == 200 and upper.json["record_id"] == flagged.met


def test_only_dispatchers_review(client, auth, world, flagged):
    urls = [
        ("GET", f"{API}/flags", None),
        ("GET", _url(flagged.met, CREDENTIAL), None),
        ("POST", _url(flagged.met, CREDENTIAL, "assign"), {"assignee_id": 2, "version": 0}),
        ("POST", _url(flagged.met, CREDENTIAL, "resolve"), {"disposition": "breach"}),
        ("POST", _url(flagged.met, CREDENTIAL, "reopen"), {"comment": "x", "version": 0}),
        ("GET", f"{API}/agents/{world.users['agent1']}/compliance-summary", None),
    ]
    for method, url, body in urls:
        for user in ("agent1", "privacy", "admin"):
            response = client.open(url, method=method, json=body, headers=auth.headers(user))
            assert response.status_code == 403, (method, url, user, response.status_code)
            assert response.json["error"]["code"] == "forbidden"
        anonymous = client.open(url, method=method, json=body)
        assert anonymous.status_code == 401
        allowed = client.open(url, method=method, json=body, headers=auth.headers("dispatcher"))
        assert allowed.status_code not in (401, 403), (method, url)


# -- the ledger -----------------------------------------------------------------------------


def test_the_review_list_is_ledgered_as_compliance_evidence(client, auth, world, db, flagged):
    headers = {**auth.headers("dispatcher"), "X-Request-Id": "flags-read-1"}
    page = client.get(f"{API}/flags", headers=headers)
    assert page.status_code == 200
    entries = list(db.query("SELECT * FROM exposure_ledger WHERE request_id = 'flags-read-1'"))
    borrowers = {
        visit: db.execute(
            "SELECT c.borrower_id FROM visits v JOIN cases c ON c.id = v.case_id WHERE v.id = ?",
            [world.visits[visit]],
        ).fetchone()[0]
        for visit in ("v1", "v2")
    }
    assert sorted(e["borrower_id"] for e in entries) == sorted(borrowers.values())
    for entry in entries:
        assert json.loads(entry["fields"]) == ["flag_details"]
        assert entry["purpose"] == "compliance_evidence"
        assert entry["user_id"] == world.users["dispatcher"]
    resolved = _post(
        client,
        auth,
        flagged.met,
        CREDENTIAL,
        "resolve",
        {"disposition": "justified", "comment": COMMENT, "version": 0},
        headers={"X-Request-Id": "flags-resolve-1"},
    )
    assert resolved.status_code == 200
    (entry,) = db.query("SELECT * FROM exposure_ledger WHERE request_id = 'flags-resolve-1'")
    assert entry["borrower_id"] == borrowers["v1"]


# -- the compliance summary -----------------------------------------------------------------


def _summary(client, auth, agent_id, **query):
    return client.get(
        f"{API}/agents/{agent_id}/compliance-summary",
        query_string=query,
        headers=auth.headers("dispatcher"),
    )


def test_the_summary_counts_visits_flags_breaches_and_open_items(client, auth, world, flagged):
    _post(
        client,
        auth,
        flagged.third,
        THIRD_PARTY,
        "resolve",
        {"disposition": "breach", "comment": COMMENT, "version": 0},
    )
    _post(
        client,
        auth,
        flagged.met,
        CREDENTIAL,
        "resolve",
        {"disposition": "data_error", "comment": COMMENT, "version": 0},
    )
    _post(
        client,
        auth,
        flagged.third,
        CREDENTIAL,
        "assign",
        {"assignee_id": world.users["dispatcher"], "version": 0},
    )
    response = _summary(client, auth, world.users["agent1"], **{"from": TODAY, "to": TODAY})
    assert response.status_code == 200, response.json
    summary = response.json
    assert (summary["from"], summary["to"]) == (TODAY, TODAY)
    assert summary["visits"] == {
        "planned": 0,
        "completed": 1,
        "attempted": 1,
        "missed": 0,
        "cancelled": 0,
        "total": 2,
    }
    assert summary["flags"] == [
        {
            "code": CREDENTIAL,
            "total": 2,
            "open": 0,
            "assigned": 1,
            "resolved": 1,
            "justified": 0,
            "breach": 0,
            "data_error": 1,
        },
        {
            "code": THIRD_PARTY,
            "total": 1,
            "open": 0,
            "assigned": 0,
            "resolved": 1,
            "justified": 0,
            "breach": 1,
            "data_error": 0,
        },
    ]
    assert (summary["flag_items"], summary["breaches"], summary["open_items"]) == (3, 1, 1)
    # agent2 reported nothing: its two visits are planned, no flags
    other = _summary(client, auth, world.users["agent2"], **{"from": TODAY, "to": TODAY}).json
    assert other["visits"]["planned"] == 2 and other["flags"] == []
    assert (other["breaches"], other["open_items"]) == (0, 0)
    # a period without the day counts nothing
    before = _summary(
        client, auth, world.users["agent1"], **{"from": "2026-11-01", "to": "2026-11-23"}
    ).json
    assert before["visits"]["total"] == 0 and before["flags"] == []
    # the default period ends today and covers it
    default = _summary(client, auth, world.users["agent1"]).json
    assert default["to"] == TODAY and default["flags"] == summary["flags"]


def test_summary_refuses_a_period_backwards_and_an_unknown_agent(client, auth, world):
    backwards = _summary(client, auth, world.users["agent1"], **{"from": TODAY, "to": "2026-11-01"})
    assert backwards.status_code == 422
    assert backwards.json["error"]["field"] == "to", backwards.json
    for agent_id in (world.users["dispatcher"], 999999):
        unknown = _summary(client, auth, agent_id)
        assert unknown.status_code == 404 and unknown.json["error"]["field"] == "agent_id"


# -- for the visit register -----------------------------------------------------------------


def test_review_states_answers_every_key_open_unless_reviewed(client, auth, db, flagged):
    _post(
        client,
        auth,
        flagged.met,
        CREDENTIAL,
        "resolve",
        {"disposition": "justified", "comment": COMMENT, "version": 0},
    )
    keys = [(flagged.met.upper(), CREDENTIAL), (flagged.third, THIRD_PARTY), ("nope", "x")]
    assert flag_reviews.review_states(db, keys) == {
        (flagged.met.upper(), CREDENTIAL): {"status": "resolved", "disposition": "justified"},
        (flagged.third, THIRD_PARTY): {"status": "open", "disposition": None},
        ("nope", "x"): {"status": "open", "disposition": None},
    }
    assert flag_reviews.review_states(db, []) == {}


def test_a_retention_purge_of_the_record_takes_its_review_with_it(
    app, client, auth, db, clock, flagged
):
    resolved = _post(
        client,
        auth,
        flagged.met,
        CREDENTIAL,
        "resolve",
        {"disposition": "breach", "comment": COMMENT, "version": 0},
    )
    assert resolved.status_code == 200
    assert db.execute("SELECT count(*) FROM flag_review_history").fetchone()[0] == 1
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):  # history is not edited
        db.execute("UPDATE flag_review_history SET comment = 'x'")
    clock.advance(days=1100)  # past the evidence clock (3 years after the last activity)
    result = app.test_cli_runner().invoke(args=["purge"])
    assert result.exit_code == 0, result.output
    assert (
        db.execute("SELECT count(*) FROM sync_records WHERE id = ?", [flagged.met]).fetchone()[0]
        == 0
    )
    assert db.execute("SELECT count(*) FROM flag_reviews").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM flag_review_history").fetchone()[0] == 0
