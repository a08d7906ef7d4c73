"""Routes that obey the law: proposals, hand-made orders and assignments, pure domain."""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.domain.routing import (
    BEYOND_AGENT_HOURS,
    DAY_FULL,
    LATE_FOR_WINDOW,
    NO_LOCATION,
    OUTSIDE_LAWFUL_HOURS,
    UNKNOWN_TIME_ZONE,
    UNSCHEDULED_REASONS,
    WINDOW_UNREACHABLE,
    RouteProposal,
    Shift,
    SolverBudget,
    Stop,
    TravelModel,
    VisitingHours,
    consented_hours,
    evaluate_order,
    propose_assignment,
    propose_route,
)
from sync.geo import haversine_m

SHANGHAI = "Asia/Shanghai"
SH = ZoneInfo(SHANGHAI)
DAY = date(2026, 11, 24)
START = (31.20, 121.40)
LAW = VisitingHours(time(8, 0), time(21, 0))
QUICK = SolverBudget(iterations=60, max_seconds=2.0)


def at(hour: int, minute: int = 0, zone: ZoneInfo = SH, day: date = DAY) -> datetime:
    return datetime.combine(day, time(hour, minute), zone)


def shift(start_time: datetime | None = None, end_time: datetime | None = None, **kw) -> Shift:
    return Shift(
        kw.get("agent_id", 1),
        kw.get("start", START),
        start_time or at(9),
        end_time or at(21),
    )


def grid_stop(visit_id: int, x: float, y: float, zone: str = SHANGHAI, **window: time) -> Stop:
    """A stop x steps east and y steps north of START (one step is 0.01 degree)."""
    return Stop(visit_id, START[0] + y * 0.01, START[1] + x * 0.01, zone, **window)


def road(a: tuple[float, float], b: tuple[float, float]) -> tuple[int, int]:
    metres = round(haversine_m(a[0], a[1], b[0], b[1]) * 1.3)
    return metres, math.ceil(metres * 3.6 / 25)


def assert_lawful(
    proposal: RouteProposal,
    stops: list[Stop],
    the_shift: Shift,
    law: VisitingHours = LAW,
    day: date = DAY,
    travel: TravelModel = TravelModel(),
) -> None:
    """Check every scheduled stop from first principles, in the borrower's own time zone."""
    by_id = {s.visit_id: s for s in stops}
    place, free_at = the_shift.start, the_shift.start_time
    for planned in proposal.stops:
        stop = by_id[planned.visit_id]
        zone = ZoneInfo(stop.time_zone)
        begin, end = planned.arrival.astimezone(zone), planned.departure.astimezone(zone)
        assert begin.date() == day and end.date() == day, planned
        assert law.start <= begin.time() and end.time() <= law.end, (planned, stop)
        if stop.window_start:
            assert begin.time() >= stop.window_start, (planned, stop)
        if stop.window_end:
            assert begin.time() <= stop.window_end, (planned, stop)
        assert planned.departure - planned.arrival == timedelta(seconds=travel.service_s)
        assert planned.departure <= the_shift.end_time
        point = (stop.lat, stop.lon)
        metres = haversine_m(place[0], place[1], point[0], point[1]) * travel.road_factor
        assert planned.leg_distance_m == pytest.approx(metres, abs=1)
        driving = timedelta(seconds=planned.leg_distance_m * 3.6 / travel.speed_kmh)
        assert planned.arrival >= free_at + driving
        assert planned.problems == ()
        place, free_at = point, planned.departure  # type: ignore[assignment]
    accounted = [s.visit_id for s in proposal.stops] + [u.visit_id for u in proposal.unscheduled]
    assert sorted(accounted) == sorted(by_id)
    assert all(u.reason in UNSCHEDULED_REASONS for u in proposal.unscheduled)
    assert proposal.late_stops == 0


def test_empty_day_is_an_empty_route() -> None:
    assert propose_route(shift(), [], DAY, LAW) == RouteProposal((), (), 0, 0)


def test_single_stop_has_travel_then_service() -> None:
    stop = grid_stop(7, 3, 4)
    proposal = propose_route(shift(), [stop], DAY, LAW)

    metres, seconds = road(START, (stop.lat, stop.lon))  # type: ignore[arg-type]
    (plan,) = proposal.stops
    assert (plan.visit_id, plan.leg_distance_m, plan.travel_s, plan.wait_s) == (
        7,
        metres,
        seconds,
        0,
    )
    assert plan.arrival == at(9) + timedelta(seconds=seconds)
    assert plan.departure == plan.arrival + timedelta(minutes=20)
    assert proposal.total_duration_s == seconds + 20 * 60
    assert plan.arrival.tzinfo == SH


def test_points_on_a_line_are_visited_outwards() -> None:
    stops = [grid_stop(v, x, 0) for v, x in [(1, 4), (2, 1), (3, 5), (4, 2), (5, 3)]]
    assert propose_route(shift(), stops, DAY, LAW).order == (2, 4, 5, 1, 3)


def test_closing_window_is_served_before_a_nearer_stop() -> None:
    near = grid_stop(1, 1, 0)
    urgent = grid_stop(2, 0, 5, window_end=time(9, 25))

    proposal = propose_route(shift(), [near, urgent], DAY, LAW)

    assert proposal.order == (2, 1)
    assert proposal.unscheduled == ()
    # The hand-made nearest-first order would have been late: the window changed the order.
    manual = evaluate_order(shift(), [near, urgent], DAY, LAW)
    assert manual.stops[1].problems == (LATE_FOR_WINDOW,) and manual.late_stops == 1


def test_early_arrival_waits_and_the_visit_begins_when_the_window_opens() -> None:
    stop = grid_stop(1, 1, 0, window_start=time(11), window_end=time(12))

    (plan,) = propose_route(shift(), [stop], DAY, LAW).stops

    assert plan.arrival == at(11)
    assert plan.wait_s == (at(11) - at(9)).total_seconds() - plan.travel_s


def test_no_visit_begins_before_the_lawful_hours_even_when_the_agent_is_out_early() -> None:
    stop = grid_stop(1, 1, 0)

    (plan,) = propose_route(shift(start_time=at(6)), [stop], DAY, LAW).stops

    assert plan.arrival == at(8)


def test_twenty_stops_without_windows_never_run_into_the_night() -> None:
    """The 03:27 bug: a day that does not fit ends by 21:00; the rest is unscheduled."""
    rng = random.Random(20)
    stops = [
        Stop(v, 31.0 + rng.random() * 0.5, 121.1 + rng.random() * 0.7, SHANGHAI)
        for v in range(1, 21)
    ]
    slow = TravelModel(speed_kmh=20, service_s=45 * 60)
    day = shift(start_time=at(9), end_time=at(23, 59))

    proposal = propose_route(day, stops, DAY, LAW, slow, QUICK)

    assert_lawful(proposal, stops, day, travel=slow)
    assert proposal.unscheduled and {u.reason for u in proposal.unscheduled} == {DAY_FULL}
    assert proposal.stops[-1].departure <= at(21)


@pytest.mark.parametrize(
    ("window", "reason"),
    [
        ({"window_start": time(5), "window_end": time(7, 30)}, OUTSIDE_LAWFUL_HOURS),
        ({"window_start": time(21, 30), "window_end": time(23)}, OUTSIDE_LAWFUL_HOURS),
        # Arriving at 20:50 is lawful, staying twenty minutes is not.
        ({"window_start": time(20, 50), "window_end": time(21)}, OUTSIDE_LAWFUL_HOURS),
        ({"window_start": time(8), "window_end": time(9, 5)}, WINDOW_UNREACHABLE),
    ],
    ids=["before-law", "after-law", "cannot-finish", "window-closes-first"],
)
def test_stops_that_cannot_be_lawful_come_back_with_the_reason(window, reason) -> None:
    stops = [grid_stop(1, 10, 0, **window), grid_stop(2, 1, 0)]

    proposal = propose_route(shift(), stops, DAY, LAW)

    assert proposal.order == (2, 1)
    assert [(u.visit_id, u.reason) for u in proposal.unscheduled] == [(1, reason)]


def test_a_window_after_the_agents_day_is_beyond_its_hours() -> None:
    stops = [grid_stop(1, 1, 0, window_start=time(19), window_end=time(20))]

    proposal = propose_route(shift(end_time=at(18)), stops, DAY, LAW)

    assert proposal.unscheduled[0].reason == BEYOND_AGENT_HOURS


def test_unusable_places_and_zones_are_reported() -> None:
    stops = [
        Stop(5, None, None, SHANGHAI),
        Stop(6, 31.2, float("nan"), SHANGHAI),
        grid_stop(7, 1, 0, zone="Mars/Olympus_Mons"),
        grid_stop(8, 1, 0),
    ]

    proposal = propose_route(shift(), stops, DAY, LAW)

    assert proposal.order == (8, 5, 6, 7)
    assert [u.reason for u in proposal.unscheduled] == [NO_LOCATION, NO_LOCATION, UNKNOWN_TIME_ZONE]


def test_lawful_hours_are_read_in_each_borrowers_own_zone() -> None:
    # 07:10 in Shanghai is 08:10 in Tokyo: lawful there, not yet here.
    tokyo = grid_stop(1, 0.5, 0, zone="Asia/Tokyo")
    shanghai = grid_stop(2, 1, 0)
    day = shift(start_time=at(7))

    proposal = propose_route(day, [shanghai, tokyo], DAY, LAW)

    assert_lawful(proposal, [tokyo, shanghai], day)
    first, second = proposal.stops
    assert first.visit_id == 1 and first.arrival < at(8)
    assert second.visit_id == 2 and second.arrival == at(8)


def test_a_borrower_far_west_is_visited_in_their_own_daytime() -> None:
    # 08:00-21:00 in Berlin is 15:00-04:00 in Shanghai: only the afternoon works.
    berlin = grid_stop(1, 1, 0, zone="Europe/Berlin")

    (plan,) = propose_route(shift(), [berlin], DAY, LAW).stops

    assert plan.arrival == at(8, zone=ZoneInfo("Europe/Berlin")) == at(15)


def test_replan_from_a_reported_position_keeps_what_still_fits() -> None:
    stops = [
        grid_stop(1, 2, 2, window_start=time(9), window_end=time(11)),
        grid_stop(2, 3, 1),
        grid_stop(3, -2, 1, window_start=time(16), window_end=time(17)),
    ]
    position = (START[0] + 0.02, START[1] + 0.05)
    midday = shift(start_time=at(14, 10), start=position)

    proposal = propose_route(midday, stops, DAY, LAW)

    assert proposal.order == (2, 3, 1)
    assert [(u.visit_id, u.reason) for u in proposal.unscheduled] == [(1, WINDOW_UNREACHABLE)]
    assert proposal.stops[0].leg_distance_m == road(position, (stops[1].lat, stops[1].lon))[0]  # type: ignore[arg-type]
    assert all(s.arrival >= at(14, 10) for s in proposal.stops)
    assert_lawful(proposal, stops, midday)


def test_evaluate_order_keeps_the_dispatchers_order_and_names_its_problems() -> None:
    stops = [
        grid_stop(1, 4, 0),
        Stop(2, None, None, SHANGHAI),
        grid_stop(3, 1, 0, window_start=time(8), window_end=time(9, 5)),
        grid_stop(4, 2, 0, window_start=time(20, 50), window_end=time(21)),
    ]

    manual = evaluate_order(shift(end_time=at(23)), stops, DAY, LAW)

    assert manual.order == (1, 3, 4, 2)
    assert [s.problems for s in manual.stops] == [
        (),
        (LATE_FOR_WINDOW,),
        (OUTSIDE_LAWFUL_HOURS,),
    ]
    assert manual.stops[1].window_violation_s > 0
    assert manual.unscheduled[0].reason == NO_LOCATION
    # The leg to stop 3 runs from stop 1: an unlocated stop contributes no distance.
    assert manual.stops[1].leg_distance_m == road((31.2, 121.44), (31.2, 121.41))[0]


def test_the_same_day_gives_the_same_proposal() -> None:
    stops = generated_day(random.Random(5))[1]
    assert propose_route(shift(), stops, DAY, LAW, budget=QUICK) == propose_route(
        shift(), stops, DAY, LAW, budget=QUICK
    )


def test_travel_model_is_configurable() -> None:
    stop = grid_stop(1, 5, 0)
    slow = propose_route(shift(), [stop], DAY, LAW, TravelModel(25, 0))
    fast = propose_route(shift(), [stop], DAY, LAW, TravelModel(50, 0, road_factor=1.0))

    assert fast.total_duration_s == pytest.approx(slow.total_duration_s / 2 / 1.3, abs=1)


@pytest.mark.parametrize(
    ("the_shift", "stops"),
    [
        (Shift(1, START, at(9).replace(tzinfo=None), at(21)), []),
        (shift(), [grid_stop(1, 1, 0), grid_stop(1, 2, 0)]),
        (shift(), [grid_stop(1, 1, 0, window_start=time(12), window_end=time(11))]),
        (Shift(1, (91.0, 0.0), at(9), at(21)), []),
    ],
    ids=["naive-start", "duplicate-id", "window-inverted", "start-off-the-globe"],
)
def test_bad_input_is_rejected(the_shift: Shift, stops: list[Stop]) -> None:
    with pytest.raises(ValueError):
        propose_route(the_shift, stops, DAY, LAW)


ZONES = ["Asia/Shanghai"] * 6 + ["Asia/Tokyo", "Asia/Kolkata", "America/New_York"]


def generated_day(rng: random.Random) -> tuple[Shift, list[Stop], date, VisitingHours]:
    """A random day: start, stops spread over a city, windows of every kind, mixed zones."""
    day = date(2026, rng.choice([3, 7, 11]), rng.randint(1, 28))  # DST changes included
    law = rng.choice([LAW, VisitingHours(time(8), time(22))])
    stops = []
    for visit_id in range(1, rng.randint(5, 22) + 1):
        window: dict[str, time] = {}
        kind = rng.random()
        if kind < 0.4:
            opens = rng.randint(5 * 4, 22 * 4) / 4
            closes = min(opens + rng.choice([0.25, 1, 2, 3]), 23.75)
            window = {
                "window_start": time(int(opens), int(opens % 1 * 60)),
                "window_end": time(int(closes), int(closes % 1 * 60)),
            }
        elif kind < 0.5:
            window = {"window_end": time(rng.randint(8, 20), 0)}
        lat, lon = 31.10 + rng.random() * 0.25, 121.30 + rng.random() * 0.35
        if rng.random() < 0.03:
            lat = None  # type: ignore[assignment]
        stops.append(Stop(visit_id, lat, lon, rng.choice(ZONES), **window))
    zone = ZoneInfo(rng.choice(["Asia/Shanghai", "Asia/Shanghai", "Asia/Tokyo"]))
    start_time = datetime.combine(day, time(rng.randint(6, 16), rng.randint(0, 59)), zone)
    end_time = start_time + timedelta(hours=rng.randint(4, 14))
    start = (31.10 + rng.random() * 0.25, 121.30 + rng.random() * 0.35)
    return Shift(1, start, start_time, end_time), stops, day, law


def test_one_hundred_generated_days_put_no_stop_outside_its_window_or_the_law() -> None:
    rng = random.Random(2026)
    reasons: Counter[str] = Counter()
    scheduled = 0
    for _ in range(100):
        the_shift, stops, day, law = generated_day(rng)
        travel = TravelModel(speed_kmh=rng.choice([15, 25, 40]), service_s=rng.choice([600, 1200]))
        proposal = propose_route(the_shift, stops, day, law, travel, QUICK)
        assert_lawful(proposal, stops, the_shift, law, day, travel)
        reasons.update(u.reason for u in proposal.unscheduled)
        scheduled += len(proposal.stops)
    # The generator really produced every kind of trouble, and most stops still fit.
    assert {NO_LOCATION, OUTSIDE_LAWFUL_HOURS, WINDOW_UNREACHABLE} <= set(reasons)
    assert scheduled > sum(reasons.values())


def team(count: int, rng: random.Random) -> list[Shift]:
    return [
        Shift(
            agent_id=100 + i,
            start=(31.10 + rng.random() * 0.25, 121.30 + rng.random() * 0.35),
            start_time=at(8),
            end_time=at(rng.choice([17, 19, 21])),
        )
        for i in range(count)
    ]


def test_an_assignment_is_balanced_lawful_and_loses_no_visit() -> None:
    rng = random.Random(11)
    shifts = team(3, rng)
    stops = generated_day(random.Random(4))[1] + [
        Stop(100 + v, 31.10 + rng.random() * 0.25, 121.30 + rng.random() * 0.35, SHANGHAI)
        for v in range(20)
    ]

    proposal = propose_assignment(shifts, stops, DAY, LAW, budget=QUICK, balance_slack=1, pinned={})

    loads = [len(r.route.stops) for r in proposal.routes]
    assert proposal.capacity is not None
    assert proposal.capacity <= math.ceil(len([s for s in stops if s.lat]) / 3) + 1
    assert max(loads) <= proposal.capacity and min(loads) >= proposal.capacity - 4
    for the_shift, agent_route in zip(shifts, proposal.routes, strict=True):
        assert agent_route.agent_id == the_shift.agent_id
        assert agent_route.new_visits == agent_route.route.order
        mine = [s for s in stops if s.visit_id in set(agent_route.route.order)]
        assert_lawful(agent_route.route, mine, the_shift)
    handed = [v for r in proposal.routes for v in r.route.order]
    handed += [u.visit_id for u in proposal.unassigned]
    assert sorted(handed) == sorted(s.visit_id for s in stops)


def test_agents_keep_their_own_visits_in_an_assignment() -> None:
    shifts = [
        Shift(1, START, at(9), at(21)),
        Shift(2, (START[0], START[1] + 0.2), at(9), at(21)),
    ]
    # Stop 9 sits next to agent 2, but it is agent 1's and stays so; the even share is two.
    stops = [grid_stop(9, 19, 0), grid_stop(1, 1, 0), grid_stop(2, 18, 0)]

    proposal = propose_assignment(shifts, stops, DAY, LAW, pinned={9: 1}, balance_slack=0)

    first, second = proposal.routes
    assert set(first.route.order) == {9, 1} and first.new_visits == (1,)
    assert second.route.order == (2,) and second.new_visits == (2,)


def test_an_assignment_reports_what_no_agent_can_take() -> None:
    shifts = team(2, random.Random(1))
    stops = [
        grid_stop(1, 1, 0, window_start=time(5), window_end=time(6)),
        grid_stop(2, 1, 0, window_start=time(21, 30), window_end=time(22)),
        grid_stop(3, 1, 1),
    ]
    late = [Shift(s.agent_id, s.start, s.start_time, at(12)) for s in shifts]
    stops.append(grid_stop(4, 2, 0, window_start=time(15), window_end=time(16)))

    proposal = propose_assignment(late, stops, DAY, LAW, balance_slack=2)

    assert {(u.visit_id, u.reason) for u in proposal.unassigned} == {
        (1, OUTSIDE_LAWFUL_HOURS),
        (2, OUTSIDE_LAWFUL_HOURS),
        (4, BEYOND_AGENT_HOURS),
    }
    assert [v for r in proposal.routes for v in r.route.order] == [3]


def test_an_assignment_needs_distinct_agents() -> None:
    with pytest.raises(ValueError):
        propose_assignment([shift(), shift()], [], DAY, LAW)
    with pytest.raises(ValueError):
        propose_assignment([shift()], [grid_stop(1, 1, 0)], DAY, LAW, pinned={1: 99})


def test_an_agent_above_the_even_share_keeps_all_of_its_own_visits() -> None:
    shifts = [Shift(1, START, at(9), at(21)), Shift(2, (START[0], START[1] + 0.1), at(9), at(21))]
    own = [grid_stop(v, v * 0.3, 0) for v in range(1, 7)]
    stops = [*own, grid_stop(7, 10, 1)]

    proposal = propose_assignment(
        shifts, stops, DAY, LAW, pinned={s.visit_id: 1 for s in own}, balance_slack=0
    )

    first, second = proposal.routes
    assert proposal.capacity == 4
    assert sorted(first.route.order) == [1, 2, 3, 4, 5, 6] and first.route.unscheduled == ()
    assert second.route.order == (7,)


def test_the_share_holds_even_when_the_solver_overloads_an_agent(monkeypatch) -> None:
    from server.domain import route_solver

    def everything_to_the_first(problem, **_budget):
        return [list(range(len(problem.jobs)))] + [[] for _ in problem.vehicles[1:]]

    monkeypatch.setattr(route_solver, "solve", everything_to_the_first)
    shifts = [Shift(1, START, at(9), at(21)), Shift(2, START, at(9), at(21))]
    stops = [grid_stop(v, v * 0.2, 0) for v in range(1, 7)]

    proposal = propose_assignment(shifts, stops, DAY, LAW, pinned={1: 1}, balance_slack=1)

    first, second = proposal.routes
    assert proposal.capacity == 4
    assert first.route.order == (1, 2, 3, 4) and second.route.order == ()
    assert [(u.visit_id, u.reason) for u in proposal.unassigned] == [
        (5, "team_full"),
        (6, "team_full"),
    ]
    assert_lawful(first.route, stops[:4], shifts[0])


@pytest.mark.parametrize(
    ("windows", "expected"),
    [
        ([], (time(8), time(21))),
        ([(time(21), time(22, 30))], (time(8), time(22, 30))),  # touches the end
        ([(time(6), time(8))], (time(6), time(21))),  # touches the start
        ([(time(2), time(4))], (time(8), time(21))),  # apart: one span per visit, kept lawful
        ([(time(20), time(7))], (time(8), time(23, 59, 59))),  # past midnight: 07-08 is a gap
        ([(time(20), time(8))], (time(0), time(23, 59, 59))),  # past midnight, touching both
        ([(None, None)], (time(0), time(23, 59, 59))),  # any hour
        ([(time(2), time(6)), (time(6), time(8))], (time(2), time(21))),  # chained
    ],
)
def test_consent_widens_the_lawful_hours_only_where_it_touches_them(windows, expected):
    hours = consented_hours(VisitingHours(time(8), time(21)), windows)
    assert (hours.start, hours.end) == expected
