"""The console's role x page matrix, discovered from the app's url_map: every /console route
is public on purpose or guarded by console_requires(...), its roles are the ones listed
here (a new route fails until it is added), a role outside them gets 403, a role inside is
let through, an agent never gets a session, and nobody signed out reaches a guarded page."""

from __future__ import annotations

import pytest

from server.console.blueprint import PUBLIC_ENDPOINTS
from tests.api.console_steps import csrf_of, sign_in
from tests.api.lifecycle_steps import push, report
from tests.conftest import TODAY

CONSOLE_ROLES = ("dispatcher", "privacy_officer", "admin")
USER_OF_ROLE = {"dispatcher": "dispatcher", "privacy_officer": "privacy", "admin": "admin"}
D, P, A = {"dispatcher"}, {"privacy_officer"}, {"admin"}

# Every guarded console page and who may use it (dispatchers also supervise).
KNOWN = {
    ("GET", "console.home"): D | P | A,
    ("POST", "console.sign_out"): D | P | A,
    ("GET", "console.board"): D,
    ("POST", "console.reassign"): D,
    ("GET", "console.case"): D,
    ("GET", "console.route_map"): D,
    ("GET", "console.replan"): D,
    ("GET", "console.route_proposal"): D,
    ("POST", "console.reorder"): D,
    ("GET", "console.assignment_proposal"): D,
    ("POST", "console.accept_assignment"): D,
    ("GET", "console.promises"): D,
    ("GET", "console.compliance"): D,
    ("GET", "console.flags"): D,
    ("GET", "console.flag"): D,
    ("POST", "console.flag_action"): D,
    ("GET", "console.register"): D,
    ("GET", "console.register_csv"): D,
    ("GET", "console.ledger"): P | A,
    ("POST", "console.take_checkpoint"): P | A,
    ("GET", "console.verify_ledger"): P,
    ("GET", "console.disclosures"): P,
    ("GET", "console.anomalies"): P,
    ("GET", "console.history"): P,
    ("GET", "console.retention_status"): P,
    ("GET", "console.evidence"): P,
    ("POST", "console.build_evidence"): P,
}


def _operations(app) -> list[tuple[str, str, str]]:
    """(method, endpoint, rule) of every console route, from the url_map."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("console."):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                found.append((method, rule.endpoint, rule.rule))
    return found


def _path(rule: str, values: dict) -> str:
    path = rule
    for name, value in values.items():
        for kind in ("int", "string"):
            path = path.replace(f"<{kind}:{name}>", str(value))
    assert "<" not in path, path
    return path


@pytest.fixture
def values(client, auth, world) -> dict:
    outcome = push(client, auth, "agent1", [report(world.visits["v1"], "met_borrower")])[0]
    return {
        "visit_id": world.visits["v2"],
        "case_id": world.cases["C-0001"],
        "record_id": outcome["record_id"],
        "code": outcome["flags"][0]["code"],
        "action": "assign",
        "agent_id": world.users["agent1"],
        "day": TODAY,
    }


def test_every_console_route_is_public_or_guarded_with_known_roles(app):
    guarded = {}
    for method, endpoint, _rule in _operations(app):
        if endpoint in PUBLIC_ENDPOINTS:
            continue
        roles = getattr(app.view_functions[endpoint], "_console_roles", None)
        assert roles is not None, f"{endpoint} is neither public nor console_requires(...)"
        guarded[(method, endpoint)] = set(roles)
    assert guarded == KNOWN


def _call(client, method: str, path: str):
    if method == "GET":
        return client.get(path)
    token = csrf_of(client.get("/console/").get_data(as_text=True))
    return client.post(path, data={"csrf_token": token})


@pytest.mark.parametrize("role", CONSOLE_ROLES)
def test_each_role_gets_exactly_its_pages(app, world, values, db, role):
    for method, endpoint, rule in _operations(app):
        if endpoint in PUBLIC_ENDPOINTS:
            continue
        client = app.test_client()
        assert sign_in(client, USER_OF_ROLE[role]).status_code == 302
        response = _call(client, method, _path(rule, values))
        where = (method, endpoint, role, response.status_code)
        if role not in KNOWN[(method, endpoint)]:
            assert response.status_code == 403, where
            assert "forbidden" in response.get_data(as_text=True), where
            continue
        assert response.status_code not in (401, 403), where
        if endpoint == "console.sign_out":
            ended = db.execute("SELECT count(*) FROM sessions WHERE end_reason = 'logout'")
            assert ended.fetchone()[0] >= 1
        else:  # let through: not sent back to the sign-in page
            assert "/console/sign-in" not in response.headers.get("Location", ""), where


def test_signed_out_every_guarded_page_sends_to_sign_in(app, world, values):
    client = app.test_client()
    token = csrf_of(client.get("/console/sign-in").get_data(as_text=True))
    for method, endpoint, rule in _operations(app):
        if endpoint in PUBLIC_ENDPOINTS:
            continue
        path = _path(rule, values)
        if method == "GET":
            response = client.get(path)
        else:
            response = client.post(path, data={"csrf_token": token})
        assert response.status_code == 302, (method, endpoint)
        assert response.headers["Location"].startswith("/console/sign-in"), (method, endpoint)


def test_an_agent_gets_no_console_session(app, world):
    client = app.test_client()
    assert sign_in(client, "agent1").status_code == 403
    for method, endpoint, rule in _operations(app):
        if endpoint in PUBLIC_ENDPOINTS or method != "GET":
            continue
        path = _path(
            rule,
            {"visit_id": 1, "case_id": 1, "record_id": "x", "code": "y", "agent_id": 2, "day": "x"},
        )
        assert client.get(path).status_code == 302, endpoint


def test_public_console_routes_are_only_these(app):
    public = {endpoint for _m, endpoint, _r in _operations(app) if endpoint in PUBLIC_ENDPOINTS}
    assert public == {"console.sign_in", "console.static", "console.set_language"}
