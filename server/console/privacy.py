"""The privacy officer's pages: ledger status (verify, checkpoints) and a borrower's
disclosure report. Ids and field names only, never a borrower's values."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from schemas.audit import ChainReportSchema
from schemas.audit_reports import DisclosureQueryArgsSchema, DisclosureReportSchema
from schemas.checkpoints import CheckpointSchema
from server.api.context import caller, get_db, runtime
from server.console.blueprint import bp, console_requires
from server.console.forms import CheckpointForm
from server.console.ledgered_page import ledgered_body
from server.domain.roles import ADMIN, PRIVACY_OFFICER
from server.errors import InvalidInput
from server.services import audit, audit_reports, checkpoints


def _ledger_page(report: dict | None = None):
    status = checkpoints.ledger_status(get_db())
    last = status["last_checkpoint"]
    return render_template(
        "console/ledger.html",
        status=status,
        last=CheckpointSchema().dump(last) if last else None,
        report=report,
        form=CheckpointForm(),
    )


@bp.get("/ledger")
@console_requires(PRIVACY_OFFICER, ADMIN)
def ledger():
    return _ledger_page()


@bp.get("/ledger/verify")
@console_requires(PRIVACY_OFFICER)
def verify_ledger():
    report = ledgered_body(ChainReportSchema(), None, lambda: audit.verify(get_db(), runtime()))
    return _ledger_page(report)


@bp.post("/ledger/checkpoints")
@console_requires(PRIVACY_OFFICER, ADMIN)
def take_checkpoint():
    form = CheckpointForm()
    if not form.validate():
        raise InvalidInput(_("The reason is at most 200 characters."), field="reason")
    document = checkpoints.take_checkpoint(get_db(), runtime(), caller(), form.reason.data or None)
    flash(
        _(
            "Checkpoint %(id)s signs the ledger up to entry %(seq)s.",
            id=document["id"],
            seq=document["head_seq"],
        ),
        "success",
    )
    return redirect(url_for("console.ledger"))


@bp.get("/disclosures")
@console_requires(PRIVACY_OFFICER)
def disclosures():
    borrower = request.args.get("borrower_id", "").strip()
    if not borrower:
        return render_template("console/disclosures.html", report=None, borrower_id="")
    if not borrower.isdigit():
        raise InvalidInput(_("A borrower id is a number."), field="borrower_id")
    given = {k: v for k, v in request.args.items() if v and k in ("since", "until")}
    try:
        args = DisclosureQueryArgsSchema().load(given)
    except ValidationError as exc:
        field = next(iter(exc.messages), None)
        raise InvalidInput(_("Check the period: %(field)s", field=field), field=field) from None
    rt = runtime()
    report = ledgered_body(
        DisclosureReportSchema(),
        None,
        lambda: audit_reports.borrower_disclosures(get_db(), rt, int(borrower), args),
    )
    return render_template("console/disclosures.html", report=report, borrower_id=borrower)
