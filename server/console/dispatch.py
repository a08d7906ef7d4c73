"""The dispatcher's pages: the day board, reassigning a visit, a case with its timeline."""

from __future__ import annotations

from datetime import date

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from schemas.console import CasePageSchema, DayBoardSchema, RouteMapSchema
from schemas.visits import DispatchVisitPageSchema
from server.api.context import caller, get_db, runtime
from server.api.errors import status_of
from server.console.blueprint import bp, console_requires
from server.console.forms import ReassignForm
from server.console.ledgered_page import ledgered_body
from server.console.route_map import drawing
from server.console.vocabulary import translated_words
from server.domain.disclosure import DISPATCH_PLANNING
from server.domain.roles import DISPATCHER
from server.errors import DoorstepError, InvalidInput, VersionConflict
from server.services import console_pages, day_board, dispatch, views
from sync.visits import CHANGEABLE_STATUSES

REPLAN_PAGE = 200  # visits to plan again shown at once (the last 7 days, by default)


def business_day(text: str | None) -> date:
    if not text:
        return console_pages.business_today(runtime(), caller().now)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(_("A day is written YYYY-MM-DD."), field="day") from None


def _opened(text: str | None) -> day_board.Opened:
    """Which visits the board opens: an agent id, `all`, `others`, or none (counts only)."""
    if not text:
        return None
    if text in (day_board.OPEN_ALL, day_board.OPEN_OTHERS):
        return text
    if text.isascii() and text.isdigit() and len(text) < 12:
        return int(text)
    raise InvalidInput(_("Open an agent by id, or all, or others."), field="agent")


def _board(day: date, opened: day_board.Opened, *, problem: dict | None = None, status: int = 200):
    rt = runtime()
    body = ledgered_body(
        DayBoardSchema(),
        DISPATCH_PLANNING,
        lambda: day_board.day_board(get_db(), rt, caller(), day, opened),
    )
    agents = [(a["agent_id"], a["display_name"] or a["username"]) for a in body["agents"]]
    page = render_template(
        "console/board.html",
        board=body,
        day=day.isoformat(),
        opened=body["opened"] or "",
        agents=agents,
        problem=problem,
        changeable=CHANGEABLE_STATUSES,
        words=translated_words(),
        # Link prefixes built once, not per row.
        case_url=url_for("console.case", case_id=0).removesuffix("0"),
        visit_url=url_for("console.reassign", visit_id=0).removesuffix("0/reassign"),
    )
    return page, status


@bp.get("/board")
@console_requires(DISPATCHER)
def board():
    return _board(business_day(request.args.get("day")), _opened(request.args.get("agent")))


@bp.post("/visits/<int:visit_id>/reassign")
@console_requires(DISPATCHER)
def reassign(visit_id: int):
    form = ReassignForm()
    day, opened = business_day(form.day.data), _opened(form.open.data)
    if not form.validate():
        problem = {"visit_id": visit_id, "kind": "invalid", "message": _("Choose an agent.")}
        return _board(day, opened, problem=problem, status=422)
    try:
        dispatch.update_visit(
            get_db(),
            runtime(),
            caller(),
            visit_id,
            form.version.data,
            {"agent_id": form.agent_id.data},
        )
    except VersionConflict as exc:
        # Shown, not lost: the board is read again and says what happened.
        problem = {
            "visit_id": visit_id,
            "kind": "conflict",
            "message": _(
                "Visit %(visit)s was changed by someone else since you loaded this page "
                "(your version %(mine)s, now %(now)s). Nothing was saved: check the board "
                "below and try again.",
                visit=visit_id,
                mine=form.version.data,
                now=exc.details.get("current_version"),
            ),
        }
        if opened != day_board.OPEN_ALL:
            opened = day_board.agent_of(get_db(), visit_id)
        return _board(day, opened, problem=problem, status=409)
    except DoorstepError as exc:
        problem = {"visit_id": visit_id, "kind": exc.code, "message": exc.message}
        return _board(day, opened, problem=problem, status=status_of(exc))
    flash(_("Visit %(visit)s reassigned.", visit=visit_id), "success")
    return redirect(url_for("console.board", day=day.isoformat(), agent=form.open.data or None))


@bp.get("/cases/<int:case_id>")
@console_requires(DISPATCHER)
def case(case_id: int):
    rt = runtime()
    body = ledgered_body(
        CasePageSchema(),
        DISPATCH_PLANNING,
        lambda: console_pages.case_page(get_db(), rt, caller(), case_id),
    )
    return render_template("console/case.html", page=body)


@bp.get("/agents/<int:agent_id>/days/<string:day>/map")
@console_requires(DISPATCHER)
def route_map(agent_id: int, day: str):
    rt, when = runtime(), business_day(day)
    body = ledgered_body(
        RouteMapSchema(),
        DISPATCH_PLANNING,
        lambda: console_pages.route_map(get_db(), rt, caller(), agent_id, when),
    )
    visits = {v["id"]: v for v in body["visits"]}
    return render_template(
        "console/route_map.html",
        page=body,
        map=drawing(body, runtime().settings["CONSOLE_MAP_TILE_URL"]),
        visits=visits,
        proposed=False,
        problem=None,
    )


@bp.get("/replan")
@console_requires(DISPATCHER)
def replan():
    rt = runtime()
    page = ledgered_body(
        DispatchVisitPageSchema(),
        DISPATCH_PLANNING,
        lambda: views.replan_list(get_db(), rt, caller(), {}, 0, REPLAN_PAGE),
    )
    return render_template("console/replan.html", page=page, words=translated_words())
