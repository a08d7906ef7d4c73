"""Route proposals and manual-order evaluation for an agent's day."""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.domain.routing import (
    RouteProposal,
    Stop,
    evaluate_order,
    haversine_m,
    propose_route,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = (31.20, 121.40)
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI)
SERVICE_S = 20 * 60
SPEED_MPS = 25_000 / 3600


def grid_stop(visit_id: int, x: int, y: int, **window: datetime) -> Stop:
    """A stop x grid steps east and y steps north of START (one step is 0.01 degree)."""
    return Stop(visit_id, START[0] + y * 0.01, START[1] + x * 0.01, **window)


def road_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Default road distance: haversine times 1.3."""
    return haversine_m(a[0], a[1], b[0], b[1]) * 1.3


def legs_cross(route: list[tuple[float, float]]) -> bool:
    """True when two non-adjacent legs of the polyline properly intersect."""

    def side(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> float:
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    legs = list(zip(route, route[1:], strict=False))
    for i, (a, b) in enumerate(legs):
        for c, d in legs[i + 2 :]:
            if side(a, b, c) * side(a, b, d) < 0 and side(c, d, a) * side(c, d, b) < 0:
                return True
    return False


def polyline(proposal: RouteProposal, stops: list[Stop]) -> list[tuple[float, float]]:
    """The start point followed by the stops' coordinates in the proposal's order."""
    by_id = {s.visit_id: s for s in stops}
    return [START] + [(by_id[v].lat, by_id[v].lon) for v in proposal.order]  # type: ignore[misc]


def random_stops(count: int, seed: int, window_share: float = 0.35) -> list[Stop]:
    """Stops spread over urban Shanghai, about a third with a one- or two-hour window."""
    rng = random.Random(seed)
    stops = []
    for visit_id in range(1, count + 1):
        window: dict[str, datetime] = {}
        if rng.random() < window_share:
            opens = T0.replace(hour=rng.randint(9, 17))
            window = {"window_start": opens, "window_end": opens + timedelta(hours=2)}
        lat, lon = 31.10 + rng.random() * 0.25, 121.30 + rng.random() * 0.35
        stops.append(Stop(visit_id, lat, lon, **window))
    return stops


def test_empty_day_is_an_empty_route() -> None:
    proposal = propose_route(START, T0, [])
    assert proposal == RouteProposal((), (), 0.0, 0.0, 0, ())


def test_single_stop_has_travel_then_service() -> None:
    stop = grid_stop(7, 3, 4)
    proposal = propose_route(START, T0, [stop])

    leg = road_m(START, (stop.lat, stop.lon))  # type: ignore[arg-type]
    (plan,) = proposal.stops
    assert proposal.order == (7,)
    assert plan.leg_distance_m == pytest.approx(leg)
    assert plan.arrival == T0 + timedelta(seconds=leg / SPEED_MPS)
    assert plan.departure == plan.arrival + timedelta(seconds=SERVICE_S)
    assert (plan.wait_s, plan.window_violation_s, plan.located) == (0.0, 0.0, True)
    assert proposal.total_duration_s == pytest.approx(leg / SPEED_MPS + SERVICE_S)
    assert plan.arrival.tzinfo == SHANGHAI


def test_points_on_a_line_are_visited_outwards() -> None:
    stops = [grid_stop(v, x, 0) for v, x in [(1, 4), (2, 1), (3, 5), (4, 2), (5, 3)]]
    assert propose_route(START, T0, stops).order == (2, 4, 5, 1, 3)


def test_closing_window_is_served_before_a_nearer_stop() -> None:
    near = grid_stop(1, 1, 0)
    urgent = grid_stop(2, 0, 5, window_end=T0 + timedelta(minutes=25))

    proposal = propose_route(START, T0, [near, urgent])

    assert proposal.order == (2, 1)
    assert proposal.late_stops == 0
    # The greedy order really would have been late: the window is what changed the order.
    assert evaluate_order(START, T0, [near, urgent]).late_stops == 1


def test_early_arrival_waits_for_the_window_to_open() -> None:
    opens = T0 + timedelta(hours=2)
    stop = grid_stop(1, 1, 0, window_start=opens, window_end=opens + timedelta(hours=1))

    (plan,) = propose_route(START, T0, [stop]).stops

    assert plan.arrival is not None
    assert plan.wait_s == pytest.approx((opens - plan.arrival).total_seconds())
    assert plan.departure == opens + timedelta(seconds=SERVICE_S)
    assert plan.window_violation_s == 0.0


def test_late_opening_stop_is_not_visited_first_only_to_wait() -> None:
    evening = T0.replace(hour=18)
    later = grid_stop(1, 1, 0, window_start=evening, window_end=evening + timedelta(hours=1))
    others = [grid_stop(2, 3, 0), grid_stop(3, 4, 1)]

    proposal = propose_route(START, T0, [later, *others])

    assert proposal.order[-1] == 1
    assert proposal.late_stops == 0


def test_late_arrival_reports_the_violation() -> None:
    closes = T0 + timedelta(minutes=1)
    stop = grid_stop(1, 3, 0, window_end=closes)

    proposal = propose_route(START, T0, [stop])

    (plan,) = proposal.stops
    assert plan.arrival is not None
    assert plan.window_violation_s == pytest.approx((plan.arrival - closes).total_seconds())
    assert proposal.late_stops == 1


def test_two_opt_untangles_a_crossing_left_by_nearest_neighbour() -> None:
    stops = [
        grid_stop(v, x, y) for v, x, y in [(1, 4, 3), (2, 0, 1), (3, 3, 0), (4, 4, 4), (5, 0, 3)]
    ]
    # Visits 2, 5, 1, 4, 3 is what nearest neighbour alone picks here; its legs cross.
    greedy = evaluate_order(START, T0, [stops[i] for i in (1, 4, 0, 3, 2)])
    assert legs_cross(polyline(greedy, stops))

    proposal = propose_route(START, T0, stops)

    assert proposal.order == (2, 5, 4, 1, 3)
    assert not legs_cross(polyline(proposal, stops))
    assert proposal.total_distance_m < greedy.total_distance_m


def test_proposal_does_not_depend_on_input_order() -> None:
    stops = random_stops(25, seed=3)
    shuffled = stops[:]
    random.Random(9).shuffle(shuffled)

    first = propose_route(START, T0, stops)

    assert propose_route(START, T0, shuffled) == first
    assert propose_route(START, T0, stops) == first


def test_equidistant_stops_tie_break_by_visit_id() -> None:
    stops = [grid_stop(9, 1, 0), grid_stop(4, -1, 0)]
    assert propose_route(START, T0, stops).order[0] == 4


@pytest.mark.parametrize("count", [1, 5, 25, 60])
def test_totals_are_the_sum_of_the_legs(count: int) -> None:
    proposal = propose_route(START, T0, random_stops(count, seed=count))

    assert proposal.total_distance_m == pytest.approx(
        sum(plan.leg_distance_m for plan in proposal.stops)
    )
    last = proposal.stops[-1].departure
    assert last is not None
    assert proposal.total_duration_s == pytest.approx((last - T0).total_seconds())
    assert sorted(proposal.order) == list(range(1, count + 1))


def test_unlocated_stops_go_last_in_input_order_and_are_flagged() -> None:
    stops = [Stop(5, None, None), grid_stop(1, 2, 0), Stop(3, 31.2, None), grid_stop(2, 1, 0)]

    proposal = propose_route(START, T0, stops)

    assert proposal.order == (2, 1, 5, 3)
    assert proposal.unlocated == (5, 3)
    tail = proposal.stops[2:]
    assert all(not p.located and p.arrival is None and p.leg_distance_m == 0 for p in tail)


def test_evaluate_order_keeps_the_dispatchers_order() -> None:
    stops = [grid_stop(1, 4, 0), Stop(2, None, None), grid_stop(3, 1, 0)]

    manual = evaluate_order(START, T0, stops)

    assert manual.order == (1, 2, 3)
    assert manual.unlocated == (2,)
    # The leg to stop 3 runs from stop 1: an unlocated stop contributes no distance.
    assert manual.stops[2].leg_distance_m == pytest.approx(road_m((31.2, 121.44), (31.2, 121.41)))
    assert manual.total_distance_m > propose_route(START, T0, stops).total_distance_m


def test_travel_model_is_configurable() -> None:
    stop = grid_stop(1, 5, 0)
    slow = propose_route(START, T0, [stop], speed_kmh=25, service_time=timedelta(0))
    fast = propose_route(
        START, T0, [stop], speed_kmh=50, service_time=timedelta(0), road_factor=1.0
    )

    assert fast.total_duration_s == pytest.approx(slow.total_duration_s / 2 / 1.3)


@pytest.mark.parametrize(
    ("start_time", "stops"),
    [
        (T0.replace(tzinfo=None), []),
        (T0, [grid_stop(1, 1, 0), grid_stop(1, 2, 0)]),
        (T0, [grid_stop(1, 1, 0, window_start=T0.replace(tzinfo=None))]),
        (T0, [grid_stop(1, 1, 0, window_start=T0, window_end=T0 - timedelta(hours=1))]),
    ],
    ids=["naive-start", "duplicate-id", "naive-window", "window-inverted"],
)
def test_bad_input_is_rejected(start_time: datetime, stops: list[Stop]) -> None:
    with pytest.raises(ValueError):
        propose_route(START, start_time, stops)


def test_a_full_day_is_proposed_quickly() -> None:
    stops = random_stops(60, seed=60)
    began = time.perf_counter()
    propose_route(START, T0, stops)
    # A regression guard with a wide margin (typically well under 0.1 s), not a benchmark.
    assert time.perf_counter() - began < 2.0
