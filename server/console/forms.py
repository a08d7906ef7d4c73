"""The console's forms (WTForms through Flask-WTF: each carries the session's CSRF token).
They only read and check input; what an input means is decided by the services."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from flask import request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from marshmallow import Schema, ValidationError
from wtforms import HiddenField, IntegerField, PasswordField, StringField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, InputRequired, Length, NumberRange, Optional

from server.errors import InvalidInput
from server.services.flag_reviews import DISPOSITIONS


def read_filters(
    schema: Schema,
    names: Collection[str] | None = None,
    *,
    drop: Collection[str] = (),
    many: Collection[str] = (),
) -> dict[str, Any]:
    """A page's filters from the query string, read by the API's own query schema: blank
    fields left out, only `names` when given, never `drop`, each of `many` as a list; a bad
    one is a 422 naming it."""
    given: dict[str, Any] = {
        k: v
        for k, v in request.args.items()
        if v != "" and k not in drop and (names is None or k in names)
    }
    for name in many:
        values = [v for v in request.args.getlist(name) if v]
        if values:
            given[name] = values
    try:
        return schema.load(given)
    except ValidationError as exc:
        field = next(iter(exc.messages), None)
        raise InvalidInput(_("Check the filter: %(field)s", field=field), field=field) from None


class SignInForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=150)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])
    next = HiddenField()


class PlainForm(FlaskForm):
    """A button that only needs the CSRF token (sign out, take a checkpoint)."""


class CheckpointForm(FlaskForm):
    reason = StringField(_l("Reason"), validators=[Optional(), Length(max=200)])


class LanguageForm(FlaskForm):
    lang = StringField(_l("Language"), validators=[AnyOf(("en", "zh_Hans"))])
    next = HiddenField()


class ReassignForm(FlaskForm):
    agent_id = IntegerField(_l("Agent"), validators=[InputRequired()])
    version = IntegerField(validators=[InputRequired(), NumberRange(min=0)])
    day = HiddenField()
    open = HiddenField()  # the board's opened agent, to come back to


class AssignFlagForm(FlaskForm):
    assignee_id = IntegerField(_l("Reviewer"), validators=[InputRequired()])
    comment = TextAreaField(_l("Comment"), validators=[Optional(), Length(max=2000)])
    version = IntegerField(validators=[InputRequired(), NumberRange(min=0)])


class ResolveFlagForm(FlaskForm):
    disposition = StringField(_l("Disposition"), validators=[AnyOf(DISPOSITIONS)])
    comment = TextAreaField(_l("Comment"), validators=[DataRequired(), Length(max=2000)])
    version = IntegerField(validators=[InputRequired(), NumberRange(min=0)])


class ReopenFlagForm(FlaskForm):
    comment = TextAreaField(_l("Comment"), validators=[DataRequired(), Length(max=2000)])
    version = IntegerField(validators=[InputRequired(), NumberRange(min=0)])


class EvidencePackForm(FlaskForm):
    case_id = IntegerField(_l("Case id"), validators=[InputRequired(), NumberRange(min=1)])
    reason = StringField(_l("Legal matter"), validators=[DataRequired(), Length(max=500)])
