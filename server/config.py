"""Settings: the only module that reads the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

DEFAULTS: dict[str, Any] = {
    "DOORSTEP_ENV": "development",  # "production" refuses to start without a signing key
    "DATABASE": "instance/doorstep.db",
    "SIGNING_KEY": None,  # PEM text of an Ed25519 private key
    "SIGNING_KEY_FILE": None,  # path to such a PEM file
    "ISSUER": "https://doorstep.local/api/v1",
    "AUDIENCE": "doorstep-api",
    "ACCESS_TOKEN_TTL_S": 15 * 60,
    "REFRESH_TOKEN_TTL_S": 30 * 24 * 3600,
    "DISCLOSURE_POLICY_FILE": None,  # JSON overriding the default disclosure policy
    "CARD_LEAD_TIME_S": 0,  # how long before the visit's day a card becomes visible
    "CARD_GRACE_S": 6 * 3600,  # how long after the end of the visit's day it stays visible
    "DEFAULT_TIME_ZONE": "Asia/Shanghai",
    "LOGIN_MAX_FAILURES_PER_USER": 5,
    "LOGIN_MAX_FAILURES_PER_ADDRESS": 20,
    "LOGIN_FAILURE_WINDOW_S": 15 * 60,
    "DEVICE_ENROLMENT": "auto",  # "auto": first login registers the device; "admin": pre-registered
    "PASSWORD_TIME_COST": 3,
    "PASSWORD_MEMORY_COST_KIB": 65536,
    "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
    "MAX_PAGE_SIZE": 500,
    "DEMO_PASSWORD": None,
    "COMPLIANCE_PROFILE": "default",  # default | cn-bank | us-regf
    "COMPLIANCE_POLICY_FILE": None,  # JSON: {"profile": ..., overrides}
    "PURGE_ACK_DEADLINE_S": 2 * 3600,  # unconfirmed purge older than this blocks new cards
    "MAX_PUSH_RECORDS": 100,
    "MAX_PULL_LIMIT": 200,
    "MAX_ID_CHECKS_PER_VISIT": 3,  # typed-ID comparisons answered per visit (no guessing game)
    "RATE_PER_DEVICE_PER_MIN": 240,  # requests a minute per X-Device-Id (per worker)
    "RATE_PER_ADDRESS_PER_MIN": 1200,  # requests a minute per client address (per worker)
    "RATE_BURST": 60,
    "PROXY_HOPS": 0,  # reverse proxies in front that set X-Forwarded-For (client address)
    "SERVER_TIMING": 0,  # 1: add a Server-Timing header (phases such as the ledger write)
    "CHECKPOINT_EVERY": 10000,  # sign the ledger head when it grew by this many entries
    "LEDGER_RETENTION_DAYS": 365,  # exposure-ledger entries (CNIL 2021)
    "EVIDENCE_RETENTION_DAYS": 1095,  # records and receipts after the last collection activity
    "PERSONAL_DATA_RETENTION_DAYS": 180,  # borrower personal data after every case closed
    "PURGE_MAX_LEDGER_ENTRIES": 100_000,  # per purge run, to keep its write lock short; 0: all
    "ROUTE_SPEED_KMH": 25.0,  # average speed on the road, for route planning (query: speed_kmh)
    "ROUTE_SERVICE_S": 20 * 60,  # time spent at each door (query: service_s)
    "ROUTE_ROAD_FACTOR_PCT": 130,  # road distance as a percentage of the straight line
    "ROUTE_DEPOT": None,  # "lat,lon" of the office a route may start from (start=depot)
    "ROUTE_SHIFT_START": None,  # agents' day "HH:MM" in their zone; None: lawful hours' start
    "ROUTE_SHIFT_END": None,  # "HH:MM"; None: the end of the lawful visiting hours
    "ROUTE_SOLVER_ITERATIONS": 300,  # solver search for one agent's day
    "ROUTE_SOLVER_MAX_MS": 800,  # and its wall-clock cap
    "ROUTE_ASSIGN_ITERATIONS": 20_000,  # solver search for a team's day
    "ROUTE_ASSIGN_MAX_MS": 6000,  # and its wall-clock cap
    "ROUTE_BALANCE_SLACK": 2,  # visits an agent may get above the even share in an assignment
}

_INT_KEYS = {k for k, v in DEFAULTS.items() if isinstance(v, int)}


def load_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Defaults overlaid with DOORSTEP_* environment variables."""
    environ = os.environ if environ is None else environ
    settings = dict(DEFAULTS)
    for key in DEFAULTS:
        env_name = key if key.startswith("DOORSTEP_") else f"DOORSTEP_{key}"
        if env_name in environ and environ[env_name] != "":
            raw = environ[env_name]
            settings[key] = int(raw) if key in _INT_KEYS else raw
    return settings
