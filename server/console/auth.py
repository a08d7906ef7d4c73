"""Signing in and out of the console, and the home page (the role's menu)."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from server.api.context import caller, get_db, runtime
from server.clock import to_iso
from server.console.blueprint import bp, console_requires
from server.console.forms import PlainForm, SignInForm
from server.console.language import safe_next
from server.console.menus import menu_for
from server.errors import Forbidden, InvalidCredentials, PasswordChangeRequired, RateLimited
from server.services import console_sessions
from server.services.console_sessions import CONSOLE_ROLES


def _refused(form: SignInForm, message: str, status: int, headers: dict | None = None):
    return render_template("console/sign_in.html", form=form, error=message), status, headers or {}


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    form = SignInForm()
    if request.method == "GET":
        form.next.data = request.args.get("next")
        return render_template("console/sign_in.html", form=form, error=None)
    db, rt = get_db(), runtime()
    if not form.validate_on_submit():
        # An unreadable attempt counts as a failure, as in the API (never a free guess).
        if form.username.data:
            try:
                console_sessions.count_refused(db, rt, caller(), form.username.data[:150])
            except RateLimited as exc:
                return _too_many(form, exc)
        return _refused(form, _("Enter your username and password."), 422)
    try:
        opened = console_sessions.sign_in(db, rt, caller(), form.username.data, form.password.data)
    except RateLimited as exc:
        return _too_many(form, exc)
    except InvalidCredentials:
        return _refused(form, _("Wrong username or password."), 401)
    except PasswordChangeRequired:
        return _refused(form, _("This password was handed to you: set your own first."), 403)
    except Forbidden:
        return _refused(form, _("Field agents use the phone app: the console is for staff."), 403)
    if session.get("sid"):  # signing in again in the same browser ends the earlier session
        console_sessions.sign_out(db, caller(), session["sid"], "replaced")
    session.clear()
    session["sid"] = opened["session_id"]
    session["seen"] = to_iso(g.now)
    return redirect(safe_next(form.next.data))


def _too_many(form: SignInForm, exc: RateLimited):
    wait = exc.details.get("retry_after", 1)
    message = _("Too many failed sign-ins: try again in %(seconds)s seconds.", seconds=wait)
    return _refused(form, message, 429, {"Retry-After": str(wait)})


@bp.post("/sign-out")
@console_requires(*CONSOLE_ROLES)
def sign_out():
    if PlainForm().validate_on_submit():
        console_sessions.sign_out(get_db(), caller(), session["sid"], "logout")
    session.clear()
    flash(_("You are signed out."), "info")
    return redirect(url_for("console.sign_in"))


@bp.get("/")
@console_requires(*CONSOLE_ROLES)
def home():
    menu = menu_for(g.principal.role)
    return render_template("console/home.html", menu=menu)
