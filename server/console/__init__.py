"""The web console: server-rendered pages for dispatchers, supervisors and privacy officers.

The pages call the same services as the JSON API and render what those return; every page
that shows borrower facts dumps them through a response schema inside the API's ledger
transaction (ledgered_page.py), so the console ledgers exactly what the API would. No
script is needed; the stylesheet is served by the app (no CDN).
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect

from server.keys import derive_key

TRANSLATIONS = Path(__file__).resolve().parents[1] / "translations"
csrf = CSRFProtect()


def register_console(app: Flask) -> None:
    """Mount /console: signed session cookie, CSRF on its forms, translations."""
    # Importing the page modules adds their views to the blueprint.
    from server.console import auth, dispatch, planning, privacy, supervise  # noqa: F401
    from server.console.blueprint import bp
    from server.console.language import chosen_locale
    from server.console.map_tiles import check_tile_url

    rt = app.extensions["doorstep"]
    settings = rt.settings
    app.config.update(
        # The one origin route maps may load images from, besides the app (None: none).
        CONSOLE_TILE_ORIGIN=check_tile_url(settings["CONSOLE_MAP_TILE_URL"]),
        # Signs the session cookie; derived from the server key, so every worker agrees.
        SECRET_KEY=derive_key(rt.keys, b"doorstep-console-session-v1"),
        SESSION_COOKIE_NAME="doorstep_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=settings["DOORSTEP_ENV"] != "development",
        SESSION_COOKIE_PATH="/console",
        # The API's JSON endpoints authenticate with bearer tokens, not cookies: only the
        # console's forms are checked (console/blueprint.py), never an API POST.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the signed-in session
        WTF_CSRF_SSL_STRICT=settings["DOORSTEP_ENV"] != "development",
        BABEL_TRANSLATION_DIRECTORIES=str(TRANSLATIONS),
        BABEL_DEFAULT_LOCALE="en",
        BABEL_DEFAULT_TIMEZONE=settings["DEFAULT_TIME_ZONE"],
    )
    csrf.init_app(app)
    Babel(app, locale_selector=chosen_locale)
    app.register_blueprint(bp)
