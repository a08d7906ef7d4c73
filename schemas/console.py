"""What the web console's pages are rendered from: allow-lists like the API's responses, so
a page is built only from what its schema names, and the borrower facts it carries are
ledgered through the same declarations (server/console/ledgered_page.py)."""

from __future__ import annotations

from marshmallow import fields

from schemas.common import StrictSchema
from schemas.contacts import TimelineSchema
from schemas.sync import DeviceHealthSchema
from schemas.visits import CaseSchema, DispatchVisitSchema


class BoardAgentSchema(StrictSchema):
    agent_id = fields.Int()
    username = fields.Str()
    display_name = fields.Str(allow_none=True)
    badge_number = fields.Str(allow_none=True)
    home_lat = fields.Float(allow_none=True)
    home_lon = fields.Float(allow_none=True)
    devices = fields.List(fields.Nested(DeviceHealthSchema))
    visits = fields.List(fields.Nested(DispatchVisitSchema))


class DayBoardSchema(StrictSchema):
    date = fields.Str()
    agents = fields.List(fields.Nested(BoardAgentSchema))
    unassigned = fields.List(fields.Nested(DispatchVisitSchema))


class CasePageSchema(StrictSchema):
    case = fields.Nested(CaseSchema)
    timeline = fields.Nested(TimelineSchema)
    visits = fields.List(fields.Nested(DispatchVisitSchema))
