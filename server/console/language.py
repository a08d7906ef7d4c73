"""The console's language: English or Simplified Chinese, chosen once and remembered in a
cookie of its own (it outlives sign-out; it says nothing about anyone)."""

from __future__ import annotations

from flask import make_response, redirect, request, url_for

from server.console.blueprint import bp
from server.console.forms import LanguageForm

LOCALES = ("en", "zh_Hans")
COOKIE = "doorstep_lang"
_YEAR_S = 365 * 24 * 3600


def chosen_locale() -> str:
    """The remembered choice, else the browser's preference (any Chinese reads zh_Hans)."""
    remembered = request.cookies.get(COOKIE)
    if remembered in LOCALES:
        return remembered
    best = request.accept_languages.best_match(["en", "zh", "zh-CN", "zh-Hans", "zh-SG"])
    return "zh_Hans" if best and best.startswith("zh") else "en"


def safe_next(target: str | None) -> str:
    """Where to go after a form: a console path only (never another site)."""
    if target and target.startswith("/console/") and not target.startswith("/console//"):
        return target
    return url_for("console.home")


@bp.post("/language")
def set_language():
    form = LanguageForm()
    response = make_response(redirect(safe_next(form.next.data)))
    if form.validate_on_submit():
        response.set_cookie(
            COOKIE,
            form.lang.data,
            max_age=_YEAR_S,
            path="/console",
            httponly=True,
            samesite="Strict",
            secure=request.is_secure,
        )
    return response
