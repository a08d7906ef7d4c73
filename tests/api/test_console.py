"""The web console through the Flask test client: sign-in (cookie flags, throttling, agents
refused, idle timeout, sign-out), CSRF on every form, the dispatcher's board and reassign
(with the conflict shown), the case page, flag review, the register, the privacy officer's
ledger pages; and what each page writes to the exposure ledger."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html import unescape

import pytest

from server.keys import development_key_path
from tests.api.console_steps import csrf_of, post_form, sign_in
from tests.api.lifecycle_steps import pull, push, report
from tests.api.test_contact_compliance import seven_calls
from tests.api.test_contacts import import_rows, iso
from tests.conftest import T0, TODAY


def _page(client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return response.get_data(as_text=True)


def _ledger_rows(db, endpoint: str) -> list[dict]:
    return list(
        db.query("SELECT * FROM exposure_ledger WHERE endpoint = ? ORDER BY seq", [endpoint])
    )


@pytest.fixture
def dispatcher(app, world):
    client = app.test_client()
    assert sign_in(client, "dispatcher").status_code == 302
    return client


@pytest.fixture
def privacy(app, world):
    client = app.test_client()
    assert sign_in(client, "privacy").status_code == 302
    return client


# -- signing in --------------------------------------------------------------------------------


def test_session_cookie_is_httponly_strict_and_secure_outside_development(
    make_app, world, tmp_path
):
    client = world.app.test_client()
    cookie = sign_in(client, "dispatcher").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # development: plain http on the loopback
    # The same key as the first app (make_app's STATE_DIR is tmp_path), on either engine.
    key = development_key_path({"DATABASE": world.app.config["DATABASE"], "STATE_DIR": tmp_path})
    production = make_app(DOORSTEP_ENV="production", SIGNING_KEY_FILE=str(key)).test_client()
    page = production.get("/console/sign-in", base_url="https://console.bank.example")
    token = csrf_of(page.get_data(as_text=True))
    response = production.post(
        "/console/sign-in",
        data={"username": "dispatcher", "password": "correct-horse-battery", "csrf_token": token},
        base_url="https://console.bank.example",
        headers={"Referer": "https://console.bank.example/console/sign-in"},
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    assert "; Secure" in response.headers["Set-Cookie"]


@pytest.mark.parametrize(
    ("user", "menu", "absent"),
    [
        (
            "dispatcher",
            [
                "console.board",
                "console.replan",
                "console.assignment_proposal",
                "console.promises",
                "console.flags",
                "console.register",
            ],
            "console.ledger",
        ),
        (
            "privacy",
            [
                "console.ledger",
                "console.disclosures",
                "console.anomalies",
                "console.history",
                "console.retention_status",
                "console.evidence",
            ],
            "console.board",
        ),
        ("admin", ["console.ledger"], "console.disclosures"),
    ],
)
def test_each_role_sees_only_its_menu(app, world, user, menu, absent):
    client = app.test_client()
    assert sign_in(client, user).headers["Location"] == "/console/"
    html = _page(client, "/console/")
    shown = [part.split('"')[0] for part in html.split('data-menu="')[1:]]
    assert shown == menu
    assert absent not in html


def test_an_agent_is_refused_and_gets_no_session(app, world, db):
    client = app.test_client()
    response = sign_in(client, "agent1")
    assert response.status_code == 403
    assert "phone app" in response.get_data(as_text=True)
    assert "doorstep_console=" not in response.headers.get("Set-Cookie", "")
    assert client.get("/console/board").status_code == 302  # to the sign-in page
    refused = db.query("SELECT * FROM staff_audit WHERE action = 'console_refused'")
    assert [row["username"] for row in refused] == ["agent1"]


def test_wrong_passwords_are_throttled_as_at_the_api(app, world):
    client = app.test_client()
    statuses = [sign_in(client, "dispatcher", "wrong").status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    response = sign_in(client, "dispatcher")  # the right password waits too
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1


def test_a_post_without_the_csrf_token_is_refused(dispatcher, world, db):
    before = db.execute("SELECT version, agent_id FROM visits WHERE id = ?", [world.visits["v1"]])
    before = before.fetchone()
    response = dispatcher.post(
        f"/console/visits/{world.visits['v1']}/reassign",
        data={"agent_id": world.users["agent2"], "version": before[0], "day": TODAY},
    )
    assert response.status_code == 400
    assert "csrf_failed" in response.get_data(as_text=True)
    after = db.execute("SELECT version, agent_id FROM visits WHERE id = ?", [world.visits["v1"]])
    assert after.fetchone() == before
    no_form = dispatcher.post("/console/sign-out")
    assert no_form.status_code == 400
    assert dispatcher.get("/console/board").status_code == 200  # still signed in


def test_sign_out_ends_the_session_for_good(app, world, db):
    client = app.test_client()
    sign_in(client, "dispatcher")
    cookie = client.get_cookie("doorstep_console", path="/console").value
    response = post_form(client, "/console/", "/console/sign-out", {})
    assert response.status_code == 302 and response.headers["Location"] == "/console/sign-in"
    replay = app.test_client()
    replay.set_cookie("doorstep_console", cookie, path="/console")
    assert replay.get("/console/board").status_code == 302  # the old cookie opens nothing
    ended = db.query("SELECT end_reason FROM sessions WHERE end_reason IS NOT NULL")
    assert [row["end_reason"] for row in ended] == ["logout"]


def test_signing_in_again_ends_the_earlier_session(app, world, db):
    client = app.test_client()
    sign_in(client, "dispatcher")
    sign_in(client, "privacy")
    assert "console.ledger" in _page(client, "/console/")
    ended = db.query("SELECT end_reason FROM sessions WHERE end_reason IS NOT NULL")
    assert [row["end_reason"] for row in ended] == ["replaced"]


def test_an_idle_session_times_out(dispatcher, world, db):
    world.clock.advance(seconds=15 * 60 - 1)
    assert dispatcher.get("/console/board").status_code == 200  # activity moves the clock on
    world.clock.advance(seconds=15 * 60)
    response = dispatcher.get("/console/board")
    assert response.status_code == 302 and "/console/sign-in" in response.headers["Location"]
    ended = db.query("SELECT end_reason FROM sessions WHERE end_reason IS NOT NULL")
    assert [row["end_reason"] for row in ended] == ["idle_timeout"]


def test_the_language_choice_is_remembered(dispatcher):
    post_form(dispatcher, "/console/board", "/console/language", {"lang": "zh_Hans"})
    html = _page(dispatcher, "/console/board")
    assert '<html lang="zh-Hans">' in html and "派单看板" in html
    post_form(dispatcher, "/console/board", "/console/language", {"lang": "en"})
    assert "Day board" in _page(dispatcher, "/console/board")


def test_the_browser_language_is_the_default(app, world):
    client = app.test_client()
    page = client.get("/console/sign-in", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert "登录" in page.get_data(as_text=True)


def test_every_page_names_its_icon_which_the_page_policy_lets_load(app, dispatcher):
    # Without a declared icon the browser asks for /favicon.ico, gets a 404 and logs an
    # error on every first page it opens (the board's drag-and-drop test saw it run alone).
    for client, url in ((app.test_client(), "/console/sign-in"), (dispatcher, "/console/board")):
        page = client.get(url)
        icon = re.search(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)">', page.text)
        assert icon is not None, url
        assert "img-src 'self'" in page.headers["Content-Security-Policy"]
        served = client.get(icon.group(1))
        assert served.status_code == 200 and served.mimetype == "image/svg+xml"
        assert served.get_data().startswith(b"<svg")


# -- the dispatcher ----------------------------------------------------------------------------


def test_the_board_counts_every_agent_and_ledgers_only_the_agent_opened(dispatcher, world, db):
    html = _page(dispatcher, f"/console/board?day={TODAY}")
    assert 'id="visit-' not in html and "Borrower 1" not in html  # counts only
    assert "phone-agent1: never synced" in html and "Open visits" in html
    assert _ledger_rows(db, "GET /console/board") == []  # a count is not a borrower fact
    agent1 = world.users["agent1"]
    html = _page(dispatcher, f"/console/board?day={TODAY}&agent={agent1}")
    shown = {int(i) for i in re.findall(r'<tr id="visit-(\d+)"', html)}
    mine = {world.visits[k] for k in ("v1", "v2")}
    assert shown == mine
    rows = _ledger_rows(db, "GET /console/board")
    assert {row["visit_id"] for row in rows} == mine  # only the cards shown are ledgered
    assert {row["purpose"] for row in rows} == {"dispatch_planning"}
    assert f'name="open" value="{agent1}"' in html  # a reassign comes back to this agent


def test_visits_of_agents_not_on_the_board_are_counted_and_open_together(dispatcher, world, db):
    db.execute("UPDATE users SET active = 0 WHERE id = ?", [world.users["agent2"]])
    db.execute("UPDATE visits SET agent_id = NULL WHERE id = ?", [world.visits["v4"]])
    db.conn.commit()
    html = _page(dispatcher, f"/console/board?day={TODAY}")
    assert 'id="agent-others"' in html and 'id="visit-' not in html
    html = _page(dispatcher, f"/console/board?day={TODAY}&agent=others")
    shown = {int(i) for i in re.findall(r'<tr id="visit-(\d+)"', html)}
    assert shown == {world.visits["v3"], world.visits["v4"]}  # an inactive agent's, nobody's
    rows = _ledger_rows(db, "GET /console/board")
    assert {row["visit_id"] for row in rows} == shown


def test_the_board_refuses_an_unreadable_agent(dispatcher):
    response = dispatcher.get("/console/board?agent=everyone")
    assert response.status_code == 422
    assert "agent" in response.get_data(as_text=True)


def test_the_board_shows_each_agent_with_visits_and_phone_health(dispatcher, world, db):
    html = _page(dispatcher, f"/console/board?day={TODAY}&agent=all")
    for key in ("v1", "v2", "v3", "v4"):
        assert f'id="visit-{world.visits[key]}"' in html
    assert "phone-agent1: never synced" in html
    assert "Borrower 1" in html
    # The board ledgers as GET /visits does: one entry per borrower on it, dispatch purpose.
    rows = _ledger_rows(db, "GET /console/board")
    assert sorted(row["visit_id"] for row in rows) == sorted(world.visits.values())
    assert {row["purpose"] for row in rows} == {"dispatch_planning"}
    assert all("national_id" not in json.loads(row["fields"]) for row in rows)
    assert "3101011990010" not in html  # the ID number is never a dispatcher's


def test_the_page_request_id_is_the_ledger_entry_request_id(dispatcher, world, db):
    response = dispatcher.get(f"/console/cases/{world.cases['C-0001']}")
    assert response.status_code == 200
    rows = _ledger_rows(db, "GET /console/cases/<int:case_id>")
    assert [row["request_id"] for row in rows] == [response.headers["X-Request-Id"]]
    assert rows[0]["user_id"] == world.users["dispatcher"] and rows[0]["role"] == "dispatcher"


def test_reassign_by_form_purges_the_card_from_the_old_phone(dispatcher, client, auth, world):
    first = pull(client, auth, "agent1")
    assert world.visits["v1"] in [v["id"] for v in first["upserts"]]
    visit = world.visits["v1"]
    response = post_form(
        dispatcher,
        "/console/board",
        f"/console/visits/{visit}/reassign",
        {"agent_id": world.users["agent2"], "version": 1, "day": TODAY},
    )
    assert response.status_code == 302
    assert f"Visit {visit} reassigned" in _page(dispatcher, response.headers["Location"])
    after = pull(client, auth, "agent1", first["cursor"])
    assert {"visit_id": visit, "reason": "reassigned"}.items() <= after["purges"][0].items()


def test_a_stale_reassign_shows_the_conflict_and_changes_nothing(dispatcher, world, db):
    visit = world.visits["v2"]
    page = _page(dispatcher, "/console/board")
    token = csrf_of(page)
    form = {"agent_id": world.users["agent2"], "version": 1, "day": TODAY, "csrf_token": token}
    assert dispatcher.post(f"/console/visits/{visit}/reassign", data=form).status_code == 302
    stale = {**form, "agent_id": world.users["agent1"]}  # another tab, same old version
    response = dispatcher.post(f"/console/visits/{visit}/reassign", data=stale)
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert 'id="board-problem"' in html and "your version 1, now 2" in html
    row = db.execute("SELECT agent_id, version FROM visits WHERE id = ?", [visit]).fetchone()
    assert tuple(row) == (world.users["agent2"], 2)


def test_the_case_page_shows_the_card_and_the_timeline(dispatcher, world):
    html = _page(dispatcher, f"/console/cases/{world.cases['C-0001']}")
    assert "Borrower 1" in html and 'id="timeline"' in html
    assert "138****0001" in html  # masked, never the full number
    assert "13812340001" not in html and "Sister 1" not in html


def test_the_route_map_draws_each_stop_and_ledgers_the_homes(dispatcher, world, db):
    html = _page(dispatcher, f"/console/agents/{world.users['agent1']}/days/{TODAY}/map")
    assert '<svg id="route-map"' in html
    assert html.count('<g class="stop">') == 2  # agent1's two visits, in route order
    assert "<polyline" in html
    rows = _ledger_rows(db, "GET /console/agents/<int:agent_id>/days/<string:day>/map")
    assert sorted(r["visit_id"] for r in rows) == sorted([world.visits["v1"], world.visits["v2"]])
    assert all("home_geo" in json.loads(r["fields"]) for r in rows)
    assert _page(dispatcher, f"/console/agents/{world.users['dispatcher']}/days/{TODAY}/map", 404)


def test_a_tile_server_lays_tiles_under_the_map_and_is_the_one_other_image_origin(
    make_app, world, dispatcher, tmp_path
):
    day_map = f"/console/agents/{world.users['agent1']}/days/{TODAY}/map"
    plain = dispatcher.get(day_map)
    assert "<image" not in plain.get_data(as_text=True)
    assert "img-src 'self' data:;" in plain.headers["Content-Security-Policy"]
    key = development_key_path({"DATABASE": world.app.config["DATABASE"], "STATE_DIR": tmp_path})
    tiled = make_app(
        CONSOLE_MAP_TILE_URL="https://tiles.bank.example/{z}/{x}/{y}.png",
        SIGNING_KEY_FILE=str(key),
    ).test_client()
    assert sign_in(tiled, "dispatcher").status_code == 302
    response = tiled.get(day_map)
    assert response.status_code == 200
    assert '<image class="tile" href="https://tiles.bank.example/' in response.get_data(
        as_text=True
    )
    policy = response.headers["Content-Security-Policy"]
    assert "img-src 'self' data: https://tiles.bank.example;" in policy
    assert "script-src 'self';" in policy and "unsafe" not in policy  # the app's own only
    with pytest.raises(ValueError, match="DOORSTEP_CONSOLE_MAP_TILE_URL"):
        make_app(CONSOLE_MAP_TILE_URL="tiles.bank.example", SIGNING_KEY_FILE=str(key))


def test_an_unknown_case_is_a_404_page(dispatcher):
    html = _page(dispatcher, "/console/cases/999", 404)
    assert "not_found" in html


def test_the_replan_list_shows_missed_visits_and_ledgers_them(dispatcher, world, db):
    world.clock.advance(days=1)  # yesterday's visits, never reported, are missed now
    assert sign_in(dispatcher, "dispatcher").status_code == 302  # a day idle: signed out
    html = _page(dispatcher, "/console/replan")
    assert 'id="replan"' in html and "C-0001" in html and "missed" in html
    rows = _ledger_rows(db, "GET /console/replan")
    assert rows and {r["purpose"] for r in rows} == {"dispatch_planning"}


def test_reorder_a_day_by_form_with_the_version_check(dispatcher, world, db):
    agent1, (v1, v2) = world.users["agent1"], (world.visits["v1"], world.visits["v2"])
    day_map = f"/console/agents/{agent1}/days/{TODAY}/map"
    html = _page(dispatcher, day_map)
    assert 'id="reorder"' in html and f'value="{v1}:1"' in html
    order = f"/console/agents/{agent1}/days/{TODAY}/order"
    form = {"visit": [f"{v1}:1", f"{v2}:1"], f"position-{v1}": 2, f"position-{v2}": 1}
    response = post_form(dispatcher, day_map, order, form)
    assert response.status_code == 302, response.get_data(as_text=True)[:1000]
    rows = dict(db.execute("SELECT id, route_order FROM visits WHERE id IN (?, ?)", [v1, v2]))
    assert rows[v2] < rows[v1]  # v2 comes first now
    stale = post_form(dispatcher, day_map, order, form)  # the versions moved on
    assert stale.status_code == 409
    assert 'id="order-problem"' in stale.get_data(as_text=True)
    unreadable = post_form(dispatcher, day_map, order, {**form, f"position-{v1}": "first"})
    assert unreadable.status_code == 422
    assert "position-" in unreadable.get_data(as_text=True)


def test_a_proposed_route_is_shown_ledgered_and_not_applied(dispatcher, world, db):
    agent1 = world.users["agent1"]
    before = list(db.execute("SELECT id, version, route_order FROM visits ORDER BY id"))
    html = _page(dispatcher, f"/console/agents/{agent1}/days/{TODAY}/proposal")
    assert 'id="proposal-note"' in html and 'id="reorder"' in html
    assert list(db.execute("SELECT id, version, route_order FROM visits ORDER BY id")) == before
    rows = _ledger_rows(db, "GET /console/agents/<int:agent_id>/days/<string:day>/proposal")
    assert {r["visit_id"] for r in rows} == {world.visits["v1"], world.visits["v2"]}
    assert {r["purpose"] for r in rows} == {"dispatch_planning"}
    assert "3101011990010" not in html and "13812340001" not in html


def test_the_assignment_proposal_for_the_open_visits_and_accepting_it(dispatcher, world, db):
    v4 = world.visits["v4"]
    db.execute("UPDATE visits SET agent_id = NULL WHERE id = ?", [v4])  # nobody holds it
    db.conn.commit()
    html = _page(dispatcher, f"/console/assignment-proposal?day={TODAY}")
    assert 'id="assignment"' in html
    proposed = re.findall(r'name="visit" value="([0-9:]+)"', html)
    taker = {int(v.split(":")[0]): int(v.split(":")[2]) for v in proposed}
    assert v4 in taker and taker[v4] in (world.users["agent1"], world.users["agent2"])
    rows = _ledger_rows(db, "GET /console/assignment-proposal")
    assert rows and {r["purpose"] for r in rows} == {"dispatch_planning"}
    response = post_form(
        dispatcher,
        f"/console/assignment-proposal?day={TODAY}",
        "/console/assignment",
        {"day": TODAY, "visit": proposed},
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:1000]
    agent = db.execute("SELECT agent_id FROM visits WHERE id = ?", [v4]).fetchone()[0]
    assert agent == taker[v4]
    stale = post_form(
        dispatcher,
        f"/console/assignment-proposal?day={TODAY}",
        "/console/assignment",
        {"day": TODAY, "visit": proposed},  # the versions moved on
    )
    assert stale.status_code == 409


def test_the_broken_promises_worklist_is_ledgered_with_the_next_step(dispatcher, world, db):
    db.execute(
        "INSERT INTO promises (source, source_id, case_id, agent_id, amount, due_date, made_at) "
        "VALUES ('phone_call', 'call-1', ?, ?, '90.00', '2026-11-20', '2026-11-18T02:00:00Z')",
        [world.cases["C-0002"], world.users["agent1"]],
    )
    db.conn.commit()
    html = _page(dispatcher, f"/console/promises?day={TODAY}")
    assert 'id="promises"' in html and "C-0002" in html and "90.00" in html
    rows = _ledger_rows(db, "GET /console/promises")
    assert [r["case_id"] for r in rows] == [world.cases["C-0002"]]
    assert rows[0]["purpose"] == "dispatch_planning"
    assert "promise_to_pay" in json.loads(rows[0]["fields"])
    assert "13812340002" not in html  # no phone number on a worklist
    assert _page(dispatcher, "/console/promises?day=soon", 422)


# -- the supervisor ----------------------------------------------------------------------------


def test_resolve_a_flag_by_form(dispatcher, client, auth, world, db):
    outcomes = push(client, auth, "agent1", [report(world.visits["v1"], "met_borrower")])
    record, code = outcomes[0]["record_id"], outcomes[0]["flags"][0]["code"]
    queue = _page(dispatcher, "/console/flags?status=open")
    assert f"/console/flags/{record}/{code}" in queue
    item = f"/console/flags/{record}/{code}"
    response = post_form(
        dispatcher,
        item,
        f"{item}/resolve",
        {"disposition": "justified", "comment": "badge shown, app offline", "version": 0},
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:1000]
    html = _page(dispatcher, item)
    assert 'id="flag-status">resolved' in html and "badge shown, app offline" in html
    stale = post_form(dispatcher, item, f"{item}/reopen", {"comment": "again", "version": 0})
    assert stale.status_code == 409
    assert len(_ledger_rows(db, "GET /console/flags/<string:record_id>/<string:code>")) >= 1


def test_an_agents_compliance_summary(dispatcher, client, auth, world):
    push(client, auth, "agent1", [report(world.visits["v1"], "met_borrower")])
    html = _page(dispatcher, f"/console/agents/{world.users['agent1']}/compliance")
    assert 'id="compliance-summary"' in html and "credential_not_shown_first" in html
    assert _page(dispatcher, f"/console/agents/{world.users['agent1']}/compliance?from=x", 422)


def test_the_register_page_and_its_csv(dispatcher, world, db):
    html = _page(dispatcher, f"/console/register?day={TODAY}")
    assert 'id="register"' in html and "C-0001" in html
    response = dispatcher.get(f"/console/register.csv?day={TODAY}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "C-0001" in response.get_data(as_text=True)
    assert {row["purpose"] for row in _ledger_rows(db, "GET /console/register.csv")} == {
        "visit_register"
    }
    bad = dispatcher.get("/console/register?day=yesterday")
    assert bad.status_code == 422


# -- the privacy officer -----------------------------------------------------------------------


def test_anomalies_page_lists_ids_and_writes_no_ledger_entry(privacy, world, db, client, auth):
    client.get("/api/v1/visits", headers=auth.headers("dispatcher"))  # entries to look at
    before = db.execute("SELECT count(*) FROM exposure_ledger").fetchone()[0]
    html = _page(privacy, "/console/anomalies?kind=no_assignment&kind=unusual_volume")
    assert 'id="anomalies"' in html and 'id="anomaly-total"' in html
    assert "Borrower 1" not in html  # ids and field names only
    assert db.execute("SELECT count(*) FROM exposure_ledger").fetchone()[0] == before
    assert _page(privacy, "/console/anomalies?kind=bad_luck", 422)


def test_agent_and_device_histories(privacy, world, db, client, auth):
    client.get(f"/api/v1/me/day?date={TODAY}", headers=auth.headers("agent1"))
    agent1 = world.users["agent1"]
    html = _page(privacy, f"/console/history?user_id={agent1}")
    assert 'id="history"' in html and "display_name" in html  # the field's name
    assert "Borrower 1" not in html  # never its value
    device = db.execute("SELECT id FROM devices LIMIT 1").fetchone()[0]
    assert 'id="history"' in _page(privacy, f"/console/history?device_id={device}")
    assert 'id="history"' not in _page(privacy, "/console/history")  # the form only
    assert _page(privacy, f"/console/history?user_id={agent1}&device_id={device}", 422)
    assert _page(privacy, "/console/history?user_id=me", 422)
    assert _ledger_rows(db, "GET /console/history") == []


def test_retention_rules_and_purge_certificates(privacy, world, app):
    html = _page(privacy, "/console/retention")
    assert 'id="retention-rules"' in html and "No purge has run yet." in html
    result = app.test_cli_runner().invoke(args=["purge"])
    assert result.exit_code == 0, result.output
    html = _page(privacy, "/console/retention")
    assert "No purge has run yet." not in html and 'id="purge-certificates"' in html


def test_build_an_evidence_pack_and_see_it_listed(privacy, world, db):
    case_id = world.cases["C-0001"]
    page = _page(privacy, "/console/evidence")
    assert "No pack built yet." in page
    response = post_form(
        privacy, "/console/evidence", "/console/evidence", {"case_id": case_id, "reason": "Court"}
    )
    assert response.status_code == 200 and response.mimetype == "application/x-tar"
    pack_id = response.headers["X-Evidence-Pack-Id"]
    rows = _ledger_rows(db, "POST /console/evidence")
    assert [r["case_id"] for r in rows] == [case_id]
    assert rows[0]["purpose"] == "legal_escalation"
    held = db.execute("SELECT legal_hold FROM cases WHERE id = ?", [case_id]).fetchone()[0]
    assert held == 1
    assert pack_id in _page(privacy, "/console/evidence")
    missing = post_form(privacy, "/console/evidence", "/console/evidence", {"case_id": case_id})
    assert missing.status_code == 422


def test_ledger_status_verify_and_checkpoint(privacy, dispatcher, world, db):
    _page(dispatcher, "/console/board?agent=all")  # something in the ledger to sign
    html = _page(privacy, "/console/ledger")
    assert 'id="last-checkpoint"' in html
    report_html = _page(privacy, "/console/ledger/verify")
    assert "The chain is intact" in report_html
    response = post_form(
        privacy, "/console/ledger", "/console/ledger/checkpoints", {"reason": "audit"}
    )
    assert response.status_code == 302
    html = _page(privacy, "/console/ledger")
    head = db.execute("SELECT max(seq) FROM exposure_ledger").fetchone()[0]
    assert f"signs entry {head}" in html and "audit" in html


def test_the_disclosure_report_names_fields_never_values(privacy, dispatcher, world):
    _page(dispatcher, f"/console/cases/{world.cases['C-0001']}")
    borrower = 1
    html = _page(privacy, f"/console/disclosures?borrower_id={borrower}")
    assert 'id="disclosure-report"' in html
    assert "GET /console/cases/&lt;int:case_id&gt;" in html and "home_address" in html
    assert "Borrower 1" not in html and "1 Test Road" not in html


def test_a_contact_review_item_shows_without_agent_or_visit(client, auth, world):
    """A flag on an imported call (no Doorstep agent, no visit) is listed and opens."""
    seven_calls(client, auth, world.cases["C-0002"])
    row = {
        "case_external_id": "C-0002",
        "channel": "phone_call",
        "occurred_at": iso(T0 - timedelta(minutes=3)),
        "outcome": "voicemail",
        "agent": "dialer-seat-7",
    }
    assert import_rows(client, auth, json.dumps(row), "application/x-ndjson").status_code == 200
    (item,) = client.get(
        "/api/v1/flags",
        query_string={"code": "call_frequency_exceeded"},
        headers=auth.headers("dispatcher"),
    ).json["items"]
    sign_in(client, "dispatcher")
    listed = client.get("/console/flags")
    assert listed.status_code == 200
    assert item["record_id"] in listed.get_data(as_text=True)
    opened = client.get(f"/console/flags/{item['record_id']}/call_frequency_exceeded")
    assert opened.status_code == 200
    assert "#None" not in opened.get_data(as_text=True)


# -- words, not code words ---------------------------------------------------------------------

_HIDDEN = re.compile(r"<(script|style|code)\b[^>]*>.*?</\1>|<[^>]+>", re.S)
_CODE_WORD = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")


def _code_words_shown(html: str) -> set[str]:
    """Code words (met_borrower, outside_visit_hours, …) a reader sees: tags, scripts and
    <code> elements (where a code is shown on purpose, beside its words) left out."""
    return set(_CODE_WORD.findall(unescape(_HIDDEN.sub(" ", html))))


@pytest.mark.parametrize("language", ["en", "zh_Hans"])
def test_no_console_page_shows_a_code_word(app, world, client, auth, language):
    # Every page the console serves, found from the URL map (a new page is swept too), for
    # both staff roles, with a flag, a logged call and a visit outcome in the data.
    outcomes = push(client, auth, "agent1", [report(world.visits["v1"], "met_borrower")])
    record, code = outcomes[0]["record_id"], outcomes[0]["flags"][0]["code"]
    seven_calls(client, auth, world.cases["C-0001"])
    values = {
        "case_id": world.cases["C-0001"],
        "agent_id": world.users["agent1"],
        "day": TODAY,
        "record_id": record,
        "code": code,
        "filename": "console.css",
    }
    shown, pages = {}, 0
    for user in ("dispatcher", "privacy"):
        browser = app.test_client()
        browser.set_cookie("doorstep_lang", language, path="/console")
        assert sign_in(browser, user).status_code == 302
        for rule in app.url_map.iter_rules():
            if not rule.rule.startswith("/console") or "GET" not in rule.methods:
                continue
            if rule.rule.endswith(".csv"):
                continue  # data for a spreadsheet, not a page
            url = rule.rule
            for name in rule.arguments:
                url = re.sub(rf"<(?:[^:>]+:)?{name}>", str(values[name]), url)
            response = browser.get(url)
            if response.status_code == 403 or response.mimetype != "text/html":
                continue  # the other role's page, a stylesheet, a CSV
            assert response.status_code == 200, (user, url)
            pages += 1
            if words := _code_words_shown(response.get_data(as_text=True)):
                shown[url] = sorted(words)
    assert pages >= 20
    assert shown == {}


def test_every_code_the_data_can_hold_has_words():
    # Flags, channels, outcomes, kinds: a code added to the domain must be added to the
    # console's vocabulary (and its catalogues), or pages would show it raw.
    from server.console.vocabulary import WORDS
    from server.domain.anomaly_rules import ANOMALY_KINDS
    from server.domain.retention import KINDS as RETENTION_KINDS
    from sync import compliance, contact_rules, contacts, records
    from sync.cases import CONTACT_CHANNELS

    flag_codes = {
        value
        for module in (compliance, contact_rules)
        for name, value in vars(module).items()
        if name.isupper() and isinstance(value, str) and re.fullmatch(r"[a-z_]+", value)
    }
    assert {"credential_not_shown_first", "call_frequency_exceeded"} <= flag_codes
    codes = (
        flag_codes
        | set(contacts.CHANNELS)
        | set(contacts.DIRECTIONS)
        | {o for outcomes in contacts.OUTCOMES.values() for o in outcomes}
        | set(records.RECORD_KINDS)
        | set(records.CONFIRMATION_KINDS)
        | set(CONTACT_CHANNELS)
        | set(ANOMALY_KINDS)
        | set(RETENTION_KINDS)
    )
    assert sorted(codes - set(WORDS)) == []
