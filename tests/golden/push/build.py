"""Building the golden corpus's world through the API, as an admin and a dispatcher would
(so it does not depend on how the store is laid out), and the changes made midway.
The same code gives the same world, ids included.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from server import create_app
from server.runtime import Caller
from server.services import accounts as account_service
from server.storage.connection import open_db

from .plans import (
    AGENTS,
    CANCELLED_AT_SETUP,
    CANCELLED_MIDWAY,
    CASE_FLAGS_AT_SETUP,
    CASES,
    HARDSHIP_MIDWAY,
    PASSWORD,
    REASSIGNED_AT_SETUP,
    REASSIGNED_MIDWAY,
    SETUP_AT,
    UNFINISHED,
    UPLOADED,
    UPLOADED_MIDWAY,
    CasePlan,
    blob_bytes,
    case_plans,
    visit_plans,
)
from .world import (
    FixedClock,
    World,
    cancel,
    flag_case,
    iso,
    login,
    reassign,
    signing_key_pem,
    upload,
    withdraw_consent,
)


def build_world(tmp: Path, profile: str, database: str | None = None) -> World:
    """An app with this compliance profile on a fresh store, and the world: a SQLite file
    under `tmp`, or `database` (an empty PostgreSQL schema's URL) when given."""
    clock = FixedClock(SETUP_AT)
    app = create_app(
        {
            "DATABASE": database or str(tmp / f"golden-{profile}.db"),
            "CLOCK": clock,
            "SIGNING_KEY": signing_key_pem(),
            "COMPLIANCE_PROFILE": profile,
            "PASSWORD_TIME_COST": 1,
            "PASSWORD_MEMORY_COST_KIB": 1024,
            "DOORSTEP_ENV": "development",
            "RATE_PER_DEVICE_PER_MIN": 0,
            "RATE_PER_ADDRESS_PER_MIN": 0,
            # The clock runs through an afternoon: tokens outlive it, no re-login needed.
            "ACCESS_TOKEN_TTL_S": 7 * 24 * 3600,
            # PostgreSQL keeps the store's local files (blobs, checkpoints) in tmp too.
            **({"STATE_DIR": str(tmp / profile)} if database else {}),
        }
    )
    world = World(app=app, clock=clock, profile=profile, client=app.test_client())
    _accounts(world)
    _cases(world)
    _visits(world)
    _consents(world)
    _uploads(world, UPLOADED)
    _half_upload(world, AGENTS[0][0])
    _setup_changes(world)
    for _, _, phones in AGENTS:  # each phone takes its day's cards before going offline
        for phone in phones:
            world.call("GET", "/api/v1/sync/pull", phone, (200,))
    return world


def _half_upload(world: World, agent: str) -> None:
    """The agent's phone starts a resumable upload and sends only its first half."""
    data = blob_bytes(agent, UNFINISHED)
    phone = next(a[2][0] for a in AGENTS if a[0] == agent)
    started = world.call(
        "POST",
        f"/api/v1/attachments/{hashlib.sha256(data).hexdigest()}/uploads",
        phone,
        (201,),
        json={"size": len(data), "content_type": "image/png"},
    )
    world.call(
        "PATCH",
        f"/api/v1/attachments/uploads/{started['upload_id']}",
        phone,
        (200, 204),
        data=data[: len(data) // 2],
        headers={"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"},
    )


def _accounts(world: World) -> None:
    rt = world.app.extensions["doorstep"]
    conn = open_db(world.app.config["DATABASE"])
    try:
        world.users["admin"] = account_service.create_user(
            conn,
            rt,
            Caller(None, "golden-bootstrap", "test", "local", rt.clock()),
            {"username": "admin", "password": PASSWORD, "role": "admin"},
        )["id"]
    finally:
        conn.conn.close()
    world.tokens["admin"] = login(world, "admin")
    created = world.call(
        "POST",
        "/api/v1/users",
        "admin",
        (201,),
        json={"username": "dispatcher", "password": PASSWORD, "role": "dispatcher"},
    )
    world.users["dispatcher"] = created["id"]
    world.tokens["dispatcher"] = login(world, "dispatcher")
    for index, (name, badge, phones) in enumerate(AGENTS):
        body = {
            "username": name,
            "password": PASSWORD,
            "role": "agent",
            "badge_number": badge,
            "home_lat": 31.2 + index / 100,
            "home_lon": 121.4,
            "time_zone": "Asia/Shanghai",
        }
        world.users[name] = world.call("POST", "/api/v1/users", "admin", (201,), json=body)["id"]
        for phone in phones:
            world.call(
                "POST",
                f"/api/v1/users/{world.users[name]}/devices",
                "admin",
                (201,),
                json={"device_id": phone},
            )
            world.tokens[phone] = login(world, name, phone)


def _import(world: World, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return world.call(
        "POST",
        "/api/v1/cases/import",
        "dispatcher",
        (200,),
        data="\n".join(json.dumps(r) for r in rows),
        headers={"Content-Type": "application/x-ndjson"},
    )


def _cases(world: World) -> None:
    plans = case_plans()
    report = _import(world, [_case_row(c) for c in plans])
    assert report["created"] == CASES, report
    conn = open_db(world.app.config["DATABASE"])
    try:
        by_external = {
            row["external_id"]: (row["id"], row["borrower_id"])
            for row in conn.query("SELECT id, external_id, borrower_id FROM cases")
        }
    finally:
        conn.conn.close()
    for case in plans:
        world.cases[case.n], world.borrowers[case.n] = by_external[case.external_id]


def _case_row(case: CasePlan) -> dict[str, Any]:
    row: dict[str, Any] = {
        "case_external_id": case.external_id,
        "borrower_external_id": f"GB-{case.n:04d}",
        "full_name": f"Golden Borrower {case.n}",
        "national_id": case.national_id,
        "phones": [f"1380000{case.n:04d}"],
        "home_address": f"{case.n} Corpus Street",
        "work_address": f"{case.n} Office Park",
        "employer": "Acme",
        "time_zone": case.zone,
        "product": "Personal loan",
        "overdue_amount": f"{1000 + case.n * 37}.50",
        "currency": "CNY",
        "days_past_due": 10 + case.n,
        "last_payment_date": "2026-09-01",
        "last_payment_amount": "300.00",
    }
    if case.home:
        row["home_lat"], row["home_lon"] = case.home
    return row


def _visits(world: World) -> None:
    plans = visit_plans(case_plans())
    items = []
    for plan in plans:
        body: dict[str, Any] = {
            "case_id": world.cases[plan.case.n],
            "agent_id": world.users[plan.agent],
            "visit_date": plan.visit_date.isoformat(),
            "purpose": plan.purpose,
            "window_start": plan.window[0],
            "window_end": plan.window[1],
            "notes": f"golden visit {plan.key}",
        }
        if plan.notice_at is not None:
            body["notice"] = {"kind": "appointment", "given_at": iso(plan.notice_at)}
        items.append(body)
    made = world.call("POST", "/api/v1/visits/bulk", "dispatcher", (200,), json={"visits": items})
    assert made["refused"] == 0, [r["error"] for r in made["results"] if r["error"]]
    for plan, result in zip(plans, made["results"], strict=True):
        world.visits[plan.key] = result["visit"]["id"]
        world.versions[plan.key] = result["visit"]["version"]
        world.plans[plan.key] = plan
        world.owner[plan.key] = plan.agent


def _consents(world: World) -> None:
    """Out-of-hours consents: one in force, one expired, one withdrawn midway (driver)."""
    taken = SETUP_AT - timedelta(days=5)
    for key, n, until in (
        ("in_force", 1, SETUP_AT + timedelta(days=30)),
        ("expired", 9, SETUP_AT - timedelta(days=1)),
        ("withdrawn", 13, SETUP_AT + timedelta(days=30)),
        ("in_force_2", 4, SETUP_AT + timedelta(days=30)),
    ):
        body = {
            "kind": "out_of_hours_consent",
            "source": "letter",
            "taken_at": iso(taken),
            "window_start": "21:00",
            "window_end": "23:30",
            "valid_until": iso(until),
            "evidence": f"consent form {key}",
        }
        made = world.call(
            "POST",
            f"/api/v1/borrowers/{world.borrowers[n]}/requests",
            "dispatcher",
            (201,),
            json=body,
        )
        world.consents[key] = made["request"]["id"]


def _uploads(world: World, names: tuple[str, ...]) -> None:
    for agent, _, _ in AGENTS:
        for name in names:
            upload(world, agent, name)


def _setup_changes(world: World) -> None:
    for n in CANCELLED_AT_SETUP:
        assert cancel(world, f"c{n}-today") == 200
    for n in REASSIGNED_AT_SETUP:
        assert reassign(world, f"c{n}-today") == 200
    for n, flag in CASE_FLAGS_AT_SETUP.items():
        flag_case(world, n, flag)


def midway_changes(world: World) -> Iterator[str]:
    """What changes on the server while the phones are out: applied by the driver at the
    middle of the run. Yields a label per change."""
    for key in CANCELLED_MIDWAY:
        yield f"cancel {key}: {cancel(world, key)}"
    for key in REASSIGNED_MIDWAY:
        yield f"reassign {key}: {reassign(world, key)}"
    for n in HARDSHIP_MIDWAY:
        flag_case(world, n, "hardship")
        yield f"hardship c{n}"
    withdraw_consent(world, "withdrawn", 13)
    yield "withdraw consent c13"
    _uploads(world, UPLOADED_MIDWAY)
    yield "upload late blobs"
    for _, _, phones in AGENTS:  # the phones learn what to purge
        for phone in phones:
            world.call("GET", "/api/v1/sync/pull", phone, (200,))
    yield "every phone pulls"
