"""Flask CLI commands for the ledger's tamper evidence: `keys` (list, rotate,
accept-previous) and `ledger` (verify, export-fhir)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import with_appcontext

from server.cli_context import open_database, runtime
from server.clock import parse_iso
from server.errors import KeyringError
from server.services import audit, keyring, ledger_export


@click.group("keys")
def keys() -> None:
    """The keyring of ledger signing keys: list it, record a key change."""


@keys.command("list")
@with_appcontext
def list_keys() -> None:
    """Every public key that signed the ledger's checkpoints, oldest first."""
    rt = runtime(key_checked=False)
    listing = keyring.list_keys(open_database(), rt)
    for key in listing["items"]:
        marks = ["current"] if key["current"] else []
        if key["endorsed_by"]:
            marks.append(f"endorsed by {key['endorsed_by']}")
        if key["in_keyring_file"] is False:
            marks.append("NOT IN THE KEYRING FILE")
        click.echo(
            f"{key['key_id']}  added {key['added_at']} by {key['added_by']}"
            + (f"  ({', '.join(marks)})" if marks else "")
        )
    if not any(key["current"] for key in listing["items"]):
        click.echo(f"this server's key {listing['current_key_id']} is NOT in the keyring")


@keys.command("rotate")
@with_appcontext
@click.option(
    "--previous-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the retiring private key (PEM): it signs a hand-over to the new key",
)
@click.option(
    "--previous-public-key",
    "previous_public_keys",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="a previous public key (PEM) that signed part of the ledger; repeatable",
)
def rotate_key(previous_key_file: Path | None, previous_public_keys: tuple[Path, ...]) -> None:
    """Record that this server now signs with the configured key (run it with the new key)."""
    rt = runtime(key_checked=False)
    try:
        added = keyring.rotate(
            open_database(),
            rt,
            rt.clock(),
            previous_private_pem=previous_key_file.read_bytes() if previous_key_file else None,
            previous_public_pems=tuple(p.read_text() for p in previous_public_keys),
        )
    except KeyringError as exc:
        raise click.ClickException(str(exc)) from None
    for key in added:
        click.echo(f"added {key['key_id']} ({key['added_by']})")
    if not added:
        click.echo(f"the keyring already holds {rt.keys.key_id}: nothing to record")


@keys.command("accept-previous")
@with_appcontext
@click.option(
    "--public-key",
    "public_key_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the previous public key (PEM)",
)
def accept_previous(public_key_file: Path) -> None:
    """Record an old public key whose signatures on the ledger stay valid."""
    rt, pem = runtime(key_checked=False), public_key_file.read_text()
    try:
        added = keyring.accept_previous(open_database(), rt, rt.clock(), pem)
    except KeyringError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"added {added['key_id']}" if added else "already in the keyring")


@click.group("ledger")
def ledger() -> None:
    """The exposure ledger: verify it, export it for a SIEM."""


@ledger.command("verify")
@with_appcontext
@click.option("--json", "as_json", is_flag=True, help="print the whole report as JSON")
def verify_ledger(as_json: bool) -> None:
    """Check the chain against stored and external checkpoints (exit 1 when not intact)."""
    report = audit.verify(open_database(), runtime())
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        state = "intact" if report["intact"] else "NOT INTACT"
        click.echo(
            f"ledger {state}: {report['entries_checked']} entries checked, head "
            f"{report['head_seq']}, {report['checkpoints_checked']} stored and "
            f"{report['external_checkpoints_checked']} external checkpoints"
        )
        click.echo(report["coverage"])
        for finding in report["findings"]:
            click.echo(f"  - {finding}")
    if not report["intact"]:
        raise SystemExit(1)


@ledger.command("export-fhir")
@with_appcontext
@click.option("--since", "since_text", help="ISO 8601 instant: entries from then (default: all)")
@click.option("--until", "until_text", help="ISO 8601 instant: entries before then")
@click.option(
    "--output",
    type=click.File("w", lazy=False),
    default="-",
    help="JSON lines file (default: stdout)",
)
def export_fhir(since_text: str | None, until_text: str | None, output) -> None:
    """Ledger entries as FHIR R4 AuditEvent JSON lines, for a SIEM."""
    try:
        since = parse_iso(since_text) if since_text else None
        until = parse_iso(until_text) if until_text else None
    except ValueError:
        raise click.BadParameter("not ISO 8601", param_hint="--since/--until") from None
    count = 0
    for event in ledger_export.fhir_audit_events(open_database(), runtime(), since, until):
        output.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")
        count += 1
    click.echo(f"{count} audit events", err=True)
