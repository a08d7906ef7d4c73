"""What the web console's pages are rendered from: allow-lists like the API's responses, so
a page is built only from what its schema names, and the borrower facts it carries are
ledgered through the same declarations (server/console/ledgered_page.py)."""

from __future__ import annotations

from marshmallow import fields

from schemas.common import NestedOrNull, StrictSchema
from schemas.contacts import TimelineSchema
from schemas.disclosure import borrower_fact, borrower_subject
from schemas.routes import RouteSchema
from schemas.sync import DeviceHealthSchema
from schemas.visits import CaseSchema, DispatchVisitSchema, GeoSchema


class BoardBorrowerSchema(StrictSchema):
    """What the board shows of a borrower: the name (the card is built, and ledgered, by
    the same service as GET /visits; the page is rendered from this allow-list of it)."""

    borrower_id = fields.Int(metadata=borrower_subject("borrower"))
    case_id = fields.Int()
    display_name = fields.Str(metadata=borrower_fact("display_name"))


class BoardVisitSchema(StrictSchema):
    """A visit on the board: the plan, what happened at the door, the version to edit."""

    id = fields.Int(metadata=borrower_subject("visit"))
    case_id = fields.Int()
    case_external_id = fields.Str()
    agent_id = fields.Int(allow_none=True)
    window_start = fields.Str(allow_none=True)
    window_end = fields.Str(allow_none=True)
    route_order = fields.Int(allow_none=True)
    status = fields.Str()
    version = fields.Int()
    borrower = NestedOrNull(BoardBorrowerSchema)
    last_outcome = fields.Str(allow_none=True, metadata=borrower_fact("visit_outcome"))
    attempts = fields.Int()
    flags = fields.List(fields.Str(), metadata=borrower_fact("flag_details"))


class BoardAgentSchema(StrictSchema):
    agent_id = fields.Int()
    username = fields.Str()
    display_name = fields.Str(allow_none=True)
    badge_number = fields.Str(allow_none=True)
    home_lat = fields.Float(allow_none=True)
    home_lon = fields.Float(allow_none=True)
    devices = fields.List(fields.Nested(DeviceHealthSchema))
    # How many visits the agent has, by status: counts, not borrower facts.
    counts = fields.Dict(keys=fields.Str(), values=fields.Int())
    opened = fields.Bool()
    visits = fields.List(fields.Nested(BoardVisitSchema))


class BoardOthersSchema(StrictSchema):
    """Visits of nobody on the board (no agent, or an agent no longer active)."""

    counts = fields.Dict(keys=fields.Str(), values=fields.Int())
    visits = fields.List(fields.Nested(BoardVisitSchema))


class DayBoardSchema(StrictSchema):
    date = fields.Str()
    opened = fields.Str(allow_none=True)
    agents = fields.List(fields.Nested(BoardAgentSchema))
    others = fields.Nested(BoardOthersSchema)


class CasePageSchema(StrictSchema):
    case = fields.Nested(CaseSchema)
    timeline = fields.Nested(TimelineSchema)
    visits = fields.List(fields.Nested(DispatchVisitSchema))


class MapBorrowerSchema(StrictSchema):
    borrower_id = fields.Int(metadata=borrower_subject("borrower"))
    case_id = fields.Int()
    display_name = fields.Str(metadata=borrower_fact("display_name"))
    home_geo = NestedOrNull(GeoSchema, metadata=borrower_fact("home_geo"))


class MapVisitSchema(StrictSchema):
    id = fields.Int(metadata=borrower_subject("visit"))
    case_external_id = fields.Str()
    status = fields.Str()
    window_start = fields.Str(allow_none=True)
    window_end = fields.Str(allow_none=True)
    borrower = NestedOrNull(MapBorrowerSchema)


class RouteMapSchema(StrictSchema):
    """An agent's day drawn as a map: its home base (the agent's, not a borrower's), the
    route in its current order, and where each visit is."""

    agent_id = fields.Int()
    username = fields.Str()
    display_name = fields.Str(allow_none=True)
    day = fields.Str()
    home = NestedOrNull(GeoSchema)
    route = fields.Nested(RouteSchema)
    visits = fields.List(fields.Nested(MapVisitSchema))
