"""Setup: configuration from the environment, keys, migrations, connection settings, docs."""

import pytest

from server import create_app
from server.config import load_settings
from server.keys import MissingSigningKey
from server.storage.connection import connection_settings, open_db
from server.storage.migrations import MIGRATIONS, migrate


def test_environment_overrides_defaults():
    settings = load_settings(
        {
            "DOORSTEP_DATABASE": "data/x.db",
            "DOORSTEP_DEMO_PASSWORD": "pw",
            "DOORSTEP_ACCESS_TOKEN_TTL_S": "60",
        }
    )
    assert settings["DATABASE"] == "data/x.db"
    assert settings["DEMO_PASSWORD"] == "pw"
    assert settings["ACCESS_TOKEN_TTL_S"] == 60
    assert load_settings({})["DATABASE"] == "instance/doorstep.db"


def test_production_refuses_to_start_without_a_signing_key(tmp_path):
    with pytest.raises(MissingSigningKey):
        create_app({"DATABASE": str(tmp_path / "p.db"), "DOORSTEP_ENV": "production"})


def test_development_generates_and_keeps_a_key(tmp_path):
    first = create_app({"DATABASE": str(tmp_path / "d.db")}).extensions["doorstep"].keys
    again = create_app({"DATABASE": str(tmp_path / "d.db")}).extensions["doorstep"].keys
    assert first.generated and not again.generated
    assert first.key_id == again.key_id


def test_migrations_are_idempotent_and_connections_are_configured(tmp_path):
    db = open_db(str(tmp_path / "m.db"))
    assert migrate(db, "2026-11-24T00:00:00Z") == [m.version for m in MIGRATIONS]
    assert migrate(db, "2026-11-24T00:00:00Z") == []
    assert connection_settings(db) == {
        "journal_mode": "wal",
        "synchronous": 2,
        "foreign_keys": 1,
        "busy_timeout": 10_000,
    }


def test_openapi_lists_every_route_and_errors_share_one_shape(app, client):
    spec = client.get("/api/v1/openapi.json").json
    documented = {path for path in spec["paths"]}
    for rule in app.url_map.iter_rules():
        if (
            rule.rule.startswith("/api/v1/")
            and "openapi" not in rule.rule
            and not any(part in rule.rule for part in ("/docs", "/redoc", "swagger"))
        ):
            path = rule.rule
            for conv in ("int:", "string:", "day:", "sha256:"):
                path = path.replace(f"<{conv}", "{")
            path = path.replace(">", "}")
            assert path in documented, path
    assert client.get("/api/v1/docs").status_code == 200
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert set(missing.json) == {"error", "request_id"}
    assert set(missing.json["error"]) == {"code", "message", "field", "details"}
    assert missing.headers["Cache-Control"] == "no-store"
    assert app.debug is False


def test_production_mode_hides_internals(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    app = create_app(
        {"DATABASE": str(tmp_path / "prod.db"), "DOORSTEP_ENV": "production", "SIGNING_KEY": pem}
    )

    def explode():
        raise RuntimeError("secret internal detail")

    app.add_url_rule("/api/v1/explode-for-test", view_func=explode)
    response = app.test_client().get("/api/v1/explode-for-test")
    assert response.status_code == 500
    assert response.json["error"]["code"] == "internal_error"
    body = response.get_data(as_text=True)
    assert "Traceback" not in body and "secret internal detail" not in body
    assert app.debug is False and not app.extensions["doorstep"].keys.generated
