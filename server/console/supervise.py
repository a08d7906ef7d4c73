"""The supervisor's pages (dispatchers supervise): the flag-review queue and the register."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from schemas.flag_reviews import (
    ComplianceSummaryArgsSchema,
    ComplianceSummarySchema,
    FlagReviewDetailSchema,
    FlagReviewPageSchema,
    FlagReviewQueryArgsSchema,
)
from schemas.visit_register import RegisterPageSchema, RegisterQueryArgsSchema
from server.api.context import caller, get_db, runtime
from server.api.errors import status_of
from server.api.responses import csv_file
from server.console.blueprint import bp, console_requires
from server.console.forms import AssignFlagForm, ReopenFlagForm, ResolveFlagForm, read_filters
from server.console.ledgered_page import ledgered_body
from server.domain.csv_cells import csv_lines
from server.domain.disclosure import COMPLIANCE_EVIDENCE, VISIT_REGISTER
from server.domain.roles import DISPATCHER
from server.errors import DoorstepError, InvalidInput
from server.services import flag_reviews, visit_register

_FLAG = "/flags/<string:record_id>/<string:code>"
_ACTIONS = {"assign": AssignFlagForm, "resolve": ResolveFlagForm, "reopen": ReopenFlagForm}


def _flag_page(record_id: str, code: str, *, problem: str | None = None, status: int = 200):
    item = ledgered_body(
        FlagReviewDetailSchema(),
        COMPLIANCE_EVIDENCE,
        lambda: flag_reviews.flag_item(get_db(), record_id, code),
    )
    forms = {name: form() for name, form in _ACTIONS.items()}
    page = render_template(
        "console/flag.html",
        item=item,
        forms=forms,
        reviewers=flag_reviews.reviewers(get_db()),
        problem=problem,
    )
    return page, status


@bp.get("/flags")
@console_requires(DISPATCHER)
def flags():
    args = read_filters(FlagReviewQueryArgsSchema())
    after, limit = args.pop("after"), args.pop("limit")
    page = ledgered_body(
        FlagReviewPageSchema(),
        COMPLIANCE_EVIDENCE,
        lambda: flag_reviews.list_flags(get_db(), args, after, limit),
    )
    return render_template("console/flags.html", page=page, filters=request.args)


@bp.get(_FLAG)
@console_requires(DISPATCHER)
def flag(record_id: str, code: str):
    return _flag_page(record_id, code)


@bp.post(f"{_FLAG}/<string:action>")
@console_requires(DISPATCHER)
def flag_action(record_id: str, code: str, action: str):
    if action not in _ACTIONS:
        raise InvalidInput(_("No such action."), field="action")
    form = _ACTIONS[action]()
    if not form.validate():
        field = next(iter(form.errors), "comment")
        return _flag_page(record_id, code, problem=_("Check %(field)s.", field=field), status=422)
    db, who = get_db(), caller()
    try:
        if action == "assign":
            flag_reviews.assign(
                db,
                who,
                record_id,
                code,
                form.version.data,
                form.assignee_id.data,
                form.comment.data or None,
            )
        elif action == "resolve":
            flag_reviews.resolve(
                db,
                who,
                record_id,
                code,
                form.version.data,
                form.disposition.data,
                form.comment.data,
            )
        else:
            flag_reviews.reopen(db, who, record_id, code, form.version.data, form.comment.data)
    except DoorstepError as exc:
        return _flag_page(record_id, code, problem=exc.message, status=status_of(exc))
    flash(_("Saved."), "success")
    return redirect(url_for("console.flag", record_id=record_id, code=code))


@bp.get("/register", endpoint="register")
@console_requires(DISPATCHER)
def register_page():
    if not request.args:
        return render_template("console/register.html", page=None, filters={})
    args = read_filters(RegisterQueryArgsSchema(), drop=("format",))
    rt = runtime()
    page = ledgered_body(
        RegisterPageSchema(),
        VISIT_REGISTER,
        lambda: visit_register.register_page(get_db(), rt, caller(), args, "console"),
    )
    return render_template("console/register.html", page=page, filters=request.args)


@bp.get("/register.csv")
@console_requires(DISPATCHER)
def register_csv():
    args = read_filters(RegisterQueryArgsSchema(), drop=("format",))
    rt = runtime()
    page = ledgered_body(
        RegisterPageSchema(),
        VISIT_REGISTER,
        lambda: visit_register.register_page(get_db(), rt, caller(), args, "csv"),
    )
    rows = visit_register.csv_rows(page["items"])
    lines = csv_lines(visit_register.CSV_COLUMNS, rows)
    return csv_file(lines, "visit-register.csv", page["next_after"])


@bp.get("/agents/<int:agent_id>/compliance")
@console_requires(DISPATCHER)
def compliance(agent_id: int):
    args = read_filters(ComplianceSummaryArgsSchema())
    summary = ledgered_body(
        ComplianceSummarySchema(),
        None,
        lambda: flag_reviews.compliance_summary(
            get_db(), caller(), agent_id, args.get("start"), args.get("end")
        ),
    )
    return render_template("console/compliance.html", summary=summary, filters=request.args)
