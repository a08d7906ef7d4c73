"""Routes and assignments: options in, proposals out.

Every distance and time in these answers is derived from borrowers' homes: dispatchers only,
and each stop's facts are ledgered for its borrower (x-borrower-fact).
"""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from schemas.common import StrictSchema, aware_datetime, json_int
from schemas.disclosure import borrower_fact, borrower_subject
from schemas.visits import FindingSchema, PlainVisitSchema, VersionedIdSchema

START_KINDS = ("home", "depot", "last_position")


class _RouteOptions(StrictSchema):
    start = fields.Str(
        validate=validate.OneOf(START_KINDS),
        metadata={
            "description": "where the agent sets off: its home base (default), the depot "
            "(DOORSTEP_ROUTE_DEPOT) or its last reported position (mid-day re-plan)"
        },
    )
    start_time = aware_datetime(
        metadata={"description": "default: now on today, else the start of the agent's day"}
    )
    end_time = aware_datetime(
        metadata={"description": "when the agent's day must be over; default: the setting"}
    )
    speed_kmh = fields.Float(validate=validate.Range(min=1, max=150))
    service_s = fields.Int(validate=validate.Range(min=0, max=4 * 3600))

    @validates_schema
    def _times_in_order(self, data: dict, **_kwargs: object) -> None:
        start, end = data.get("start_time"), data.get("end_time")
        if start and end and end <= start:
            raise ValidationError("end_time must be after start_time", "end_time")


class RouteQueryArgsSchema(_RouteOptions):
    pass


_ARRIVAL = "route_arrival"


class StopPlanSchema(StrictSchema):
    """One stop: its leg runs from the previous home (or the start) to this one."""

    visit_id = fields.Int(metadata=borrower_subject("visit"))
    arrival = aware_datetime(
        metadata=borrower_fact(
            _ARRIVAL, description="when the visit begins (inside its window and the law)"
        )
    )
    departure = aware_datetime(metadata=borrower_fact(_ARRIVAL))
    wait_s = fields.Int(
        metadata=borrower_fact(_ARRIVAL, description="idle time before this arrival")
    )
    travel_s = fields.Int(metadata=borrower_fact("route_leg_distance"))
    leg_distance_m = fields.Int(metadata=borrower_fact("route_leg_distance"))
    window_violation_s = fields.Int(
        metadata=borrower_fact(_ARRIVAL, description="hand-made orders only")
    )
    problems = fields.List(
        fields.Str(),
        metadata=borrower_fact(
            _ARRIVAL,
            description="hand-made orders only: late_for_window, outside_lawful_hours, "
            "beyond_agent_hours",
        ),
    )


class UnscheduledSchema(StrictSchema):
    visit_id = fields.Int(metadata=borrower_subject("visit"))
    version = fields.Int()
    reason = fields.Str(
        metadata=borrower_fact(
            _ARRIVAL,
            description="no_location | unknown_time_zone | outside_lawful_hours | "
            "window_unreachable | beyond_agent_hours | day_full | team_full | already_reported",
        )
    )


class RouteStartSchema(StrictSchema):
    kind = fields.Str()
    time = aware_datetime()
    end_time = aware_datetime()
    reported_at = fields.Str(
        metadata=borrower_fact("route_start", description="last_position: when the fix was taken")
    )
    visit_id = fields.Int(
        metadata=borrower_subject("visit", description="last_position: the report it came from")
    )


class RouteSchema(StrictSchema):
    """`done`, `unlocated` and the totals sum up what the stops, the unscheduled visits and
    the start say, which are ledgered per borrower where they appear."""

    order = fields.List(
        fields.Nested(VersionedIdSchema),
        metadata={"description": "done, then scheduled, then unscheduled: PUT it to .../order"},
    )
    stops = fields.List(fields.Nested(StopPlanSchema))
    unscheduled = fields.List(fields.Nested(UnscheduledSchema))
    done = fields.List(fields.Int(), metadata={"description": "visits already reported"})
    unlocated = fields.List(fields.Int())
    total_distance_m = fields.Int()
    total_duration_s = fields.Int()
    late_stops = fields.Int()
    start = fields.Nested(RouteStartSchema)
    speed_kmh = fields.Float()
    service_s = fields.Int()


class AssignmentProposalRequestSchema(_RouteOptions):
    agent_ids = fields.List(json_int(), validate=validate.Length(min=1, max=200))
    region = fields.Str(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "the team: every active agent of this region"},
    )
    visit_ids = fields.List(
        json_int(),
        validate=validate.Length(min=1, max=2000),
        metadata={"description": "default: the day's planned visits that no agent holds"},
    )

    @validates_schema
    def _one_team(self, data: dict, **_kwargs: object) -> None:
        if data.get("agent_ids") and data.get("region"):
            raise ValidationError("give agent_ids or region, not both", "region")


class AcceptItemSchema(StrictSchema):
    id = json_int(required=True)
    version = json_int(required=True)
    agent_id = json_int(required=True)
    route_order = json_int(allow_none=True, validate=validate.Range(min=1, max=10_000))


class AssignmentAcceptSchema(StrictSchema):
    visits = fields.List(
        fields.Nested(AcceptItemSchema), required=True, validate=validate.Length(min=1, max=2000)
    )


class AgentRouteSchema(StrictSchema):
    agent_id = fields.Int()
    start = fields.Nested(RouteStartSchema)
    order = fields.List(fields.Nested(VersionedIdSchema))
    new_visits = fields.List(fields.Int())
    stops = fields.List(fields.Nested(StopPlanSchema))
    unscheduled = fields.List(fields.Nested(UnscheduledSchema))
    total_distance_m = fields.Int()
    total_duration_s = fields.Int()


class SkippedAgentSchema(StrictSchema):
    agent_id = fields.Int()
    reason = fields.Str(metadata={"description": "no_home_base | no_depot | no_position"})


class AssignmentProposalSchema(StrictSchema):
    day = fields.Date()
    agents = fields.List(fields.Nested(AgentRouteSchema))
    unassigned = fields.List(fields.Nested(UnscheduledSchema))
    skipped_agents = fields.List(fields.Nested(SkippedAgentSchema))
    capacity = fields.Int(allow_none=True, metadata={"description": "most visits per agent"})
    total_distance_m = fields.Int()
    speed_kmh = fields.Float()
    service_s = fields.Int()
    accept = fields.Nested(
        AssignmentAcceptSchema,
        metadata={"description": "the body to POST to .../assignment, as is or edited"},
    )


class AssignmentWarningSchema(FindingSchema):
    visit_id = fields.Int()


class AssignmentResultSchema(StrictSchema):
    visits = fields.List(fields.Nested(PlainVisitSchema))
    warnings = fields.List(fields.Nested(AssignmentWarningSchema))
