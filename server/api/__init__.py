"""The HTTP API: one Blueprint per resource, registered on one flask-smorest Api."""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask
from flask_smorest import Api

from schemas.common import ErrorSchema
from server.api import (
    attachments,
    audit,
    audit_reports,
    auth,
    borrower_requests,
    cases,
    checkpoints,
    contacts,
    docs_assets,
    evidence,
    flag_reviews,
    health,
    payments,
    role_grants,
    routes,
    sync,
    users,
    visit_register,
    visits,
    watermelon,
)
from server.api.context import BEARER
from server.api.converters import CONVERTERS
from server.api.errors import register_error_handlers
from server.api.openapi_types import document_types


class DoorstepApi(Api):
    """flask-smorest's Api, whose OpenAPI document is written when it is first read.

    Registering a blueprint adds its routes at once; describing its views in the document
    (apispec turning every schema into JSON Schema, ~0.4 s for the whole API) waits until
    something reads `spec`: the /openapi.json and docs routes, `flask openapi`, wsgi.py
    before its workers fork, a test. An app that never serves its document (each test's
    own app) never pays for it. The document is the same either way: the blueprints are
    described in the order they were registered, after what register_api put there first."""

    ERROR_SCHEMA = ErrorSchema

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._undocumented: list[tuple[Any, str, Any]] = []
        # Two first requests for the document at once (threaded servers) write it once; a
        # read made while it is being written (flask-smorest reads `spec` as it describes a
        # view) is that same writer's, on the same thread.
        self._writing = threading.RLock()
        self._busy = False
        super().__init__(*args, **kwargs)

    @property  # type: ignore[override]
    def spec(self) -> Any:
        document = self.__dict__.get("_spec")
        if not self._undocumented or document is None:
            return document
        with self._writing:
            if self._busy:
                return document
            self._busy = True
            try:
                # A blueprint leaves the list only once described: if describing one fails,
                # every later read fails the same way instead of serving half a document.
                while self._undocumented:
                    blp, name, parameters = self._undocumented[0]
                    blp.register_views_in_doc(
                        self, self._app, document, name=name, parameters=parameters
                    )
                    document.tag({"name": name, "description": blp.description})
                    self._undocumented.pop(0)
            finally:
                self._busy = False
        return document

    @spec.setter
    def spec(self, document: Any) -> None:
        self.__dict__["_spec"] = document

    def register_blueprint(self, blp: Any, *, parameters: Any = None, **options: Any) -> None:
        """As flask-smorest's, with the blueprint's views described when `spec` is read."""
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)
        self._undocumented.append((blp, name, parameters))


def openapi_document(app: Flask) -> Any:
    """The app's OpenAPI document (apispec's APISpec), written now if nobody has read it yet."""
    return app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec


def register_api(app: Flask) -> Api:
    for name, (converter, _) in CONVERTERS.items():
        app.url_map.converters[name] = converter
    api = DoorstepApi(
        app,
        spec_kwargs={
            "info": {
                "description": "Field-visit companion backend: dispatch, minimized borrower "
                "cards, offline sync and the exposure ledger."
            },
        },
    )
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    api.spec.components.security_scheme(
        "deviceId",
        {
            "type": "apiKey",
            "in": "header",
            "name": "X-Device-Id",
            "description": "Agents only: the device_id their token was issued for at login "
            "(tokens are bound to one phone). Sent with the bearer token on every call.",
        },
    )
    api.spec.options["security"] = [dict(BEARER)]
    document_types(api)
    for converter, schema in CONVERTERS.values():
        api.register_converter(converter, schema)
    for module in (
        auth,
        users,
        role_grants,
        cases,
        borrower_requests,
        payments,
        contacts,
        visits,
        routes,
        visit_register,
        sync,
        watermelon,
        flag_reviews,
        attachments,
        audit,
        audit_reports,
        checkpoints,
        evidence,
        health,
    ):
        api.register_blueprint(module.blp)
    app.register_blueprint(docs_assets.blp)
    register_error_handlers(app)
    return api
