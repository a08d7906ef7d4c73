"""Doorstep: the web service."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import click
from flask import Flask, g
from werkzeug.middleware.proxy_fix import ProxyFix

from server import timing
from server.auth.passwords import Passwords
from server.clock import system_clock, to_iso
from server.config import is_url, load_settings, with_absolute_paths
from server.domain.disclosure import load_policy
from server.errors import SigningKeyUnknown
from server.keys import derive_key, load_signing_keys
from server.runtime import Runtime
from server.services.keyring import signing_key_problem
from server.storage.connection import checkpoint, checkpoint_due, open_db
from server.storage.migrations import migrate
from sync.compliance import CompliancePolicy, policy_from_dict, profile

log = logging.getLogger("doorstep")


def load_compliance(settings: Mapping[str, Any]) -> CompliancePolicy:
    """The compliance profile, with overrides from a JSON file when configured."""
    path = settings["COMPLIANCE_POLICY_FILE"]
    if path:
        return policy_from_dict(json.loads(Path(path).read_text()))
    return profile(settings["COMPLIANCE_PROFILE"])


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app from the environment, overlaid with test_config.

    test_config overrides settings of server/config.py's DEFAULTS; its CLOCK, a callable,
    replaces the system clock (tests fix time with it).
    """
    from server.api.docs_assets import ASSETS_URL
    from server.api.fast_json import FastJSONProvider

    overrides = dict(test_config or {})
    clock = overrides.pop("CLOCK", None) or system_clock
    settings = load_settings(overrides=overrides)
    if settings["DATABASE_URL"]:  # PostgreSQL (docs/deployment.md) instead of the SQLite file
        settings["DATABASE"] = settings["DATABASE_URL"]
    settings = with_absolute_paths(settings)
    app = Flask(__name__, instance_relative_config=False)
    app.json = FastJSONProvider(app)
    app.config.update(
        DATABASE=settings["DATABASE"],
        MAX_CONTENT_LENGTH=settings["MAX_CONTENT_LENGTH"],
        PROPAGATE_EXCEPTIONS=False,
        DEBUG=False,
        API_TITLE="Doorstep",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        # Served by the app from a pinned package (server/api/docs_assets.py): no CDN, so
        # the docs work on networks without internet access.
        OPENAPI_SWAGGER_UI_URL=ASSETS_URL,
    )
    keys = load_signing_keys(settings)
    if keys.generated:
        log.warning("development mode: generated a signing key (set DOORSTEP_SIGNING_KEY_FILE)")
    runtime = Runtime(
        # Read-only: a setting changes by building another app, never under a running one.
        settings=MappingProxyType(settings),
        clock=clock,
        keys=keys,
        disclosure=load_policy(settings["DISCLOSURE_POLICY_FILE"]),
        passwords=Passwords(settings["PASSWORD_TIME_COST"], settings["PASSWORD_MEMORY_COST_KIB"]),
        compliance=load_compliance(settings),
        cursor_key=derive_key(keys, b"doorstep-sync-cursor-v1"),
    )
    app.extensions["doorstep"] = runtime
    db = open_db(settings["DATABASE"])
    try:
        migrate(db, to_iso(runtime.clock()))
        key_problem = signing_key_problem(db, runtime, runtime.clock())
    finally:
        db.conn.close()
    if key_problem:
        # A server must not sign for a ledger whose keyring lacks its key. Under `flask`
        # commands the app still loads, so `flask keys rotate` can record the change; the
        # other commands and `flask run` refuse (server/cli_context.py, api/ledger_guard.py).
        if click.get_current_context(silent=True) is None:
            raise SigningKeyUnknown(key_problem)
        log.error("signing key not in the ledger keyring: %s", key_problem)
    app.extensions["doorstep_key_problem"] = key_problem

    from server.api import register_api
    from server.api.context import assign_request_id, close_db, enforce_rate_limits
    from server.api.day_close import close_ended_days
    from server.api.ledger_guard import install as install_ledger_guard
    from server.api.limits import RateLimiter, SharedRateLimiter
    from server.cli import register_cli
    from server.console import register_console

    # Several app servers share a PostgreSQL store: their buckets are shared too.
    limiter = (
        functools.partial(SharedRateLimiter, "address")
        if is_url(settings["DATABASE"])
        else RateLimiter
    )
    principal_limiter = (
        functools.partial(SharedRateLimiter, "principal")
        if is_url(settings["DATABASE"])
        else RateLimiter
    )
    app.extensions["doorstep_limits"] = {
        "address": limiter(settings["RATE_PER_ADDRESS_PER_MIN"], settings["RATE_BURST"] * 5),
        "principal": principal_limiter(settings["RATE_PER_DEVICE_PER_MIN"], settings["RATE_BURST"]),
    }
    app.before_request(assign_request_id)
    app.before_request(enforce_rate_limits)
    app.before_request(timing.start_request)
    install_ledger_guard(app, key_problem)
    app.before_request(close_ended_days)
    app.teardown_appcontext(close_db)

    @app.after_request
    def _checkpoint_when_sent(response):
        # The WAL checkpoint a request's writes make due runs once the response is sent,
        # on the request's own connection (storage/connection.checkpoint).
        db = g.get("db")
        if db is not None and checkpoint_due(db):
            response.call_on_close(functools.partial(checkpoint, db))
        return response

    @app.after_request
    def _headers(response):
        response.headers["X-Request-Id"] = g.get("request_id", "")
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Content-Type-Options"] = "nosniff"
        if settings["SERVER_TIMING"]:
            response.headers["Server-Timing"] = timing.server_timing_header()
        return response

    register_api(app)
    register_console(app)
    register_cli(app)
    if settings["PROXY_HOPS"]:
        # Behind a reverse proxy every socket peer is the proxy: take the client address from
        # X-Forwarded-For, trusting exactly the configured number of hops, so per-address
        # limits and login throttling count clients, not the proxy.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings["PROXY_HOPS"])  # type: ignore[method-assign]
    return app
