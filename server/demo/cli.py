"""`flask demo`: load the demo data set, write its logins file and print how to log in."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from flask.cli import with_appcontext

from server.cli_context import cli_caller, database_path, open_database, runtime
from server.clock import to_iso
from server.config import public_url
from server.demo import data, seed
from server.demo.logins import (
    DemoLogin,
    UnreadableLogins,
    logins_document,
    logins_path,
    read_passwords,
    write_logins,
)
from server.keys import state_dir
from server.storage.migrations import migrate

# How each account's password fared in this run, as the summary line says it.
_CHANGES = {
    "created": "new",
    "kept": "kept",
    "reset": "with a new password",
    "unknown": "kept but not known here",
}


@click.command("demo")
@with_appcontext
@click.option("--borrowers", default=2000, show_default=True, help="number of demo cases")
@click.option("--agents", default=20, show_default=True, help="number of demo agents")
@click.option("--visits-per-agent", default=12, show_default=True)
@click.option(
    "--reset-passwords",
    is_flag=True,
    help="give existing demo accounts new passwords too (default: keep them)",
)
def demo(borrowers: int, agents: int, visits_per_agent: int, reset_passwords: bool) -> None:
    """Load the demo data set (idempotent) and print how to log in."""
    rt = runtime()
    db = open_database()
    caller = cli_caller("demo")
    migrate(db, to_iso(caller.now))
    rows = data.demo_case_rows(borrowers)
    report = seed.import_demo_cases(db, rt, caller, rows)
    click.echo(
        f"cases: {report['created']} created, {report['updated']} updated, "
        f"{report['unchanged']} unchanged"
    )
    agent_specs = data.demo_agents(agents)
    path = logins_path(database_path(), state_dir(rt.settings))
    known = _known_passwords(path)
    wanted = seed.demo_account_specs(agent_specs)
    logins = seed.ensure_demo_accounts(db, rt, caller, wanted, known, reset=reset_passwords)
    seed.register_demo_phones(db, caller, logins)
    logins += seed.other_known_logins(db, rt, known, {spec["username"] for spec in wanted})
    today = caller.now.astimezone(ZoneInfo(data.TIME_ZONE)).date()
    planned = seed.plan_demo_day(db, rt, caller, rows, agent_specs, today, visits_per_agent)
    click.echo(f"visits for {today}: {planned} planned now")

    base_url = f"{public_url(rt.settings)}/api/v1"
    write_logins(path, logins_document(base_url, logins))
    click.echo("")
    click.echo("Doorstep demo is ready.")
    click.echo(f"  API:  {base_url}")
    click.echo(f"  Docs: {base_url}/docs  (OpenAPI: {base_url}/openapi.json)")
    if not rt.settings["PUBLIC_URL"]:
        click.echo(f"  Start it: flask --app wsgi run --port {rt.settings['RUN_PORT']}")
    _echo_logins(logins, path)
    _echo_how_to_log_in(base_url, logins)


def _known_passwords(path: Path) -> dict[str, str]:
    """The passwords an earlier run wrote; none (with a warning) when the file is unreadable."""
    try:
        return read_passwords(path)
    except UnreadableLogins as exc:
        click.echo(f"warning: cannot read the logins file, ignoring it ({exc})", err=True)
        return {}


def _echo_logins(logins: Sequence[DemoLogin], path: Path) -> None:
    counts = {label: sum(1 for x in logins if x.change == c) for c, label in _CHANGES.items()}
    summary = ", ".join(f"{n} {label}" for label, n in counts.items() if n)
    click.echo(f"Logins ({summary}), saved in {path} (readable by you only):")
    for login in logins:
        device = f"  device_id {login.device_id}" if login.device_id else ""
        password = login.password or "(unchanged, not known here)"
        click.echo(f"  {login.username:14} {login.role:16} {password}{device}")
    unknown = [login.username for login in logins if login.password is None]
    if unknown:
        click.echo(
            f"The passwords of {len(unknown)} existing accounts are not in {path.name}, so "
            "they were kept unchanged and cannot be shown. To give them new ones, run again "
            "with --reset-passwords (or set DOORSTEP_DEMO_PASSWORD)."
        )


def _echo_how_to_log_in(base_url: str, logins: Sequence[DemoLogin]) -> None:
    agent = next((x for x in logins if x.role == "agent" and x.password), None)
    if agent is None:
        return
    body = {"username": agent.username, "password": agent.password, "device_id": agent.device_id}
    click.echo("Log in (agents send their registered phone's device_id, then X-Device-Id):")
    click.echo(
        f"  curl -s -XPOST {base_url}/auth/login -H 'content-type: application/json' "
        f"-d '{json.dumps(body, separators=(',', ':'))}'"
    )
