"""The HTTP API: one Blueprint per resource, registered on one flask-smorest Api."""

from __future__ import annotations

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
    ERROR_SCHEMA = ErrorSchema


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
