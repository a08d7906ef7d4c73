"""Settings: the only module that reads the environment.

Every setting the server reads is in DEFAULTS, with a working default; `DOORSTEP_<NAME>`
in the environment overrides it, parsed to the default's type: integers, decimals, times
of day ("06:30"), comma-separated lists, text.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import time
from typing import Any

MIB = 1024 * 1024

DEFAULTS: dict[str, Any] = {
    "DOORSTEP_ENV": "development",  # "production" refuses to start without a signing key
    "DATABASE": "instance/doorstep.db",
    # postgresql://user@host/db selects PostgreSQL (docs/deployment.md); wins over DATABASE
    "DATABASE_URL": "",
    # Local files of the store (development signing key, checkpoint files); unset: beside
    # the SQLite file, or instance/ for PostgreSQL
    "STATE_DIR": "",
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
    # A promise or instalment is kept if paid by its due date plus this many days
    # (docs/promises.md); after that it is broken or partly kept.
    "PAYMENT_GRACE_DAYS": 3,
    # Login throttling (docs/security.md): per (username, address) pair, with back-off ...
    "LOGIN_FAILURES_BEFORE_DELAY": 5,  # a pair's failures answered at once; then 1 s, 2 s, 4 s…
    "LOGIN_DELAY_MAX_S": 15 * 60,  # the longest a pair waits after one failure
    # ... and caps that only ever hold back pairs that have failed themselves.
    "LOGIN_MAX_FAILURES_PER_USER": 50,  # failures for one username from any address
    "LOGIN_MAX_FAILURES_PER_ADDRESS": 100,  # failures from one address for any username
    "LOGIN_FAILURE_WINDOW_S": 60 * 60,  # what the caps count; a pair this quiet starts over
    "TEMPORARY_PASSWORD_TTL_S": 72 * 3600,  # a handed-over password (one-time code, reset)
    "CONSOLE_IDLE_TIMEOUT_S": 15 * 60,  # a web-console session this quiet is signed out
    # The bank's own map tiles under the console's route map, e.g.
    # https://tiles.bank.internal/{z}/{x}/{y}.png; empty: the plain SVG drawing, no tiles.
    "CONSOLE_MAP_TILE_URL": "",
    # "auto": a login without an id enrols a minted one; "admin": pre-registered only;
    # "claim": also the first login naming an unknown id registers it (legacy clients, benches)
    "DEVICE_ENROLMENT": "auto",
    "PASSWORD_TIME_COST": 3,
    "PASSWORD_MEMORY_COST_KIB": 65536,
    "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
    "DEMO_PASSWORD": None,
    "COMPLIANCE_PROFILE": "default",  # default | cn-bank | us-regf
    "COMPLIANCE_POLICY_FILE": None,  # JSON: {"profile": ..., overrides}
    "PURGE_ACK_DEADLINE_S": 2 * 3600,  # unconfirmed purge older than this blocks new cards
    "MAX_PUSH_RECORDS": 100,
    # The WatermelonDB front door (docs/watermelondb.md): rows per push (split into native
    # batches of MAX_PUSH_RECORDS, stored together), native pull pages per pull, and how
    # long a pull's `timestamp` can be presented again before it counts as a first sync.
    "WATERMELON_MAX_PUSH_RECORDS": 1000,
    "WATERMELON_MAX_PULL_PAGES": 20,
    "WATERMELON_STAMP_TTL_S": 30 * 86400,
    # Typed-ID comparisons made per borrower within a rolling period, whatever the visit or
    # case (no guessing game; a new visit does not start a new budget).
    "ID_CHECKS_PER_BORROWER": 5,
    "ID_CHECK_PERIOD_DAYS": 30,
    "RATE_PER_DEVICE_PER_MIN": 240,  # per authenticated phone, or staff user (per worker)
    "RATE_PER_ADDRESS_PER_MIN": 1200,  # per client address, requests with no valid token
    "RATE_BURST": 60,
    "PROXY_HOPS": 0,  # reverse proxies in front that set X-Forwarded-For (client address)
    "SERVER_TIMING": 0,  # 1: add a Server-Timing header (phases such as the ledger write)
    "CHECKPOINT_EVERY": 10000,  # sign the ledger head when it grew by this many entries
    "CHECKPOINT_EVERY_S": 300,  # ... or when an entry waited this long for a checkpoint
    "CHECKPOINT_DIR": None,  # checkpoints outside the db; None: <db dir>/checkpoints/
    "LEDGER_RETENTION_DAYS": 365,  # exposure-ledger entries (CNIL 2021)
    "EVIDENCE_RETENTION_DAYS": 1095,  # records and receipts after the last collection activity
    "PERSONAL_DATA_RETENTION_DAYS": 180,  # borrower personal data after every case closed
    "PURGE_MAX_LEDGER_ENTRIES": 100_000,  # per purge run, to keep its write lock short; 0: all
    "PUBLIC_URL": "",  # where clients reach the server; empty: http://127.0.0.1:<RUN_PORT>
    "RUN_PORT": 5000,  # the port `flask run` listens on (DOORSTEP_RUN_PORT or FLASK_RUN_PORT)
    "MAX_BLOB_BYTES": 20 * MIB,  # largest attachment
    "MAX_CHUNK_BYTES": 1 * MIB,  # largest chunk of a resumable upload
    "SINGLE_UPLOAD_MAX_BYTES": 4 * MIB,  # largest attachment uploaded in one request
    "BLOB_CONTENT_TYPES": ("image/jpeg", "image/png", "image/webp", "application/pdf"),
    "UPLOAD_IDLE_TTL_S": 7 * 24 * 3600,  # an unfinished upload untouched this long is dropped
    # Per device: bytes of blobs (and unfinished uploads) no record references yet ...
    "BLOB_QUOTA_UNREFERENCED_BYTES": 256 * MIB,
    "BLOB_UNREFERENCED_TTL_S": 7 * 24 * 3600,  # ... and how long such a blob is kept
    "CONTROLLER_NAME": "the lender",  # the data controller named in privacy reports
    # The anomaly scan (privacy officers); times are the recipient's local time.
    "ANOMALY_MAX_SCAN_DAYS": 31,  # longest period one scan covers
    "ANOMALY_WORK_START": time(7, 0),  # exposures outside working hours are anomalies
    "ANOMALY_WORK_END": time(22, 0),
    "ANOMALY_VOLUME_FACTOR": 2.0,  # borrowers in a day above factor x median of the baseline ...
    "ANOMALY_VOLUME_FLOOR": 30,  # ... and above this floor
    "ANOMALY_VOLUME_BASELINE_DAYS": 14,  # the agent's previous active days forming the baseline
    # How far back those active days are looked for: three working weeks hold 14 of them,
    # and each extra day costs the scan a day of ledger reads per busy agent.
    "ANOMALY_VOLUME_LOOKBACK_DAYS": 21,
    "ANOMALY_PURGE_ACK_HOURS": 24.0,  # a purge order unconfirmed for longer is an anomaly
    "ANOMALY_CARDS_PER_REPORT_RATIO": 3.0,  # borrowers received per visit reported on
    "ANOMALY_CARDS_MIN_BORROWERS": 10,  # below this, too few cards to judge the ratio
    "ANOMALY_MAX_SEQS": 100,  # ledger seqs listed per anomaly; the count is always complete
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

# Settings read from more than their DOORSTEP_ name, first set one wins: `flask run` takes
# its port from FLASK_RUN_PORT, so the demo prints the address the server really listens on.
_ENV_NAMES: dict[str, tuple[str, ...]] = {"RUN_PORT": ("DOORSTEP_RUN_PORT", "FLASK_RUN_PORT")}


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Defaults overlaid with DOORSTEP_* environment variables, then with `overrides`.

    Text in `overrides` (create_app's test_config) for a setting that is not text is parsed
    as the environment's would be.
    """
    environ = os.environ if environ is None else environ
    settings = dict(DEFAULTS)
    for key in DEFAULTS:
        raw = next((environ[name] for name in env_names(key) if environ.get(name, "") != ""), None)
        if raw is not None:
            settings[key] = parse_setting(key, raw)
    for key, value in (overrides or {}).items():
        parse = isinstance(value, str) and key in DEFAULTS
        settings[key] = parse_setting(key, value) if parse else value
    return settings


def with_absolute_paths(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings with their store paths made absolute: once the app is built, nothing
    depends on the working directory (which a library may change for a moment, as bagit
    does while it builds a bag)."""
    fixed = dict(settings)
    for key in ("DATABASE", "CHECKPOINT_DIR", "STATE_DIR"):
        value = fixed.get(key)
        if isinstance(value, str) and value not in ("", ":memory:") and not is_url(value):
            fixed[key] = os.path.abspath(value)
    return fixed


def is_url(target: str) -> bool:
    """Whether a DATABASE value names a PostgreSQL server instead of a SQLite file."""
    return target.startswith(("postgresql://", "postgres://"))


def env_names(key: str) -> tuple[str, ...]:
    """The environment variables a setting is read from, in order of precedence."""
    return _ENV_NAMES.get(key) or (env_variable(key),)


def public_url(settings: Mapping[str, Any]) -> str:
    """Where clients reach this server, without a trailing slash."""
    configured = str(settings.get("PUBLIC_URL") or "").rstrip("/")
    return configured or f"http://127.0.0.1:{settings['RUN_PORT']}"


def env_variable(key: str) -> str:
    """The environment variable that sets `key`."""
    return key if key.startswith("DOORSTEP_") else f"DOORSTEP_{key}"


def parse_setting(key: str, raw: str) -> Any:
    """Text from the environment as a value of the type of the setting's default."""
    default = DEFAULTS[key]
    try:
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError(raw)
            return value
        if isinstance(default, time):
            moment = time.fromisoformat(raw.strip())
            if moment.tzinfo is not None:  # local times: the zone is the person's
                raise ValueError(raw)
            return moment
        if isinstance(default, tuple):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError:
        kind = {int: "an integer", float: "a number", time: "a time of day such as 06:30"}
        expected = kind.get(type(default), "valid")
        raise ValueError(f"{env_variable(key)}={raw!r}: expected {expected}") from None
    return raw
