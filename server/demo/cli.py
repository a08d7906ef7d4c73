"""`flask demo`: load the demo data set and print how to log in."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import click
from flask.cli import with_appcontext

from server.cli_context import cli_caller, open_database, runtime
from server.clock import to_iso
from server.demo import data, seed
from server.storage.migrations import migrate


@click.command("demo")
@with_appcontext
@click.option("--borrowers", default=2000, show_default=True, help="number of demo cases")
@click.option("--agents", default=20, show_default=True, help="number of demo agents")
@click.option("--visits-per-agent", default=12, show_default=True)
def demo(borrowers: int, agents: int, visits_per_agent: int) -> None:
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
    passwords = seed.ensure_demo_accounts(db, rt, caller, agent_specs)
    today = caller.now.astimezone(ZoneInfo(data.TIME_ZONE)).date()
    planned = seed.plan_demo_day(db, rt, caller, rows, agent_specs, today, visits_per_agent)
    click.echo(f"visits for {today}: {planned} planned now")
    click.echo("")
    click.echo("Doorstep demo is ready.")
    click.echo("  API:  http://127.0.0.1:5000/api/v1")
    click.echo("  Docs: http://127.0.0.1:5000/api/v1/docs  (OpenAPI: /api/v1/openapi.json)")
    click.echo("Logins (POST /api/v1/auth/login; agents also send a device_id of 8+ chars):")
    for username, password in passwords.items():
        click.echo(f"  {username:14} {password}")
