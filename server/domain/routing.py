"""The rules of an agent's day on the road: when each visit may lawfully begin, which stops
can be served at all, in which order, and by which agent.

Pure functions over plain values: no clock, no database. The solver (server/domain/
route_solver.py) only searches for good orders; every order it returns is walked again here
and a stop that would begin outside its window or the lawful hours, or end after the agent's
day, is taken out and reported as unscheduled. So the guarantee lives in this module:

- a visit begins (`arrival`, the knock on the door) inside the visit's own window, the window
  the borrower was told about (the same moment `outside_planned_window` reads);
- it begins and ends (`departure`) inside the lawful visiting hours of the compliance policy,
  in the borrower's own time zone (the same span `outside_visit_hours` reads);
- it ends no later than the agent's day.

Distances are great-circle (sync.geo.haversine_m) times a road factor, in whole metres;
travel times are that distance at an average speed, rounded up to whole seconds. Routes are
open: the day ends at the last visit, not back at the start.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server.domain import route_solver
from sync.geo import haversine_m

DEFAULT_SPEED_KMH = 25.0
DEFAULT_SERVICE_S = 20 * 60
DEFAULT_ROAD_FACTOR = 1.3

# Why a stop was left out of a proposal; stable codes, part of the API.
NO_LOCATION = "no_location"  # the borrower's home has no usable coordinates
UNKNOWN_TIME_ZONE = "unknown_time_zone"  # the borrower's time zone is not a known zone
OUTSIDE_LAWFUL_HOURS = "outside_lawful_hours"  # the window leaves no lawful time for a visit
WINDOW_UNREACHABLE = "window_unreachable"  # the window closes before the agent can be there
BEYOND_AGENT_HOURS = "beyond_agent_hours"  # the visit would end after the agent's day
DAY_FULL = "day_full"  # reachable on its own, but not together with the other stops
TEAM_FULL = "team_full"  # every agent that could take it already has its even share
UNSCHEDULED_REASONS = (
    NO_LOCATION,
    UNKNOWN_TIME_ZONE,
    OUTSIDE_LAWFUL_HOURS,
    WINDOW_UNREACHABLE,
    BEYOND_AGENT_HOURS,
    DAY_FULL,
    TEAM_FULL,
)

# What is wrong with a stop in an order the dispatcher set by hand (evaluations only).
LATE_FOR_WINDOW = "late_for_window"
OUTSIDE_HOURS = "outside_lawful_hours"
AFTER_AGENT_HOURS = "beyond_agent_hours"

Point = tuple[float, float]


@dataclass(frozen=True)
class VisitingHours:
    """The lawful visiting hours, borrower's local time (the compliance policy's window)."""

    start: time
    end: time


@dataclass(frozen=True)
class TravelModel:
    """How fast the agent moves, how long a visit takes, and road distance vs. straight line."""

    speed_kmh: float = DEFAULT_SPEED_KMH
    service_s: int = DEFAULT_SERVICE_S
    road_factor: float = DEFAULT_ROAD_FACTOR

    def __post_init__(self) -> None:
        if not (math.isfinite(self.speed_kmh) and self.speed_kmh > 0):
            raise ValueError("speed_kmh must be positive")
        if self.service_s < 0:
            raise ValueError("service_s must not be negative")
        if not (math.isfinite(self.road_factor) and self.road_factor > 0):
            raise ValueError("road_factor must be positive")

    def leg(self, a: Point, b: Point) -> tuple[int, int]:
        """Road metres and whole travel seconds (rounded up) from a to b."""
        metres = round(haversine_m(a[0], a[1], b[0], b[1]) * self.road_factor)
        return metres, math.ceil(metres * 3.6 / self.speed_kmh)


@dataclass(frozen=True)
class Stop:
    """A visit to place in a day: the borrower's home, its time zone, the visit's window."""

    visit_id: int
    lat: float | None
    lon: float | None
    time_zone: str
    window_start: time | None = None
    window_end: time | None = None
    # The borrower's own lawful hours when a recorded out-of-hours consent widens the
    # policy's for this day (consented_hours); None: the policy's.
    lawful: VisitingHours | None = None


@dataclass(frozen=True)
class Shift:
    """Where and when one agent sets off, and when its day must be over."""

    agent_id: int
    start: Point
    start_time: datetime
    end_time: datetime


@dataclass(frozen=True)
class SolverBudget:
    """How long the solver may search: iterations, a wall-clock cap, and its seed."""

    iterations: int = 300
    max_seconds: float = 0.8
    seed: int = 1


@dataclass(frozen=True)
class ScheduledStop:
    """One visit of a route: when it begins and ends, the leg that leads to it."""

    visit_id: int
    arrival: datetime
    departure: datetime
    wait_s: int
    travel_s: int
    leg_distance_m: int
    window_violation_s: int = 0
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class UnscheduledStop:
    """A stop left out of a proposal, with the reason code."""

    visit_id: int
    reason: str


@dataclass(frozen=True)
class RouteProposal:
    """An ordered day: scheduled stops with their times, then the stops left out."""

    stops: tuple[ScheduledStop, ...]
    unscheduled: tuple[UnscheduledStop, ...]
    total_distance_m: int
    total_duration_s: int

    @property
    def order(self) -> tuple[int, ...]:
        """Every stop: the scheduled ones in route order, then those left out."""
        return tuple(s.visit_id for s in self.stops) + tuple(u.visit_id for u in self.unscheduled)

    @property
    def late_stops(self) -> int:
        """Stops with a problem (only an evaluated hand-made order can have any)."""
        return sum(1 for s in self.stops if s.problems)


@dataclass(frozen=True)
class AgentRoute:
    """One agent's proposed day within an assignment."""

    agent_id: int
    route: RouteProposal
    new_visits: tuple[int, ...]


@dataclass(frozen=True)
class AssignmentProposal:
    """A day's visits spread over agents, and those no agent can lawfully take."""

    routes: tuple[AgentRoute, ...]
    unassigned: tuple[UnscheduledStop, ...]
    capacity: int | None = None


@dataclass(frozen=True)
class _Bounds:
    """When a stop may begin, in POSIX seconds: from opens, until latest; None if never."""

    opens: int
    window_close: int | None
    lawful_close: int

    @property
    def latest(self) -> int:
        """The latest lawful beginning inside the window."""
        if self.window_close is None:
            return self.lawful_close
        return min(self.window_close, self.lawful_close)


@dataclass
class _Problem:
    """Points (shift starts first, then located stops) with their leg matrices."""

    shifts: tuple[Shift, ...]
    stops: tuple[Stop, ...]
    bounds: tuple[_Bounds, ...]
    dist: list[list[int]]
    travel: list[list[int]]
    service_s: int
    left_out: list[UnscheduledStop] = field(default_factory=list)

    def node(self, stop_index: int) -> int:
        """The matrix row of a stop."""
        return len(self.shifts) + stop_index


_DAY_END = time(23, 59, 59)


def consented_hours(
    hours: VisitingHours, windows: Sequence[tuple[time | None, time | None]]
) -> VisitingHours:
    """The lawful hours of a day widened by the consent windows in force all that day (local
    times; a window may run past midnight, None for any hour). A solver takes one span per
    visit, so a window is joined only where it touches or overlaps the span: a consent for
    21:00-23:00 on top of 08:00-21:00 gives 08:00-23:00; one for 02:00-04:00 adds nothing."""
    pieces: list[tuple[time, time]] = []
    for window_start, window_end in windows:
        if window_start is None or window_end is None:
            return VisitingHours(time(0, 0), _DAY_END)
        if window_start <= window_end:
            pieces.append((window_start, window_end))
        else:  # past midnight: the evening and the early morning of the same day
            pieces += [(window_start, _DAY_END), (time(0, 0), window_end)]
    start, end = hours.start, hours.end
    changed = True
    while changed:  # a piece joined may bring another within reach
        changed = False
        for piece_start, piece_end in pieces:
            touches = piece_start <= end and piece_end >= start
            if touches and (piece_start < start or piece_end > end):
                start, end = min(start, piece_start), max(end, piece_end)
                changed = True
    return VisitingHours(start, end)


def stop_bounds(
    stop: Stop, day: date, hours: VisitingHours, service_s: int
) -> tuple[datetime, datetime | None, datetime] | str:
    """When a visit may begin on day: (opens, window closes, lawful latest), or a reason."""
    try:
        zone = ZoneInfo(stop.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return UNKNOWN_TIME_ZONE
    hours = stop.lawful or hours
    lawful_open = datetime.combine(day, hours.start, zone)
    lawful_latest = datetime.combine(day, hours.end, zone) - timedelta(seconds=service_s)
    opens = lawful_open
    if stop.window_start is not None:
        opens = max(opens, datetime.combine(day, stop.window_start, zone))
    window_close = None
    if stop.window_end is not None:
        window_close = datetime.combine(day, stop.window_end, zone)
    latest = lawful_latest if window_close is None else min(window_close, lawful_latest)
    if latest < opens:
        return OUTSIDE_LAWFUL_HOURS
    return opens, window_close, lawful_latest


def propose_route(
    shift: Shift,
    stops: Sequence[Stop],
    day: date,
    hours: VisitingHours,
    travel: TravelModel = TravelModel(),
    budget: SolverBudget = SolverBudget(),
) -> RouteProposal:
    """The shortest lawful order the solver finds; stops it cannot fit come back unscheduled."""
    walked, left, _ = _propose([shift], stops, day, hours, travel, budget, {}, None)
    return _proposal(shift, walked[0], left)


def propose_assignment(
    shifts: Sequence[Shift],
    stops: Sequence[Stop],
    day: date,
    hours: VisitingHours,
    travel: TravelModel = TravelModel(),
    budget: SolverBudget = SolverBudget(),
    *,
    pinned: dict[int, int] | None = None,
    balance_slack: int | None = None,
) -> AssignmentProposal:
    """Spread stops over the shifts' agents, each day lawful and within the agent's hours.

    pinned maps visit ids to the agent that keeps them; balance_slack caps every agent at the
    even share plus that many visits (None: no cap).
    """
    pinned = dict(pinned or {})
    agent_ids = [s.agent_id for s in shifts]
    if len(set(agent_ids)) != len(agent_ids):
        raise ValueError("agent_id values must be unique")
    stray = set(pinned.values()) - set(agent_ids)
    if stray:
        raise ValueError(f"visits pinned to agents without a shift: {sorted(stray)}")
    walked, left, capacity = _propose(
        shifts, stops, day, hours, travel, budget, pinned, balance_slack
    )
    routes = []
    for shift, route in zip(shifts, walked, strict=True):
        kept = [u for u in left if pinned.get(u.visit_id) == shift.agent_id]
        new = tuple(s.visit_id for s in route if pinned.get(s.visit_id) != shift.agent_id)
        routes.append(AgentRoute(shift.agent_id, _proposal(shift, route, kept), new))
    unassigned = tuple(u for u in left if u.visit_id not in pinned)
    return AssignmentProposal(tuple(routes), unassigned, capacity)


def _propose(
    shifts: Sequence[Shift],
    stops: Sequence[Stop],
    day: date,
    hours: VisitingHours,
    travel: TravelModel,
    budget: SolverBudget,
    pinned: dict[int, int],
    balance_slack: int | None,
) -> tuple[list[list[ScheduledStop]], list[UnscheduledStop], int | None]:
    """Each shift's lawful schedule, every stop left out with its reason, and the cap used."""
    problem = _build(shifts, stops, day, hours, travel)
    capacity = _capacity(len(problem.stops), len(shifts), balance_slack)
    jobs, unreachable = _jobs(problem, pinned)
    orders = _solve(problem, jobs, pinned, capacity, budget)
    served: set[int] = set()
    walked = []
    for vehicle, order in enumerate(orders):
        route, dropped = _walk(problem, vehicle, order, drop=True)
        kept = [index for index in order if index not in dropped]
        over = _over_cap(problem, vehicle, kept, pinned, capacity)
        if over:
            unreachable.update((index, TEAM_FULL) for index in over)
            kept = [index for index in kept if index not in over]
            route = _walk(problem, vehicle, kept, drop=True)[0]
        served.update(kept)
        walked.append(route)
    missing = [
        UnscheduledStop(stop.visit_id, unreachable.get(index, DAY_FULL))
        for index, stop in enumerate(problem.stops)
        if index not in served
    ]
    return walked, problem.left_out + missing, capacity


def _over_cap(
    problem: _Problem, vehicle: int, kept: list[int], pinned: dict[int, int], capacity: int | None
) -> set[int]:
    """The newly given stops, last first, that take an agent beyond its share."""
    if capacity is None:
        return set()
    agent = problem.shifts[vehicle].agent_id
    new = [i for i in kept if pinned.get(problem.stops[i].visit_id) != agent]
    allowed = max(capacity, len(kept) - len(new))
    excess = len(kept) - allowed
    return set(new[len(new) - excess :]) if excess > 0 else set()


def evaluate_order(
    shift: Shift,
    stops_in_order: Sequence[Stop],
    day: date,
    hours: VisitingHours,
    travel: TravelModel = TravelModel(),
) -> RouteProposal:
    """Times of a hand-made order, kept as given; each stop names what is wrong with it."""
    problem = _build([shift], stops_in_order, day, hours, travel, keep_unlawful=True)
    index_of = {stop.visit_id: i for i, stop in enumerate(problem.stops)}
    sequence = [index_of[s.visit_id] for s in stops_in_order if s.visit_id in index_of]
    route = _walk(problem, 0, sequence, drop=False)[0]
    return _proposal(shift, route, problem.left_out)


def _require_aware(value: datetime, name: str) -> None:
    """Reject naive datetimes: a wall-clock time without a zone cannot be compared safely."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def _valid_point(lat: float | None, lon: float | None) -> bool:
    """True for a finite latitude/longitude pair inside the WGS-84 ranges."""
    if lat is None or lon is None or not (math.isfinite(lat) and math.isfinite(lon)):
        return False
    return -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0


def _validate(shifts: Sequence[Shift], stops: Sequence[Stop]) -> None:
    """Raise ValueError for inputs no route can be computed from."""
    for shift in shifts:
        if not _valid_point(*shift.start):
            raise ValueError("start must be a valid (lat, lon) pair")
        _require_aware(shift.start_time, "start_time")
        _require_aware(shift.end_time, "end_time")
    ids = [stop.visit_id for stop in stops]
    if len(set(ids)) != len(ids):
        raise ValueError("visit_id values must be unique")
    for stop in stops:
        if stop.window_start and stop.window_end and stop.window_end <= stop.window_start:
            raise ValueError(f"window of visit {stop.visit_id} ends before it starts")


def _seconds_up(moment: datetime) -> int:
    """POSIX seconds, rounded up: a bound that opens is never reached early."""
    return math.ceil(moment.timestamp())


def _seconds_down(moment: datetime) -> int:
    """POSIX seconds, rounded down: a bound that closes is never overrun."""
    return math.floor(moment.timestamp())


def _build(
    shifts: Sequence[Shift],
    stops: Sequence[Stop],
    day: date,
    hours: VisitingHours,
    travel: TravelModel,
    *,
    keep_unlawful: bool = False,
) -> _Problem:
    """Validate, set unusable stops aside with their reason, and compute the leg matrices."""
    _validate(shifts, stops)
    left_out: list[UnscheduledStop] = []
    kept: list[tuple[Stop, _Bounds]] = []
    for stop in stops:
        if not _valid_point(stop.lat, stop.lon):
            left_out.append(UnscheduledStop(stop.visit_id, NO_LOCATION))
            continue
        bounds = stop_bounds(stop, day, hours, travel.service_s)
        if bounds == OUTSIDE_LAWFUL_HOURS and keep_unlawful:
            bounds = _unlawful_bounds(stop, day, hours, travel.service_s)
        if isinstance(bounds, str):
            left_out.append(UnscheduledStop(stop.visit_id, bounds))
            continue
        opens, window_close, lawful_latest = bounds
        kept.append(
            (
                stop,
                _Bounds(
                    _seconds_up(opens),
                    None if window_close is None else _seconds_down(window_close),
                    _seconds_down(lawful_latest),
                ),
            )
        )
    points = [s.start for s in shifts] + [(s.lat, s.lon) for s, _ in kept]
    dist = [[0] * len(points) for _ in points]
    secs = [[0] * len(points) for _ in points]
    for i, a in enumerate(points):
        for j in range(i + 1, len(points)):
            metres, seconds = travel.leg(a, points[j])  # type: ignore[arg-type]
            dist[i][j] = dist[j][i] = metres
            secs[i][j] = secs[j][i] = seconds
    return _Problem(
        shifts=tuple(shifts),
        stops=tuple(s for s, _ in kept),
        bounds=tuple(b for _, b in kept),
        dist=dist,
        travel=secs,
        service_s=travel.service_s,
        left_out=left_out,
    )


def _unlawful_bounds(
    stop: Stop, day: date, hours: VisitingHours, service_s: int
) -> tuple[datetime, datetime | None, datetime] | str:
    """Bounds of a stop no lawful visit fits, so a hand-made order can still be timed."""
    zone = ZoneInfo(stop.time_zone)
    hours = stop.lawful or hours
    opens = datetime.combine(day, hours.start, zone)
    if stop.window_start is not None:
        opens = max(opens, datetime.combine(day, stop.window_start, zone))
    close = None if stop.window_end is None else datetime.combine(day, stop.window_end, zone)
    return opens, close, datetime.combine(day, hours.end, zone) - timedelta(seconds=service_s)


def _capacity(stops: int, agents: int, slack: int | None) -> int | None:
    """The most visits one agent may get: the even share plus the slack."""
    if slack is None or agents < 2:
        return None
    return math.ceil(stops / agents) + slack


def _alone(problem: _Problem, vehicle: int, index: int) -> str | None:
    """Why the agent could not serve this stop even with nothing else to do, or None."""
    shift = problem.shifts[vehicle]
    bounds = problem.bounds[index]
    reach = _seconds_up(shift.start_time) + problem.travel[vehicle][problem.node(index)]
    begin = max(reach, bounds.opens)
    if begin > bounds.latest:
        return WINDOW_UNREACHABLE
    if begin + problem.service_s > _seconds_down(shift.end_time):
        return BEYOND_AGENT_HOURS
    return None


def _jobs(problem: _Problem, pinned: dict[int, int]) -> tuple[list[int], dict[int, str]]:
    """Stops some allowed agent could serve alone, and the reasons of those none could."""
    vehicle_of = {shift.agent_id: v for v, shift in enumerate(problem.shifts)}
    jobs: list[int] = []
    unreachable: dict[int, str] = {}
    for index, stop in enumerate(problem.stops):
        owner = pinned.get(stop.visit_id)
        vehicles = [vehicle_of[owner]] if owner is not None else range(len(problem.shifts))
        reasons = [_alone(problem, v, index) for v in vehicles]
        if any(reason is None for reason in reasons):
            jobs.append(index)
        else:
            # The agent's hours are the nearer obstacle to report when that was the one.
            unreachable[index] = min(
                (r for r in reasons if r), key=(BEYOND_AGENT_HOURS, WINDOW_UNREACHABLE).index
            )
    return jobs, unreachable


def _solve(
    problem: _Problem,
    jobs: list[int],
    pinned: dict[int, int],
    capacity: int | None,
    budget: SolverBudget,
) -> list[list[int]]:
    """Each agent's stop indices in order, as the solver proposes them."""
    if not jobs:
        return [[] for _ in problem.shifts]
    base = min(_seconds_up(s.start_time) for s in problem.shifts)
    vehicle_of = {shift.agent_id: v for v, shift in enumerate(problem.shifts)}
    own = Counter(pinned.get(problem.stops[index].visit_id) for index in jobs)
    vehicles = [
        route_solver.Vehicle(
            start_node=v,
            start_s=_seconds_up(shift.start_time) - base,
            end_s=max(0, _seconds_down(shift.end_time) - base),
            # An agent that already holds more than the share keeps all of its own visits.
            capacity=None if capacity is None else max(capacity, own[shift.agent_id]),
        )
        for v, shift in enumerate(problem.shifts)
    ]
    solver_jobs = []
    for index in jobs:
        bounds = problem.bounds[index]
        owner = pinned.get(problem.stops[index].visit_id)
        solver_jobs.append(
            route_solver.Job(
                node=problem.node(index),
                opens_s=max(0, bounds.opens - base),
                closes_s=max(0, bounds.latest - base),
                service_s=problem.service_s,
                vehicle=None if owner is None else vehicle_of[owner],
            )
        )
    solved = route_solver.solve(
        route_solver.SolverProblem(problem.dist, problem.travel, vehicles, solver_jobs),
        iterations=budget.iterations,
        max_seconds=budget.max_seconds,
        seed=budget.seed,
    )
    return [[jobs[j] for j in route] for route in solved]


def _walk(
    problem: _Problem, vehicle: int, sequence: list[int], *, drop: bool
) -> tuple[list[ScheduledStop], set[int]]:
    """Time the stops in order from the shift's start, waiting for windows to open.

    drop: a stop that would begin too late or end after the agent's day is left out and the
    walk goes on from the previous place; otherwise it stays and its problems are named.
    """
    shift = problem.shifts[vehicle]
    zone = shift.start_time.tzinfo
    day_end = _seconds_down(shift.end_time)
    now = _seconds_up(shift.start_time)
    prev = vehicle
    planned: list[ScheduledStop] = []
    dropped: set[int] = set()
    for index in sequence:
        node, bounds = problem.node(index), problem.bounds[index]
        reach = now + problem.travel[prev][node]
        begin = max(reach, bounds.opens)
        end = begin + problem.service_s
        problems = _problems(bounds, begin, end, day_end)
        if problems and drop:
            dropped.add(index)
            continue
        late = 0 if bounds.window_close is None else max(0, begin - bounds.window_close)
        planned.append(
            ScheduledStop(
                visit_id=problem.stops[index].visit_id,
                arrival=_at(begin, zone),
                departure=_at(end, zone),
                wait_s=begin - reach,
                travel_s=problem.travel[prev][node],
                leg_distance_m=problem.dist[prev][node],
                window_violation_s=late,
                problems=problems,
            )
        )
        now, prev = end, node
    return planned, dropped


def _problems(bounds: _Bounds, begin: int, end: int, day_end: int) -> tuple[str, ...]:
    """What is wrong with a visit beginning at begin and ending at end."""
    found = []
    if bounds.window_close is not None and begin > bounds.window_close:
        found.append(LATE_FOR_WINDOW)
    if begin > bounds.lawful_close:
        found.append(OUTSIDE_HOURS)
    if end > day_end:
        found.append(AFTER_AGENT_HOURS)
    return tuple(found)


def _at(posix_s: int, zone: object) -> datetime:
    """The instant posix_s shown in the shift's zone."""
    return datetime.fromtimestamp(posix_s, UTC).astimezone(zone)  # type: ignore[arg-type]


def _proposal(
    shift: Shift, route: list[ScheduledStop], left: list[UnscheduledStop]
) -> RouteProposal:
    """Totals over the scheduled stops."""
    duration = 0
    if route:
        duration = _seconds_down(route[-1].departure) - _seconds_up(shift.start_time)
    return RouteProposal(
        stops=tuple(route),
        unscheduled=tuple(left),
        total_distance_m=sum(s.leg_distance_m for s in route),
        total_duration_s=duration,
    )
