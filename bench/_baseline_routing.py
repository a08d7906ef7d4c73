"""The route heuristic Doorstep used before PyVRP (nearest neighbour + 2-opt), kept only as
the baseline bench/routes.py compares against; it ignores the lawful hours.

Propose and evaluate the order of a field agent's day of visits.

Pure functions over plain values: no clock, no database. Distances are great-circle
(haversine) metres times a road factor; travel time is that distance at an average speed.
The route is open: the day ends at the last visit, not back at the start point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sync.geo import haversine_m

DEFAULT_SPEED_KMH = 25.0
DEFAULT_SERVICE_TIME = timedelta(minutes=20)
DEFAULT_ROAD_FACTOR = 1.3

# Float noise from summing legs must never count as an improvement or a lateness.
_EPS = 1e-6
# 2-opt converges in a handful of passes; the cap only guards against a pathological loop.
_MAX_PASSES = 50

Point = tuple[float, float]


@dataclass(frozen=True)
class Stop:
    """A visit to place in the day: where it is and when the borrower expects the agent."""

    visit_id: int
    lat: float | None
    lon: float | None
    window_start: datetime | None = None
    window_end: datetime | None = None


@dataclass(frozen=True)
class StopPlan:
    """When the agent reaches one stop; times are None when the stop has no usable location."""

    visit_id: int
    arrival: datetime | None
    wait_s: float
    departure: datetime | None
    leg_distance_m: float
    window_violation_s: float
    located: bool = True


@dataclass(frozen=True)
class RouteProposal:
    """An ordered day with its legs, ETAs, total distance and lateness."""

    order: tuple[int, ...]
    stops: tuple[StopPlan, ...]
    total_distance_m: float
    total_duration_s: float
    late_stops: int
    unlocated: tuple[int, ...] = ()


@dataclass(frozen=True)
class _Problem:
    """Located stops as nodes 1..n (node 0 is the start), sorted by visit_id for tie-breaks."""

    stops: tuple[Stop, ...]
    dist: tuple[tuple[float, ...], ...]
    travel: tuple[tuple[float, ...], ...]
    opens: tuple[float, ...]
    closes: tuple[float, ...]
    service_s: float
    has_windows: bool


def propose_route(
    start: Point,
    start_time: datetime,
    stops: Sequence[Stop],
    *,
    speed_kmh: float = DEFAULT_SPEED_KMH,
    service_time: timedelta = DEFAULT_SERVICE_TIME,
    road_factor: float = DEFAULT_ROAD_FACTOR,
) -> RouteProposal:
    """Order the stops by nearest neighbour (rescuing closing windows), then improve by 2-opt."""
    problem = _build_problem(start, start_time, stops, speed_kmh, service_time, road_factor)
    nodes = _two_opt(problem, _nearest_neighbour(problem))
    located = [problem.stops[node - 1] for node in nodes]
    # Unroutable stops still belong to the day; they go last so they never distort the ETAs.
    unlocated = [stop for stop in stops if not _is_located(stop)]
    return _plan(problem, start_time, located + unlocated)


def evaluate_order(
    start: Point,
    start_time: datetime,
    stops_in_order: Sequence[Stop],
    *,
    speed_kmh: float = DEFAULT_SPEED_KMH,
    service_time: timedelta = DEFAULT_SERVICE_TIME,
    road_factor: float = DEFAULT_ROAD_FACTOR,
) -> RouteProposal:
    """Distances and ETAs of a dispatcher's own order, kept as given (unlocated stops too)."""
    problem = _build_problem(
        start, start_time, stops_in_order, speed_kmh, service_time, road_factor
    )
    return _plan(problem, start_time, list(stops_in_order))


def _is_located(stop: Stop) -> bool:
    """True when the stop has finite, in-range coordinates."""
    return _valid_point(stop.lat, stop.lon)


def _point(stop: Stop) -> Point:
    """The coordinates of a stop already known to be located."""
    assert stop.lat is not None and stop.lon is not None
    return (stop.lat, stop.lon)


def _valid_point(lat: float | None, lon: float | None) -> bool:
    """True for a finite latitude/longitude pair inside the WGS-84 ranges."""
    if lat is None or lon is None or not (math.isfinite(lat) and math.isfinite(lon)):
        return False
    return -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0


def _require_aware(value: datetime, name: str) -> None:
    """Reject naive datetimes: a wall-clock time without a zone cannot be compared safely."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def _validate(
    start: Point,
    start_time: datetime,
    stops: Sequence[Stop],
    speed_kmh: float,
    service_time: timedelta,
    road_factor: float,
) -> None:
    """Raise ValueError for inputs no route can be computed from."""
    if not _valid_point(*start):
        raise ValueError("start must be a valid (lat, lon) pair")
    _require_aware(start_time, "start_time")
    if not (math.isfinite(speed_kmh) and speed_kmh > 0):
        raise ValueError("speed_kmh must be positive")
    if service_time < timedelta(0):
        raise ValueError("service_time must not be negative")
    if not (math.isfinite(road_factor) and road_factor > 0):
        raise ValueError("road_factor must be positive")
    ids = [stop.visit_id for stop in stops]
    if len(set(ids)) != len(ids):
        raise ValueError("visit_id values must be unique")
    for stop in stops:
        _validate_window(stop)


def _validate_window(stop: Stop) -> None:
    """Check that a stop's window bounds are aware and in order."""
    if stop.window_start is not None:
        _require_aware(stop.window_start, f"window_start of visit {stop.visit_id}")
    if stop.window_end is not None:
        _require_aware(stop.window_end, f"window_end of visit {stop.visit_id}")
    if stop.window_start and stop.window_end and stop.window_end < stop.window_start:
        raise ValueError(f"window of visit {stop.visit_id} ends before it starts")


def _offset_s(moment: datetime | None, start_time: datetime, missing: float) -> float:
    """Seconds from the start of the day to moment, or missing when there is no bound."""
    return missing if moment is None else (moment - start_time).total_seconds()


def _build_problem(
    start: Point,
    start_time: datetime,
    stops: Sequence[Stop],
    speed_kmh: float,
    service_time: timedelta,
    road_factor: float,
) -> _Problem:
    """Validate inputs and precompute the distance and travel-time matrices."""
    _validate(start, start_time, stops, speed_kmh, service_time, road_factor)
    located = tuple(sorted((s for s in stops if _is_located(s)), key=lambda s: s.visit_id))
    points = [start] + [_point(s) for s in located]
    dist = tuple(
        tuple(haversine_m(a[0], a[1], b[0], b[1]) * road_factor for b in points) for a in points
    )
    speed_mps = speed_kmh * 1000.0 / 3600.0
    # Infinite bounds let the hot loops skip "is there a window?" branches.
    opens = (-math.inf,) + tuple(_offset_s(s.window_start, start_time, -math.inf) for s in located)
    closes = (math.inf,) + tuple(_offset_s(s.window_end, start_time, math.inf) for s in located)
    return _Problem(
        stops=located,
        dist=dist,
        travel=tuple(tuple(d / speed_mps for d in row) for row in dist),
        opens=opens,
        closes=closes,
        service_s=service_time.total_seconds(),
        has_windows=any(math.isfinite(t) for t in opens + closes),
    )


def _nearest_neighbour(p: _Problem) -> list[int]:
    """Greedy order: soonest service start, unless that would miss another reachable window."""
    remaining = list(range(1, len(p.stops) + 1))
    order: list[int] = []
    current, now = 0, 0.0
    while remaining:
        # Earliest service start (not raw distance) so a far-future window is not visited
        # first only to wait for hours; without windows this is plain nearest neighbour.
        best = min(remaining, key=lambda k: _service_start_key(p, current, now, k))
        chosen = _rescue_window(p, remaining, current, now, best)
        order.append(chosen)
        remaining.remove(chosen)
        now = max(now + p.travel[current][chosen], p.opens[chosen]) + p.service_s
        current = chosen
    return order


def _service_start_key(p: _Problem, current: int, now: float, k: int) -> tuple[float, float, int]:
    """Sort key: when service at k could begin, then distance, then visit_id (node order)."""
    return (max(now + p.travel[current][k], p.opens[k]), p.dist[current][k], k)


def _rescue_window(p: _Problem, remaining: list[int], current: int, now: float, best: int) -> int:
    """The stop whose window closes soonest among those going to best first would make late."""
    after_best = max(now + p.travel[current][best], p.opens[best]) + p.service_s
    at_risk = [
        k
        for k in remaining
        if k != best and now + p.travel[current][k] <= p.closes[k] < after_best + p.travel[best][k]
    ]
    return min(at_risk, key=lambda k: (p.closes[k], k), default=best)


def _reversal_delta(dist: tuple[tuple[float, ...], ...], order: list[int], i: int, j: int) -> float:
    """Change in path length from reversing order[i..j]; the path is open at its far end."""
    before = order[i - 1] if i > 0 else 0
    delta = dist[before][order[j]] - dist[before][order[i]]
    if j + 1 < len(order):
        after = order[j + 1]
        delta += dist[order[i]][after] - dist[order[j]][after]
    return delta


def _prefix_schedule(p: _Problem, order: list[int]) -> tuple[list[float], list[float]]:
    """Departure time and cumulative lateness after each position of order."""
    departures: list[float] = []
    lateness: list[float] = []
    _run_schedule(p, order, 0, 0.0, 0.0, math.inf, departures, lateness)
    return departures, lateness


def _run_schedule(
    p: _Problem,
    seq: Sequence[int],
    prev: int,
    now: float,
    late: float,
    cap: float,
    departures: list[float] | None = None,
    lateness: list[float] | None = None,
) -> tuple[float, float]:
    """Total lateness and finish time of seq from node prev at time now; gives up past cap."""
    for node in seq:
        arrival = now + p.travel[prev][node]
        if arrival > p.closes[node]:
            late += arrival - p.closes[node]
            if late > cap:
                return late, math.inf
        now = max(arrival, p.opens[node]) + p.service_s
        prev = node
        if departures is not None and lateness is not None:
            departures.append(now)
            lateness.append(late)
    return late, now


def _two_opt(p: _Problem, order: list[int]) -> list[int]:
    """Reverse segments while that cuts lateness, or cuts distance without more lateness or time."""
    n = len(order)
    order = list(order)
    departures, lateness = _prefix_schedule(p, order)
    for _ in range(_MAX_PASSES):
        improved = False
        for i in range(n - 1):
            for j in range(i + 1, n):
                delta = _reversal_delta(p.dist, order, i, j)
                if _accept(p, order, i, j, delta, departures, lateness):
                    order[i : j + 1] = order[i : j + 1][::-1]
                    departures, lateness = _prefix_schedule(p, order)
                    improved = True
        if not improved:
            break
    return order


def _accept(
    p: _Problem,
    order: list[int],
    i: int,
    j: int,
    delta: float,
    departures: list[float],
    lateness: list[float],
) -> bool:
    """Decide whether reversing order[i..j] is an improvement worth keeping."""
    if not p.has_windows:
        # No waits and no lateness: finish time moves with distance, so distance decides.
        return delta < -_EPS
    late_now, end_now = lateness[-1], departures[-1]
    if delta >= -_EPS and late_now <= _EPS:
        return False  # longer and nothing late to fix: cannot help
    prev, now, late = (order[i - 1], departures[i - 1], lateness[i - 1]) if i else (0, 0.0, 0.0)
    tail = order[i : j + 1][::-1] + order[j + 1 :]
    late_new, end_new = _run_schedule(p, tail, prev, now, late, late_now + _EPS)
    if late_new < late_now - _EPS:
        return True
    # Shorter is only better if it does not add idle waiting that stretches the day.
    return late_new <= late_now + _EPS and delta < -_EPS and end_new <= end_now + _EPS


def _plan(p: _Problem, start_time: datetime, sequence: Sequence[Stop]) -> RouteProposal:
    """Walk the stops in sequence and report legs, ETAs, waits and lateness."""
    node_of = {stop.visit_id: index + 1 for index, stop in enumerate(p.stops)}
    start_utc = start_time.astimezone(UTC)
    plans: list[StopPlan] = []
    prev, now = 0, 0.0
    for stop in sequence:
        node = node_of.get(stop.visit_id)
        if node is None:
            plans.append(StopPlan(stop.visit_id, None, 0.0, None, 0.0, 0.0, located=False))
            continue
        arrival = now + p.travel[prev][node]
        begin = max(arrival, p.opens[node])
        violation = max(0.0, arrival - p.closes[node])
        now = begin + p.service_s
        plans.append(
            StopPlan(
                visit_id=stop.visit_id,
                arrival=_at(start_utc, arrival, start_time),
                wait_s=begin - arrival,
                departure=_at(start_utc, now, start_time),
                leg_distance_m=p.dist[prev][node],
                window_violation_s=violation,
            )
        )
        prev = node
    return RouteProposal(
        order=tuple(plan.visit_id for plan in plans),
        stops=tuple(plans),
        total_distance_m=sum(plan.leg_distance_m for plan in plans),
        total_duration_s=now,
        late_stops=sum(1 for plan in plans if plan.window_violation_s > _EPS),
        unlocated=tuple(plan.visit_id for plan in plans if not plan.located),
    )


def _at(start_utc: datetime, offset_s: float, start_time: datetime) -> datetime:
    """The instant offset_s after the start, shown in the start time's zone."""
    # Add in UTC: aware arithmetic in a DST zone would otherwise add wall-clock time.
    return (start_utc + timedelta(seconds=offset_s)).astimezone(start_time.tzinfo)
