"""The console blueprint, its sign-in check (with idle timeout) and its error pages."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError

from server.api.context import caller, get_db, runtime
from server.api.errors import status_of
from server.clock import to_iso
from server.errors import DoorstepError, Forbidden, NotAuthenticated
from server.services import console_sessions

bp = Blueprint("console", __name__, url_prefix="/console", static_folder="static")

# Pages a visitor reaches without signing in (the role-matrix test reads this).
PUBLIC_ENDPOINTS = {"console.sign_in", "console.static", "console.set_language"}


@bp.before_request
def _check_csrf() -> None:
    """Every form post carries the session's CSRF token (Flask-WTF), signed in or not."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        from server.console import csrf

        csrf.protect()


@bp.after_request
def _page_headers(response):
    # Pages load only their own stylesheet and script (the board's drag-and-drop, no
    # inline script); forms post only here; no framing.
    # A bank's own tile server (CONSOLE_MAP_TILE_URL) is the one other image origin.
    tiles = current_app.config.get("CONSOLE_TILE_ORIGIN")
    images = f"'self' data: {tiles}" if tiles else "'self' data:"
    response.headers.setdefault(
        "Content-Security-Policy",
        f"default-src 'none'; script-src 'self'; style-src 'self'; img-src {images}; "
        "form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'",
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _signed_in() -> None:
    """Load the signed-in staff member into g.principal, or raise NotAuthenticated; a session
    quiet for longer than CONSOLE_IDLE_TIMEOUT_S is ended here."""
    session_id = session.get("sid")
    if not session_id:
        raise NotAuthenticated("sign in")
    db, rt = get_db(), runtime()
    if console_sessions.is_idle(session.get("seen"), g.now, rt.settings["CONSOLE_IDLE_TIMEOUT_S"]):
        console_sessions.sign_out(db, caller(), session_id, "idle_timeout")
        session.clear()
        raise NotAuthenticated(_("You were signed out after a period of inactivity."))
    g.principal = console_sessions.principal(db, session_id)
    session["seen"] = to_iso(g.now)


def console_requires(*roles: str) -> Callable:
    """A console page for these roles: a signed-in session, then the role."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            _signed_in()
            if g.principal.role not in roles:
                raise Forbidden(_("Your role may not open this page."))
            return view(*args, **kwargs)

        wrapper._console_roles = roles  # read by the console role-matrix test
        return wrapper

    return decorator


@bp.errorhandler(NotAuthenticated)
def _to_sign_in(exc: NotAuthenticated):
    if exc.message != "sign in":
        flash(exc.message, "info")
    return redirect(
        url_for("console.sign_in", next=request.full_path if request.method == "GET" else None)
    )


@bp.errorhandler(DoorstepError)
def _error_page(exc: DoorstepError):
    return render_template("console/error.html", error=exc), status_of(exc)


@bp.errorhandler(CSRFError)
def _csrf_refused(exc: CSRFError):
    error = DoorstepError(
        _("This form expired or did not come from this console: reload and try again.")
    )
    error.code = "csrf_failed"
    return render_template("console/error.html", error=error), 400


@bp.app_template_filter("dash")
def _dash(value: Any) -> Any:
    """A missing value, shown as a dash."""
    return "—" if value is None or value == "" or value == [] else value


@bp.context_processor
def _page_context() -> dict[str, Any]:
    from flask_babel import get_locale

    from server.console.forms import LanguageForm, PlainForm
    from server.console.menus import menu_for

    who = g.get("principal")
    return {
        "principal": who,
        "menu": menu_for(who.role) if who else (),
        "locale": str(get_locale()),
        "language_form": LanguageForm(),
        "sign_out_form": PlainForm(),
    }
