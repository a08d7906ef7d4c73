"""Flask CLI commands: init-db, users create, import-cases, import-payments, close-day,
verify-receipt, checkpoint, purge, backup, restore; `demo` lives in server/demo/cli.py, `keys`
and `ledger` in server/cli_ledger.py, `evidence-pack` and `verify-evidence` in
server/cli_evidence.py, `import-contacts` in server/cli_contacts.py."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext
from tqdm import tqdm

from server.cli_contacts import import_contacts
from server.cli_context import cli_caller, database_path, fail, open_database, runtime
from server.cli_evidence import evidence_pack_command, verify_evidence_command
from server.cli_ledger import keys, ledger
from server.clock import parse_iso, to_iso
from server.demo.cli import demo
from server.domain.roles import ROLES
from server.errors import BackupError, DoorstepError
from server.services import accounts, checkpoints, imports, payments, retention, visit_outcomes
from server.services import backups as backup_service
from server.storage.engine import is_postgres, job_lock
from server.storage.migrations import migrate
from sync.receipts import verify_receipt


def register_cli(app: Flask) -> None:
    app.cli.add_command(init_db)
    app.cli.add_command(demo)
    app.cli.add_command(users)
    app.cli.add_command(import_cases)
    app.cli.add_command(import_payments)
    app.cli.add_command(import_contacts)
    app.cli.add_command(close_day_command)
    app.cli.add_command(verify_receipt_command)
    app.cli.add_command(checkpoint_command)
    app.cli.add_command(purge_command)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
    app.cli.add_command(keys)
    app.cli.add_command(ledger)
    app.cli.add_command(evidence_pack_command)
    app.cli.add_command(verify_evidence_command)


@click.command("init-db")
@with_appcontext
def init_db() -> None:
    """Create or upgrade the database (safe to run twice)."""
    db = open_database()
    applied = migrate(db, to_iso(runtime().clock()))
    click.echo(
        f"database {database_path()}: "
        f"{'applied migrations ' + str(applied) if applied else 'up to date'}"
    )


@click.group("users")
def users() -> None:
    """Manage user accounts."""


@users.command("create")
@with_appcontext
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--display-name")
@click.option("--badge-number")
@click.option("--time-zone")
def create_user(username, role, password, display_name, badge_number, time_zone) -> None:
    """Create a user account."""
    data = {
        "username": username,
        "password": password,
        "role": role,
        "display_name": display_name,
        "badge_number": badge_number,
        "time_zone": time_zone,
    }
    try:
        user = accounts.create_user(
            open_database(),
            runtime(),
            cli_caller("users create"),
            {k: v for k, v in data.items() if v is not None},
        )
    except DoorstepError as exc:
        raise fail(exc) from None
    click.echo(f"created {user['role']} {user['username']} (id {user['id']})")


@click.command("import-cases")
@with_appcontext
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv"]), help="default: from the file extension"
)
@click.option("--quiet", is_flag=True, help="no progress bar")
def import_cases(path: Path, fmt: str | None, quiet: bool) -> None:
    """Import cases from a JSON Lines or CSV file, with a progress bar."""
    fmt = fmt or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    with path.open(encoding="utf-8") as handle:
        total = sum(1 for line in handle if line.strip()) - (1 if fmt == "csv" else 0)
    with (
        path.open(encoding="utf-8", newline="") as handle,
        tqdm(total=total, unit="rows", disable=quiet) as bar,
    ):
        report = imports.import_cases(
            open_database(),
            runtime(),
            cli_caller("import-cases"),
            handle,
            fmt,
            str(path),
            progress=bar.update,
        )
    click.echo(
        f"{report['total_rows']} rows: {report['created']} created, "
        f"{report['updated']} updated, {report['unchanged']} unchanged, "
        f"{report['rejected']} rejected"
    )
    for error in report["errors"][:50]:
        click.echo(f"  row {error['row']}: {error['field'] or '-'}: {error['message']}")


def _data_rows(path: Path, fmt: str) -> int:
    with path.open(encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip()) - (1 if fmt == "csv" else 0)


@click.command("import-payments")
@with_appcontext
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv"]), help="default: from the file extension"
)
@click.option("--quiet", is_flag=True, help="no progress bar")
def import_payments(path: Path, fmt: str | None, quiet: bool) -> None:
    """Import payments from a JSON Lines or CSV file, with a progress bar."""
    fmt = fmt or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    with (
        path.open(encoding="utf-8", newline="") as handle,
        tqdm(total=_data_rows(path, fmt), unit="rows", disable=quiet) as bar,
    ):
        report = payments.import_payments(
            open_database(), cli_caller("import-payments"), handle, fmt, str(path), bar.update
        )
    click.echo(
        f"{report['total_rows']} rows: {report['created']} created, "
        f"{report['unchanged']} unchanged, {report['rejected']} rejected"
    )
    for error in report["errors"][:50]:
        click.echo(f"  row {error['row']}: {error['field'] or '-'}: {error['message']}")


@click.command("close-day")
@with_appcontext
@click.option(
    "--day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="only this day's visits (default: every day that has ended)",
)
def close_day_command(day) -> None:
    """Mark missed the visits still planned whose day has ended in the borrower's time zone
    (safe to run again; requests after a day's end do the same)."""
    db = open_database()
    with job_lock(db, "close-day") as mine:
        if not mine:
            click.echo("close-day: another app server is running it; skipped")
            return
        report = visit_outcomes.close_days(db, cli_caller("close-day"), day.date() if day else None)
    scope = f"day {report['day']}" if report["day"] else "every day that has ended"
    click.echo(f"{scope}: {report['missed']} visit(s) marked missed")


@click.command("verify-receipt")
@with_appcontext
@click.argument("receipt_file", type=click.File("r"))
@click.option(
    "--public-key",
    "public_key_file",
    type=click.File("r"),
    help="PEM public key (default: this server's)",
)
def verify_receipt_command(receipt_file, public_key_file) -> None:
    """Check an agreement receipt (JSON) against the server's Ed25519 public key."""
    try:
        receipt = json.load(receipt_file)
        pem = public_key_file.read() if public_key_file else runtime().keys.public_pem()
        valid = verify_receipt(pem, receipt)
    except (ValueError, KeyError, TypeError) as exc:
        raise click.ClickException(f"unreadable receipt or key: {exc}") from None
    if not valid:
        click.echo("INVALID: the signature does not match this receipt")
        raise SystemExit(1)
    click.echo(
        f"valid: agreement {receipt['agreement_id']} with content hash "
        f"{receipt['content_hash']} received at {receipt['received_at']}"
    )


@click.command("checkpoint")
@with_appcontext
@click.option("--reason", default="scheduled", show_default=True)
@click.option(
    "--if-due",
    is_flag=True,
    help="only if the ledger grew by CHECKPOINT_EVERY entries since the last checkpoint, or "
    "an entry waited CHECKPOINT_EVERY_S seconds for one",
)
@click.option(
    "--export",
    "export_file",
    type=click.File("w"),
    help="also write the checkpoint file here (keep it outside the database)",
)
def checkpoint_command(reason: str, if_due: bool, export_file) -> None:
    """Sign the exposure ledger's head (schedulable, e.g. hourly from cron)."""
    rt, db = runtime(), open_database()
    with job_lock(db, "checkpoint") as mine:
        if not mine:
            click.echo("checkpoint: another app server is taking one; skipped")
            return
        if if_due:
            row = checkpoints.maybe_checkpoint(db, rt, rt.clock())
            if row is None:
                click.echo("no checkpoint due")
                return
            document = checkpoints.checkpoint_document(rt, row)
        else:
            document = checkpoints.take_checkpoint(db, rt, cli_caller("checkpoint"), reason)
    if export_file:
        json.dump(document, export_file, indent=2)
        export_file.write("\n")
    click.echo(
        f"checkpoint {document['id']}: entry {document['head_seq']} "
        f"hash {document['head_hash']} signed by key {document['key_id']}"
    )


@click.command("purge")
@with_appcontext
@click.option("--dry-run", is_flag=True, help="list what would be removed; change nothing")
@click.option(
    "--now",
    "now_text",
    help="ISO 8601 instant to apply the clocks at (default: now; later only with --dry-run)",
)
def purge_command(dry_run: bool, now_text: str | None) -> None:
    """Remove what the retention rules say is due and write signed purge certificates."""
    try:
        now = parse_iso(now_text) if now_text else None
    except ValueError:
        raise click.BadParameter(f"not ISO 8601: {now_text}", param_hint="--now") from None
    # Evidence must be kept its full term: a real purge may not run ahead of the clock.
    if now and not dry_run and now > runtime().clock():
        raise click.BadParameter("a future instant needs --dry-run", param_hint="--now")
    db = open_database()
    with job_lock(db, "purge") as mine:
        if not mine:
            click.echo("purge: another app server is running it; skipped")
            return
        report = retention.purge(db, runtime(), cli_caller("purge", now), dry_run=dry_run)
    _echo_purge(report)
    if any("skipped" in kind["details"] for kind in report["kinds"]):
        raise SystemExit(1)


_PURGE_ID_LABELS = {"compliance_evidence": "case ids", "attachments": "blob sha256s"}


def _echo_purge(report: dict) -> None:
    dry_run = report["dry_run"]
    click.echo(f"{'dry run' if dry_run else 'purge'} at {report['now']}")
    for kind in report["kinds"]:
        details = kind["details"]
        line = f"{kind['kind']}: {'would remove' if dry_run else 'removed'} {kind['count']}"
        line += f" (cutoff {kind['cutoff']})"
        if not dry_run:
            line += f", certificate {kind['certificate_id']}"
        click.echo(line)
        click.echo(f"  {json.dumps(details, sort_keys=True)}")
        if dry_run and kind["ids"]:
            label = _PURGE_ID_LABELS.get(kind["kind"], "borrower ids")
            click.echo(f"  {label}: {' '.join(map(str, kind['ids']))}")
        if dry_run and kind.get("uploads"):
            click.echo(f"  upload ids: {' '.join(kind['uploads'])}")
        if details.get("entries_left_for_next_run"):
            click.echo("  more entries are due than one run removes: run purge again")
    if not dry_run:
        click.echo(f"certificates signed against checkpoint {report['checkpoint_id']}")


@click.command("backup")
@with_appcontext
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--verify/--no-verify",
    default=True,
    show_default=True,
    help="check the copy's integrity and exposure ledger before keeping it",
)
def backup_command(dest: Path, verify: bool) -> None:
    """Copy the live database to DEST while the server runs (schedulable from cron)."""
    _refuse_on_postgresql("backup")
    db = open_database()
    try:
        summary = backup_service.take_backup(db, runtime(), dest, check=verify)
    except BackupError as exc:
        raise click.ClickException(f"backup failed: {exc}") from None
    finally:
        db.conn.close()
    _echo_backup("backup", summary)


@click.command("restore")
@with_appcontext
@click.argument("src", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="replace a database that already holds data")
def restore_command(src: Path, force: bool) -> None:
    """Restore a backup into DOORSTEP_DATABASE; stop the server first."""
    _refuse_on_postgresql("restore")
    rt = runtime()
    target = Path(database_path())
    try:
        summary = backup_service.restore_backup(src, target, rt, to_iso(rt.clock()), force=force)
    except BackupError as exc:
        raise click.ClickException(f"restore refused: {exc}") from None
    _echo_backup("restored", summary)
    applied = summary.migrations_applied
    click.echo(f"  migrations applied: {applied}" if applied else "  schema up to date")
    click.echo(f"start (or restart) the server on {target}")


def _refuse_on_postgresql(command: str) -> None:
    """`flask backup` and `restore` copy a SQLite file; on PostgreSQL they would pretend."""
    if is_postgres(database_path()):
        raise click.ClickException(
            f"{command}: the store is PostgreSQL; back it up with pg_dump or the server's "
            "own base backups and WAL archiving, restore with pg_restore "
            "(docs/deployment.md, Backups)"
        )


def _echo_backup(label: str, summary: backup_service.BackupSummary) -> None:
    click.echo(
        f"{label} {summary.path}: {summary.size_bytes:,} bytes, "
        f"schema version {summary.schema_version}"
    )
    click.echo(f"  integrity: {summary.integrity or 'not checked (--no-verify)'}")
    state = {True: "intact", False: "BROKEN", None: "not verified"}[summary.ledger_intact]
    click.echo(
        f"  ledger: head entry {summary.ledger_head_seq} hash {summary.ledger_head_hash}, {state}"
    )
    click.echo(f"  tables ({len(summary.tables)}):")
    for name, count in summary.tables.items():
        click.echo(f"    {name:24} {count:>10,}")
