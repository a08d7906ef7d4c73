"""`flask import-contacts FILE`: a dialer's or SMS gateway's export into the contact log."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext
from tqdm import tqdm

from server.cli_context import cli_caller, open_database, runtime
from server.services import contact_import


@click.command("import-contacts")
@with_appcontext
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv"]), help="default: from the file extension"
)
@click.option("--quiet", is_flag=True, help="no progress bar")
def import_contacts(path: Path, fmt: str | None, quiet: bool) -> None:
    """Import contacts from a JSON Lines or CSV file, with a progress bar; idempotent."""
    fmt = fmt or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    with path.open(encoding="utf-8") as handle:
        total = sum(1 for line in handle if line.strip()) - (1 if fmt == "csv" else 0)
    with (
        path.open(encoding="utf-8", newline="") as handle,
        tqdm(total=total, unit="rows", disable=quiet) as bar,
    ):
        report = contact_import.import_contacts(
            open_database(),
            runtime(),
            cli_caller("import-contacts"),
            handle,
            fmt,
            str(path),
            progress=bar.update,
        )
    click.echo(
        f"{report['total_rows']} rows: {report['created']} logged, "
        f"{report['already_logged']} already on the log, {report['rejected']} rejected"
    )
    for error in report["errors"][:50]:
        click.echo(f"  row {error['row']}: {error['field'] or '-'}: {error['message']}")
