"""The dispatcher's planning pages: reordering an agent's day (by hand or as proposed, with
the version check), proposing who takes the day's open visits, and the worklist of broken
promises and overdue instalments (the ladder's next lawful action). The use cases are the
API's: dispatch.set_day_order, routes.propose_route / propose_assignment /
accept_assignment, repayment.promise_worklist."""

from __future__ import annotations

from datetime import date

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from schemas.console import RouteMapSchema
from schemas.payments import PromiseWorklistArgsSchema, PromiseWorklistSchema
from schemas.routes import AssignmentProposalSchema
from server.api.context import caller, get_db, runtime
from server.api.errors import status_of
from server.console.blueprint import bp, console_requires
from server.console.dispatch import business_day
from server.console.forms import read_filters
from server.console.ledgered_page import ledgered_body
from server.console.route_map import drawing
from server.console.vocabulary import translated_words
from server.domain.disclosure import DISPATCH_PLANNING
from server.domain.roles import DISPATCHER
from server.errors import DoorstepError, InvalidInput, VersionConflict
from server.services import console_pages, dispatch, repayment, routes

MAX_ORDER = 200  # visits in one day's order, as the API's DayOrderSchema


def _route_page(
    agent_id: int, day: date, *, proposed: bool, problem: str | None = None, status: int = 200
):
    rt = runtime()
    body = ledgered_body(
        RouteMapSchema(),
        DISPATCH_PLANNING,
        lambda: console_pages.route_map(get_db(), rt, caller(), agent_id, day, proposed=proposed),
    )
    visits = {v["id"]: v for v in body["visits"]}
    page = render_template(
        "console/route_map.html",
        page=body,
        map=drawing(body, runtime().settings["CONSOLE_MAP_TILE_URL"]),
        visits=visits,
        proposed=proposed,
        problem=problem,
    )
    return page, status


@bp.get("/agents/<int:agent_id>/days/<string:day>/proposal")
@console_requires(DISPATCHER)
def route_proposal(agent_id: int, day: str):
    return _route_page(agent_id, business_day(day), proposed=True)


def _int(text: str, field: str) -> int:
    text = text.strip()
    if not (text.isascii() and text.isdigit() and len(text) < 12):
        raise InvalidInput(_("Give whole numbers only."), field=field)
    return int(text)


def _ordered_form() -> list[dict[str, int]]:
    """The order a reorder form asks for: each `visit` is `id:version`, placed by its
    `position-<id>` (ties keep the page's order)."""
    given = request.form.getlist("visit")
    if not given or len(given) > MAX_ORDER:
        raise InvalidInput(_("Nothing to reorder."), field="visits")
    rows = []
    for index, item in enumerate(given):
        visit_text, _sep, version_text = item.partition(":")
        visit_id = _int(visit_text, "visits")
        version = _int(version_text, "visits")
        position = _int(request.form.get(f"position-{visit_id}", ""), f"position-{visit_id}")
        rows.append((position, index, {"id": visit_id, "version": version}))
    return [item for _pos, _index, item in sorted(rows, key=lambda r: (r[0], r[1]))]


@bp.post("/agents/<int:agent_id>/days/<string:day>/order")
@console_requires(DISPATCHER)
def reorder(agent_id: int, day: str):
    when = business_day(day)
    ordered = _ordered_form()
    try:
        dispatch.set_day_order(get_db(), caller(), agent_id, when, ordered)
    except VersionConflict:
        problem = _(
            "A visit of this day was changed by someone else since you loaded the page. "
            "Nothing was saved: the route below is read again."
        )
        return _route_page(agent_id, when, proposed=False, problem=problem, status=409)
    except DoorstepError as exc:
        return _route_page(
            agent_id, when, proposed=False, problem=exc.message, status=status_of(exc)
        )
    flash(_("The new order of the day is saved."), "success")
    return redirect(url_for("console.route_map", agent_id=agent_id, day=when.isoformat()))


def _team() -> tuple[str | None, list[int] | None]:
    """The team a proposal is for: a region, agent ids (comma-separated), or everyone."""
    region = (request.values.get("region") or "").strip()
    if len(region) > 200:
        raise InvalidInput(_("A region is at most 200 characters."), field="region")
    given = (request.values.get("agents") or "").replace(" ", "")
    agent_ids = [_int(part, "agents") for part in given.split(",") if part][:200]
    return region or None, agent_ids or None


def _assignment_page(day: date, problem: str | None = None, status: int = 200):
    rt = runtime()
    region, agent_ids = _team()
    body = ledgered_body(
        AssignmentProposalSchema(),
        DISPATCH_PLANNING,
        lambda: console_pages.assignment_proposal(get_db(), rt, caller(), day, region, agent_ids),
    )
    page = render_template(
        "console/assignment.html",
        page=body,
        day=day.isoformat(),
        region=region or "",
        agents=",".join(str(a) for a in agent_ids or ()),
        problem=problem,
        words=translated_words(),
    )
    return page, status


@bp.get("/assignment-proposal")
@console_requires(DISPATCHER)
def assignment_proposal():
    return _assignment_page(business_day(request.args.get("day")))


@bp.post("/assignment")
@console_requires(DISPATCHER)
def accept_assignment():
    when = business_day(request.form.get("day"))
    items = []
    for item in request.form.getlist("visit")[:2000]:
        parts = item.split(":")
        if len(parts) != 4:
            raise InvalidInput(_("Give whole numbers only."), field="visits")
        visit_id, version, agent_id = (_int(p, "visits") for p in parts[:3])
        order = _int(parts[3], "visits") if parts[3] else None
        items.append(
            {"id": visit_id, "version": version, "agent_id": agent_id, "route_order": order}
        )
    if not items:
        raise InvalidInput(_("Nothing to assign."), field="visits")
    try:
        result = routes.accept_assignment(get_db(), runtime(), caller(), when, items)
    except VersionConflict:
        problem = _(
            "A visit was changed by someone else since the proposal was made. Nothing was "
            "saved: the proposal below is made again."
        )
        return _assignment_page(when, problem, 409)
    flash(_("%(n)s visits assigned.", n=len(result["visits"])), "success")
    return redirect(url_for("console.board", day=when.isoformat()))


@bp.get("/promises")
@console_requires(DISPATCHER)
def promises():
    names = ("day", "agent_id", "after")
    given = {k: v for k, v in request.args.items() if v and k in names}
    args = read_filters(PromiseWorklistArgsSchema(), names)
    rt = runtime()
    page = ledgered_body(
        PromiseWorklistSchema(),
        DISPATCH_PLANNING,
        lambda: repayment.promise_worklist(get_db(), rt, caller(), args),
    )
    return render_template("console/promises.html", page=page, args=given, words=translated_words())
