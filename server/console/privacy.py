"""The privacy officer's pages: ledger status (verify, checkpoints), a borrower's
disclosure report, anomalies, an agent's or a device's history, retention (the rules in
force and the signed purge certificates) and evidence packs (built, and the list of those
built). Ids and field names only, never a borrower's values: none of these pages declares a
borrower fact, so none writes a ledger entry, as in the API; building an evidence pack is a
disclosure, and the service ledgers it (legal_escalation) as POST .../evidence-pack does."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from schemas.audit import ChainReportSchema, StaffActionPageSchema
from schemas.audit_reports import (
    AnomalyPageSchema,
    AnomalyQueryArgsSchema,
    DisclosureQueryArgsSchema,
    DisclosureReportSchema,
    HistoryQueryArgsSchema,
    HistorySchema,
    RetentionRuleSchema,
)
from schemas.checkpoints import CheckpointSchema, PurgeCertificatePageSchema
from server.api.context import caller, get_db, runtime
from server.api.evidence import pack_response
from server.console.blueprint import bp, console_requires
from server.console.forms import CheckpointForm, EvidencePackForm, read_filters
from server.console.ledgered_page import ledgered_body
from server.domain.anomaly_rules import ANOMALY_KINDS
from server.domain.roles import ADMIN, PRIVACY_OFFICER
from server.errors import InvalidInput
from server.services import anomalies as anomaly_service
from server.services import audit, audit_reports, checkpoints, evidence_pack, retention


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
    args = read_filters(DisclosureQueryArgsSchema(), ("since", "until"))
    rt = runtime()
    report = ledgered_body(
        DisclosureReportSchema(),
        None,
        lambda: audit_reports.borrower_disclosures(get_db(), rt, int(borrower), args),
    )
    return render_template("console/disclosures.html", report=report, borrower_id=borrower)


def _filters() -> dict[str, str]:
    return {k: v for k, v in request.args.items() if v}


@bp.get("/anomalies")
@console_requires(PRIVACY_OFFICER)
def anomalies():
    args = read_filters(AnomalyQueryArgsSchema(), ("since", "until", "after"), many=("kind",))
    rt = runtime()
    page = ledgered_body(
        AnomalyPageSchema(), None, lambda: anomaly_service.anomalies_page(get_db(), rt, args)
    )
    chosen = set(request.args.getlist("kind"))
    return render_template(
        "console/anomalies.html", page=page, kinds=ANOMALY_KINDS, chosen=chosen, filters=_filters()
    )


@bp.get("/history")
@console_requires(PRIVACY_OFFICER)
def history():
    user = request.args.get("user_id", "").strip()
    device = request.args.get("device_id", "").strip()
    if not user and not device:
        return render_template("console/history.html", page=None, filters={})
    if user and device:
        raise InvalidInput(_("Give an agent or a device, not both."), field="device_id")
    if user and not (user.isascii() and user.isdigit() and len(user) < 12):
        raise InvalidInput(_("A user id is a number."), field="user_id")
    if len(device) > 200:
        raise InvalidInput(_("A device id is at most 200 characters."), field="device_id")
    args = read_filters(HistoryQueryArgsSchema(), ("since", "until", "after"))
    rt = runtime()
    if user:
        read = lambda: audit_reports.agent_history(get_db(), rt, int(user), args)  # noqa: E731
    else:
        read = lambda: audit_reports.device_history(get_db(), rt, device, args)  # noqa: E731
    page = ledgered_body(HistorySchema(), None, read)
    return render_template("console/history.html", page=page, filters=_filters())


@bp.get("/retention")
@console_requires(PRIVACY_OFFICER)
def retention_status():
    after = request.args.get("after", "0")
    if not (after.isascii() and after.isdigit() and len(after) < 12):
        raise InvalidInput(_("Give whole numbers only."), field="after")
    db, rt = get_db(), runtime()
    certificates = ledgered_body(
        PurgeCertificatePageSchema(),
        None,
        lambda: retention.list_certificates(db, int(after), 100, None),
    )
    rules = RetentionRuleSchema(many=True).dump(
        audit_reports.records_of_processing(db, rt)["retention"]
    )
    return render_template("console/retention.html", page=certificates, rules=rules)


def _evidence_page(form: EvidencePackForm, status: int = 200):
    args = {"action": "evidence_pack_sealed", "target_type": "case", "after": 0, "limit": 100}
    built = ledgered_body(
        StaffActionPageSchema(), None, lambda: audit_reports.staff_actions(get_db(), args)
    )
    return render_template("console/evidence.html", built=built, form=form), status


@bp.get("/evidence")
@console_requires(PRIVACY_OFFICER)
def evidence():
    return _evidence_page(EvidencePackForm(formdata=None))


@bp.post("/evidence")
@console_requires(PRIVACY_OFFICER)
def build_evidence():
    form = EvidencePackForm()
    if not form.validate():
        field = next(iter(form.errors), "case_id")
        raise InvalidInput(_("Give the case id and the legal matter."), field=field)
    work = Path(tempfile.mkdtemp(prefix="doorstep-evidence-"))
    try:
        built = evidence_pack.build_pack(
            get_db(), runtime(), caller(), form.case_id.data, form.reason.data, work
        )
        return pack_response(built, evidence_pack.archive_pack(built))
    finally:
        shutil.rmtree(work, ignore_errors=True)
