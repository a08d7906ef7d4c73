"""Swagger UI served by the app itself, so the interactive docs work without internet access.

The page is flask-smorest's (`OPENAPI_SWAGGER_UI_PATH`); its scripts and stylesheet come from
the pinned `flask-swagger-ui` package (see requirements.txt), never from a CDN. These routes
are plain Flask, not part of the OpenAPI document.
"""

from __future__ import annotations

from importlib import resources

from flask import Blueprint, abort, redirect, send_from_directory, url_for
from werkzeug.wrappers import Response

DOCS_PATH = "/api/v1/docs"
ASSETS_URL = f"{DOCS_PATH}/assets/"
# Exactly what flask-smorest's page loads; nothing else of the package is published.
ASSET_FILES = frozenset(
    {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"}
)
# The file names carry no version, so a browser keeps them only briefly after an upgrade.
ASSET_MAX_AGE_S = 3600

blp = Blueprint("docs_assets", __name__)


@blp.get(f"{DOCS_PATH}/")
def docs_with_trailing_slash() -> Response:
    return redirect(url_for("api-docs.openapi_swagger_ui"), code=308)


@blp.get(f"{ASSETS_URL}<string:filename>")
def swagger_ui_asset(filename: str) -> Response:
    if filename not in ASSET_FILES:
        abort(404)
    dist = resources.files("flask_swagger_ui") / "dist"
    return send_from_directory(str(dist), filename, max_age=ASSET_MAX_AGE_S)
