"""X-Device-Id is declared in the OpenAPI document wherever an agent must send it, so a
generated client sends it; and wherever it is declared, an agent without it is refused."""

from __future__ import annotations

from tests.api.test_role_matrix import (
    API,
    KNOWN,
    api_operations,
    build_url,
    call,
    sample_params,
)

# Not behind requires(), but authenticated by an agent's own (revoked) device token.
AGENT_PUBLIC = {("POST", f"{API}/devices/wipe-confirmation")}


def _openapi_path(rule: str) -> str:
    path = rule.removeprefix("/api/v1")
    for conv in ("int:", "string:", "day:", "sha256:"):
        path = path.replace(f"<{conv}", "{")
    return path.replace(">", "}")


def _security(spec: dict, method: str, rule: str) -> list[dict] | None:
    """The operation's security alternatives; None when the document does not list it."""
    operation = spec["paths"].get(f"/api/v1{_openapi_path(rule)}", {}).get(method.lower())
    return None if operation is None else operation.get("security", spec.get("security", []))


def test_device_id_is_a_declared_header_scheme(client):
    spec = client.get(f"{API}/openapi.json").json
    scheme = spec["components"]["securitySchemes"]["deviceId"]
    assert scheme == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Device-Id",
        "description": scheme["description"],
    }
    assert "device_id" in scheme["description"]


def test_every_operation_an_agent_can_call_declares_the_device_header(app, client):
    spec = client.get(f"{API}/openapi.json").json
    ops = api_operations(app)
    agent_ops = {(op.method, op.rule) for op in ops if op.roles and "agent" in op.roles}
    agent_only = {(op.method, op.rule) for op in ops if op.roles and set(op.roles) == {"agent"}}
    agent_ops |= AGENT_PUBLIC
    agent_only |= AGENT_PUBLIC
    assert {key for key, roles in KNOWN.items() if "agent" in roles} <= agent_ops
    missing, loose, stray = [], [], []
    for op in ops:
        key = (op.method, op.rule)
        alternatives = _security(spec, op.method, op.rule)
        if alternatives is None:  # the document itself, the docs page: no agent needs them
            assert key not in agent_ops, key
            continue
        with_device = [alt for alt in alternatives if "deviceId" in alt]
        if key in agent_ops and not any("bearerAuth" in alt for alt in with_device):
            missing.append(key)
        if key in agent_only and len(with_device) != len(alternatives):
            loose.append(key)  # an alternative without the header would let a client skip it
        if key not in agent_ops and with_device:
            stray.append(key)
    assert not missing, f"agent operations without X-Device-Id declared: {missing}"
    assert not loose, f"agent-only operations that declare it optional: {loose}"
    assert not stray, f"operations no agent calls that ask for X-Device-Id: {stray}"


def test_an_agent_without_the_header_is_refused_wherever_it_is_declared(
    app, client, auth, world, db
):
    params = sample_params(world, db)
    with_device = auth.headers("agent1")
    token_only = {"Authorization": with_device["Authorization"]}
    wrong_phone = {**token_only, "X-Device-Id": "phone-agent2"}
    agent_ops = [op for op in api_operations(app) if op.roles and "agent" in op.roles]
    assert len(agent_ops) >= 13
    checked = 0
    for op in agent_ops:
        url = build_url(op, params, write_safe=True)
        for headers in (token_only, wrong_phone):
            response = call(client, op, url, headers, hostile=False)
            assert response.status_code == 401, (op.method, op.rule, response.status_code)
            assert response.json["error"]["code"] == "device_mismatch", (op.method, op.rule)
            assert response.json["error"]["field"] == "X-Device-Id"
            checked += 1
    assert checked == 2 * len(agent_ops)
    assert client.get(f"{API}/me/day", headers=with_device).status_code == 200
