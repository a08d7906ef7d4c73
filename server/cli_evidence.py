"""Flask CLI commands for legal evidence packs: `evidence-pack` builds one for a case,
`verify-evidence` checks one offline (no database needed)."""

from __future__ import annotations

import uuid
from pathlib import Path

import click
from flask.cli import with_appcontext

from server.cli_context import fail, open_database, runtime
from server.errors import DoorstepError
from server.runtime import Caller, Principal
from server.services import evidence_pack
from server.services.evidence_verify import verify_pack
from server.storage import accounts as account_rows


@click.command("evidence-pack")
@with_appcontext
@click.argument("case_id", type=int)
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--by", "username", required=True, help="the privacy officer building it")
@click.option("--reason", required=True, help="the legal matter (court, case number, ...)")
def evidence_pack_command(case_id: int, out_dir: Path, username: str, reason: str) -> None:
    """Build the evidence pack (a BagIt bag) of CASE_ID under OUT_DIR; ledgered, legal hold."""
    rt = runtime()
    db = open_database()
    user = account_rows.get_user_by_username(db, username)
    if user is None or not user["active"]:
        raise click.ClickException(f"no active user {username!r}")
    principal = Principal(user["id"], user["username"], user["role"], None)
    request_id = f"cli-{uuid.uuid4().hex[:12]}"
    who = Caller(principal, request_id, "cli evidence-pack", "local", rt.clock())
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        built = evidence_pack.build_pack(db, rt, who, case_id, reason, out_dir)
    except DoorstepError as exc:
        raise fail(exc) from None
    click.echo(evidence_pack.pack_summary(built))


@click.command("verify-evidence")
@click.argument("pack", type=click.Path(exists=True, file_okay=False, path_type=Path))
def verify_evidence_command(pack: Path) -> None:
    """Check an evidence pack offline: BagIt manifests, ledger against its checkpoints,
    agreement receipts. Exit 1 naming every problem."""
    report = verify_pack(pack)
    for problem in report.problems:
        click.echo(f"FAIL {problem}", err=True)
    checked = ", ".join(f"{count} {what}" for what, count in sorted(report.checked.items()))
    if not report.valid:
        raise click.ClickException(f"the evidence pack is NOT intact ({checked} checked)")
    click.echo(f"the evidence pack is intact ({checked} checked)")
