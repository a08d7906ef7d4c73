"""The role x endpoint matrix, discovered from the app itself.

Every /api/v1 operation is either protected by `requires(...)` (which leaves the allowed
roles on the view as `_roles`) or named in PUBLIC below. For each protected operation and
each role: a role outside `_roles` gets 403 `forbidden` -- before any input validation, so
the calls for refused roles carry a bad body and an unknown query parameter -- and a role
inside it is let through (neither 401 nor 403). Without a token every protected operation
answers 401 `not_authenticated`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from tests.api.test_attachments import push_report
from tests.conftest import TODAY

API = "/api/v1"
ROLES = ("agent", "dispatcher", "privacy_officer", "admin")
USER_OF_ROLE = {
    "agent": "agent1",
    "dispatcher": "dispatcher",
    "privacy_officer": "privacy",
    "admin": "admin",
}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Device the admin may revoke during the matrix without harming agent1's session.
SPARE_DEVICE = "phone-spare-agent2"

# Operations reachable without a token. A new endpoint without `requires` fails
# test_every_unprotected_endpoint_is_allowlisted until it is added here on purpose.
PUBLIC = {
    ("POST", f"{API}/auth/login"),
    ("POST", f"{API}/auth/refresh"),
    ("POST", f"{API}/auth/logout"),
    ("POST", f"{API}/auth/password"),
    ("GET", f"{API}/auth/public-key"),
    ("GET", f"{API}/health"),
    ("GET", f"{API}/ready"),
    ("GET", f"{API}/openapi.json"),
    ("GET", f"{API}/docs"),
    ("GET", f"{API}/docs/"),  # redirects to the page above
    ("GET", f"{API}/docs/assets/<string:filename>"),  # Swagger UI's own scripts and styles
    # Authenticated by the revoked device's own token, which requires() would refuse.
    ("POST", f"{API}/devices/wipe-confirmation"),
}

# What the matrix must at least contain, with the roles the contract (SPEC section 1) gives
# each; more endpoints may appear, none of these may vanish or silently widen.
KNOWN = {
    ("GET", f"{API}/users"): {"admin", "dispatcher"},
    ("POST", f"{API}/users"): {"admin"},
    ("GET", f"{API}/users/<int:user_id>"): {"admin", "dispatcher"},
    ("GET", f"{API}/devices"): {"admin", "dispatcher"},
    ("POST", f"{API}/devices/<string:device_id>/revoke"): {"admin"},
    ("POST", f"{API}/users/<int:user_id>/disable"): {"admin"},
    ("POST", f"{API}/users/<int:user_id>/enable"): {"admin"},
    ("POST", f"{API}/users/<int:user_id>/devices"): {"admin"},
    ("GET", f"{API}/users/<int:user_id>/devices"): {"admin", "dispatcher"},
    ("PATCH", f"{API}/users/<int:user_id>"): {"admin"},
    ("POST", f"{API}/users/<int:user_id>/password-reset"): {"admin"},
    ("GET", f"{API}/role-grants"): {"admin", "privacy_officer"},
    ("POST", f"{API}/role-grants/<int:grant_id>/approve"): {"privacy_officer"},
    ("POST", f"{API}/role-grants/<int:grant_id>/reject"): {"admin", "privacy_officer"},
    ("GET", f"{API}/me"): set(ROLES),
    ("POST", f"{API}/cases/import"): {"dispatcher", "admin"},
    ("POST", f"{API}/payments/import"): {"dispatcher", "admin"},
    ("GET", f"{API}/worklists/promises"): {"dispatcher"},
    ("GET", f"{API}/cases"): {"dispatcher"},
    ("GET", f"{API}/cases/<int:case_id>"): {"dispatcher", "agent"},
    ("GET", f"{API}/borrowers/<int:borrower_id>"): {"dispatcher", "agent"},
    # The case lifecycle: dispatchers, and admins (who are answered without case flags).
    ("PATCH", f"{API}/cases/<int:case_id>"): {"dispatcher", "admin"},
    ("POST", f"{API}/cases/bulk-change"): {"dispatcher", "admin"},
    ("GET", f"{API}/borrowers/<int:borrower_id>/requests"): {"dispatcher"},
    ("POST", f"{API}/borrowers/<int:borrower_id>/requests"): {"dispatcher"},
    ("POST", f"{API}/borrowers/<int:borrower_id>/requests/<int:request_id>/withdraw"): {
        "dispatcher"
    },
    ("GET", f"{API}/cases/<int:case_id>/contacts"): {"dispatcher"},
    ("POST", f"{API}/cases/<int:case_id>/contacts"): {"dispatcher"},
    ("GET", f"{API}/cases/<int:case_id>/timeline"): {"dispatcher"},
    ("POST", f"{API}/cases/<int:case_id>/contacts/plan"): {"dispatcher"},
    ("POST", f"{API}/contacts/import"): {"dispatcher"},
    ("GET", f"{API}/visits/replan"): {"dispatcher"},
    # The visit register carries borrower names, positions and outcomes: dispatchers only.
    ("GET", f"{API}/register"): {"dispatcher"},
    ("GET", f"{API}/visits"): {"dispatcher"},
    ("POST", f"{API}/visits"): {"dispatcher"},
    ("POST", f"{API}/visits/bulk"): {"dispatcher"},
    ("GET", f"{API}/visits/<int:visit_id>"): {"dispatcher", "agent"},
    ("PATCH", f"{API}/visits/<int:visit_id>"): {"dispatcher"},
    ("POST", f"{API}/visits/<int:visit_id>/cancel"): {"dispatcher"},
    ("PUT", f"{API}/agents/<int:agent_id>/days/<day:day>/order"): {"dispatcher"},
    ("GET", f"{API}/agents/<int:agent_id>/days/<day:day>/route"): {"dispatcher"},
    ("POST", f"{API}/agents/<int:agent_id>/days/<day:day>/route-proposal"): {"dispatcher"},
    ("POST", f"{API}/days/<day:day>/assignment-proposal"): {"dispatcher"},
    ("POST", f"{API}/days/<day:day>/assignment"): {"dispatcher"},
    ("GET", f"{API}/me/day"): {"agent"},
    ("GET", f"{API}/audit/exposures"): {"privacy_officer"},
    ("GET", f"{API}/audit/verify"): {"privacy_officer"},
    ("GET", f"{API}/audit/staff-actions"): {"privacy_officer", "admin"},
    ("GET", f"{API}/audit/borrowers/<int:borrower_id>/disclosures"): {"privacy_officer"},
    ("GET", f"{API}/audit/agents/<int:user_id>/history"): {"privacy_officer"},
    ("GET", f"{API}/audit/devices/<string:device_id>/history"): {"privacy_officer"},
    ("GET", f"{API}/audit/anomalies"): {"privacy_officer"},
    ("GET", f"{API}/audit/staff-actions.csv"): {"privacy_officer", "admin"},
    ("GET", f"{API}/audit/records-of-processing"): {"privacy_officer", "admin"},
    ("GET", f"{API}/audit/checkpoints"): {"privacy_officer", "admin"},
    ("POST", f"{API}/audit/checkpoints"): {"privacy_officer", "admin"},
    ("GET", f"{API}/audit/checkpoints/<int:checkpoint_id>"): {"privacy_officer", "admin"},
    ("POST", f"{API}/audit/verify-checkpoint"): {"privacy_officer", "admin"},
    ("GET", f"{API}/audit/purge-certificates"): {"privacy_officer", "admin"},
    ("POST", f"{API}/sync/push"): {"agent"},
    ("GET", f"{API}/sync/pull"): {"agent"},
    ("POST", f"{API}/sync/purge-acks"): {"agent"},
    ("GET", f"{API}/sync/watermelon/pull"): {"agent"},
    ("POST", f"{API}/sync/watermelon/push"): {"agent"},
    ("GET", f"{API}/sync/health"): {"dispatcher", "admin"},
    ("GET", f"{API}/records"): {"dispatcher"},
    # Flag review: dispatchers review (docs/flag-review.md); no admin, privacy officer or agent.
    ("GET", f"{API}/flags"): {"dispatcher"},
    ("GET", f"{API}/flags/<string:record_id>/<string:code>"): {"dispatcher"},
    ("POST", f"{API}/flags/<string:record_id>/<string:code>/assign"): {"dispatcher"},
    ("POST", f"{API}/flags/<string:record_id>/<string:code>/resolve"): {"dispatcher"},
    ("POST", f"{API}/flags/<string:record_id>/<string:code>/reopen"): {"dispatcher"},
    ("GET", f"{API}/agents/<int:agent_id>/compliance-summary"): {"dispatcher"},
    ("PUT", f"{API}/attachments/<sha256:sha256>"): {"agent"},
    ("GET", f"{API}/attachments/<sha256:sha256>"): {"agent", "dispatcher"},
    ("POST", f"{API}/attachments/<sha256:sha256>/uploads"): {"agent"},
    ("GET", f"{API}/attachments/uploads/<string:upload_id>"): {"agent"},
    ("PATCH", f"{API}/attachments/uploads/<string:upload_id>"): {"agent"},
    # Photo and signature bytes: for reviewing field records (each download ledgered).
    ("GET", f"{API}/attachments/<sha256:sha256>/content"): {"dispatcher"},
    # The legal evidence pack: privacy officers only (docs/evidence.md says why).
    ("POST", f"{API}/cases/<int:case_id>/evidence-pack"): {"privacy_officer"},
}

# PII-bearing reads: the contract forbids these to privacy officers and admins outright.
NEVER_FOR_PRIVACY_OR_ADMIN = {
    f"{API}/cases",
    f"{API}/cases/<int:case_id>",
    f"{API}/borrowers/<int:borrower_id>",
    f"{API}/borrowers/<int:borrower_id>/requests",
    f"{API}/cases/<int:case_id>/contacts",
    f"{API}/cases/<int:case_id>/timeline",
    f"{API}/visits",
    f"{API}/visits/replan",
    f"{API}/register",
    f"{API}/visits/<int:visit_id>",
    f"{API}/me/day",
    f"{API}/attachments/<sha256:sha256>/content",
    f"{API}/worklists/promises",
    f"{API}/flags",
    f"{API}/flags/<string:record_id>/<string:code>",
}

# Reads that need a query to answer 2xx (a required filter).
READ_QUERIES = {f"{API}/register": f"?day={TODAY}"}

_PARAM = re.compile(
    r"<(?:(?P<conv>[a-zA-Z_][a-zA-Z0-9_]*)(?:\([^)]*\))?:)?(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>"
)


@dataclass(frozen=True)
class Operation:
    method: str
    rule: str
    roles: tuple[str, ...] | None  # None: not protected by `requires`


def api_operations(app) -> list[Operation]:
    """Every (method, rule) under /api/v1 with the roles its view function carries."""
    ops = []
    for rule in app.url_map.iter_rules():
        if not (rule.rule == API or rule.rule.startswith(API + "/")):
            continue
        view = app.view_functions[rule.endpoint]
        view_class = getattr(view, "view_class", None)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            func = getattr(view_class, method.lower(), None) if view_class else view
            roles = getattr(func, "_roles", None)
            ops.append(Operation(method, rule.rule, tuple(roles) if roles is not None else None))
    return ops


def protected_operations(app) -> list[Operation]:
    return [op for op in api_operations(app) if op.roles is not None]


def param_names(rule: str) -> list[str]:
    return [m.group("name") for m in _PARAM.finditer(rule)]


def sample_params(world, db) -> dict[str, object]:
    borrower_id = db.execute(
        "SELECT borrower_id FROM cases WHERE id = ?", [world.cases["C-0001"]]
    ).fetchone()[0]
    return {
        "visit_id": world.visits["v1"],
        "case_id": world.cases["C-0001"],
        "borrower_id": borrower_id,
        "user_id": world.users["agent1"],
        "agent_id": world.users["agent1"],
        "device_id": "phone-agent1",
        "day": TODAY,
        "sha256": "ab" * 32,
    }


def build_url(op: Operation, params: dict[str, object], *, write_safe: bool) -> str:
    """Fill the rule's placeholders from the world; unknown names get a harmless stand-in."""

    def fill(match: re.Match) -> str:
        name, conv = match.group("name"), match.group("conv") or "string"
        if name == "device_id" and write_safe and op.method in WRITE_METHODS:
            return SPARE_DEVICE
        if name == "user_id" and write_safe and op.method in WRITE_METHODS:
            return str(params.get("spare_user_id", 999999))  # not a user whose session we use
        if name in params:
            return str(params[name])
        return "999999" if conv in ("int", "any") else "no-such-thing"

    return _PARAM.sub(fill, op.rule)


def call(client, op: Operation, url: str, headers: dict[str, str] | None, *, hostile: bool):
    """Send the operation; `hostile` adds an invalid body and an unknown query parameter,
    which must not change a 401/403 into a 400/422."""
    kwargs: dict = {"headers": headers or {}}
    if hostile:
        url = f"{url}?zz_not_a_parameter=1"
        if op.method in WRITE_METHODS:
            kwargs["json"] = {"zz_not_a_field": "x"}
    elif op.method in WRITE_METHODS:
        kwargs["json"] = {}
    return client.open(url, method=op.method, **kwargs)


def _error_code(response) -> str | None:
    body = response.get_json(silent=True) or {}
    return (body.get("error") or {}).get("code")


def test_matrix_covers_the_known_endpoints(app):
    found = {(op.method, op.rule): set(op.roles or ()) for op in protected_operations(app)}
    assert len(found) >= len(KNOWN), found
    missing = sorted(key for key in KNOWN if key not in found)
    assert not missing, f"known protected endpoints missing from the matrix: {missing}"
    changed = {key: (found[key], roles) for key, roles in KNOWN.items() if found[key] != roles}
    assert not changed, f"roles differ from the contract (found, expected): {changed}"


def test_roles_are_known_and_pii_reads_closed_to_privacy_and_admin(app):
    for op in protected_operations(app):
        assert op.roles, f"{op.method} {op.rule}: requires() with no roles"
        assert set(op.roles) <= set(ROLES), f"{op.method} {op.rule}: unknown role in {op.roles}"
        if op.method == "GET" and op.rule in NEVER_FOR_PRIVACY_OR_ADMIN:
            assert not {"privacy_officer", "admin"} & set(op.roles), (op.method, op.rule)


def test_every_unprotected_endpoint_is_allowlisted(app):
    unprotected = {(op.method, op.rule) for op in api_operations(app) if op.roles is None}
    stray = sorted(unprotected - PUBLIC)
    assert not stray, f"/api/v1 endpoints without requires(...) and not allowlisted: {stray}"
    # The allowlist itself stays truthful: nothing in it is secretly protected or gone.
    assert unprotected == PUBLIC, sorted(PUBLIC - unprotected)


def test_public_endpoints_answer_without_a_token(client):
    for path in ("/auth/public-key", "/health", "/ready", "/openapi.json", "/docs"):
        response = client.get(API + path)
        assert response.status_code == 200, (path, response.status_code)


def test_role_matrix(app, client, auth, world, db):
    # A device the admin's revoke call may take down without touching agent1's phone.
    auth.register_device("agent2", SPARE_DEVICE)
    spare = client.post(
        f"{API}/auth/login",
        json={"username": "agent2", "password": "correct-horse-battery", "device_id": SPARE_DEVICE},
    )
    assert spare.status_code == 200, spare.json
    params = sample_params(world, db)
    # An account the admin's writes to /users/<id>/... may change (disable, reset, ...).
    params["spare_user_id"] = client.post(
        f"{API}/users",
        json={"username": "spare-staff", "password": "correct-horse-battery", "role": "dispatcher"},
        headers=auth.headers("admin"),
    ).json["id"]
    headers = {role: auth.headers(user) for role, user in USER_OF_ROLE.items()}
    ops = protected_operations(app)
    assert len(ops) >= len(KNOWN)

    failures = []
    checked = 0
    # Refused roles first: they must change nothing, so the allowed calls see the world intact.
    for op in ops:
        url = build_url(op, params, write_safe=True)
        for role in ROLES:
            if role in op.roles:
                continue
            response = call(client, op, url, headers[role], hostile=True)
            checked += 1
            if response.status_code != 403 or _error_code(response) != "forbidden":
                failures.append(
                    f"{op.method} {op.rule} as {role}: expected 403 forbidden, got "
                    f"{response.status_code} {_error_code(response)}"
                )
    for op in ops:
        url = build_url(op, params, write_safe=True)
        for role in op.roles:
            response = call(client, op, url, headers[role], hostile=False)
            checked += 1
            if response.status_code in (401, 403) or response.status_code >= 500:
                failures.append(
                    f"{op.method} {op.rule} as {role} (allowed): got "
                    f"{response.status_code} {_error_code(response)}"
                )
    assert not failures, "\n".join(failures)
    assert checked == len(ops) * len(ROLES)

    # The calls above left agent1's own session alone (only the spare device was revoked).
    assert client.get(f"{API}/me", headers=headers["agent"]).status_code == 200


def test_allowed_reads_succeed(client, auth, world, db, app):
    """Reads with real world ids succeed for every allowed role (2xx, not just 'not 403')."""
    params = sample_params(world, db)
    blob = b"role-matrix-blob"
    params["sha256"] = hashlib.sha256(blob).hexdigest()
    stored = client.put(
        f"{API}/attachments/{params['sha256']}",
        data=blob,
        headers={**auth.headers("agent1"), "Content-Type": "image/png"},
    )
    assert stored.status_code == 201
    # Staff see a blob once a record references it.
    referenced = push_report(client, auth.headers("agent1"), world.visits["v1"], [params["sha256"]])
    assert referenced["status"] in ("accepted", "flagged"), referenced
    failures = []
    for op in protected_operations(app):
        if op.method != "GET" or not set(param_names(op.rule)) <= set(params):
            continue
        url = build_url(op, params, write_safe=True) + READ_QUERIES.get(op.rule, "")
        for role in op.roles:
            response = client.get(url, headers=auth.headers(USER_OF_ROLE[role]))
            if not 200 <= response.status_code < 300:
                failures.append(
                    f"GET {op.rule} as {role}: {response.status_code} {_error_code(response)}"
                )
    assert not failures, "\n".join(failures)


def test_every_protected_endpoint_refuses_a_missing_or_bad_token(app, client, world, db):
    params = sample_params(world, db)
    failures = []
    for op in protected_operations(app):
        url = build_url(op, params, write_safe=True)
        for headers, expected in (
            (None, "not_authenticated"),
            ({"Authorization": "Basic YWRtaW46eA=="}, "not_authenticated"),
            ({"Authorization": "Bearer not-a-jwt"}, "invalid_token"),
        ):
            response = call(client, op, url, headers, hostile=True)
            if response.status_code != 401 or _error_code(response) != expected:
                failures.append(
                    f"{op.method} {op.rule} with {headers}: expected 401 {expected}, got "
                    f"{response.status_code} {_error_code(response)}"
                )
            body = response.get_json(silent=True) or {}
            if set(body) != {"error", "request_id"}:
                failures.append(f"{op.method} {op.rule}: error shape {sorted(body)}")
    assert not failures, "\n".join(failures)
