"""Route proposals and team assignments: timings, and travel against the old heuristic.

    python -m bench.routes [--days 100] [--seed 7]

Prints the p50/p95 time of a route proposal for 25 stops (target p95 < 1 s), the time of an
assignment of 500 visits over 20 agents (target < 10 s), and the total travel of the lawful
proposals against the nearest-neighbour + 2-opt heuristic it replaced, on the same days. The
solver budgets are the defaults in server/config.py. In-process (the domain, no HTTP): the
request around a proposal adds a few milliseconds of reads. Never fails on time.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time as clock
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bench import _baseline_routing as baseline
from server.config import DEFAULTS
from server.domain import routing

SHANGHAI = "Asia/Shanghai"
ZONE = ZoneInfo(SHANGHAI)
DAY = date(2026, 11, 24)
LAW = routing.VisitingHours(time(8), time(21))
TRAVEL = routing.TravelModel(
    DEFAULTS["ROUTE_SPEED_KMH"],
    DEFAULTS["ROUTE_SERVICE_S"],
    DEFAULTS["ROUTE_ROAD_FACTOR_PCT"] / 100,
)
ROUTE_BUDGET = routing.SolverBudget(
    DEFAULTS["ROUTE_SOLVER_ITERATIONS"], DEFAULTS["ROUTE_SOLVER_MAX_MS"] / 1000
)
ASSIGN_BUDGET = routing.SolverBudget(
    DEFAULTS["ROUTE_ASSIGN_ITERATIONS"], DEFAULTS["ROUTE_ASSIGN_MAX_MS"] / 1000
)


def point(rng: random.Random) -> tuple[float, float]:
    """Somewhere in urban Shanghai (about 25 x 33 km)."""
    return 31.10 + rng.random() * 0.22, 121.33 + rng.random() * 0.33


def stops_for(rng: random.Random, count: int, first_id: int = 1) -> list[routing.Stop]:
    """Stops, about a third with a one- or two-hour window inside the lawful hours."""
    stops = []
    for visit_id in range(first_id, first_id + count):
        window: dict[str, time] = {}
        if rng.random() < 0.35:
            opens = rng.randint(8, 18)
            window = {"window_start": time(opens), "window_end": time(opens + rng.choice([1, 2]))}
        lat, lon = point(rng)
        stops.append(routing.Stop(visit_id, lat, lon, SHANGHAI, **window))
    return stops


def shift_for(rng: random.Random, agent_id: int = 1) -> routing.Shift:
    return routing.Shift(
        agent_id,
        point(rng),
        datetime.combine(DAY, time(9), ZONE),
        datetime.combine(DAY, time(21), ZONE),
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def baseline_day(shift: routing.Shift, stops: list[routing.Stop]) -> baseline.RouteProposal:
    """The old heuristic on the same day (windows as aware datetimes, lawful hours unknown)."""

    def moment(value: time | None) -> datetime | None:
        return None if value is None else datetime.combine(DAY, value, ZONE)

    return baseline.propose_route(
        shift.start,
        shift.start_time,
        [
            baseline.Stop(s.visit_id, s.lat, s.lon, moment(s.window_start), moment(s.window_end))
            for s in stops
        ],
        speed_kmh=TRAVEL.speed_kmh,
        service_time=timedelta(seconds=TRAVEL.service_s),
        road_factor=TRAVEL.road_factor,
    )


def unlawful(plan: baseline.StopPlan, stop: routing.Stop, shift: routing.Shift) -> bool:
    """True when the old heuristic's stop breaks a rule the new proposal keeps."""
    assert plan.arrival is not None and plan.departure is not None
    begin = (plan.arrival + timedelta(seconds=plan.wait_s)).astimezone(ZONE)
    end = plan.departure.astimezone(ZONE)
    if begin.date() != DAY or end.date() != DAY or end > shift.end_time:
        return True
    if not (LAW.start <= begin.time() and end.time() <= LAW.end):
        return True
    return stop.window_end is not None and begin.time() > stop.window_end


def compare(days: int, seed: int) -> None:
    rng = random.Random(seed)
    timings: list[float] = []
    new_km = old_km = old_same_km = 0.0
    served_new = broken_old = 0
    for _ in range(days):
        shift, stops = shift_for(rng), stops_for(rng, 25)
        began = clock.perf_counter()
        proposal = routing.propose_route(shift, stops, DAY, LAW, TRAVEL, ROUTE_BUDGET)
        timings.append(clock.perf_counter() - began)
        old = baseline_day(shift, stops)
        by_id = {s.visit_id: s for s in stops}
        broken_old += sum(1 for p in old.stops if unlawful(p, by_id[p.visit_id], shift))
        # The same stops the new proposal schedules, ordered by the old heuristic.
        kept = [by_id[s.visit_id] for s in proposal.stops]
        new_km += proposal.total_distance_m / 1000
        old_km += old.total_distance_m / 1000
        old_same_km += baseline_day(shift, kept).total_distance_m / 1000
        served_new += len(proposal.stops)
    total = days * 25
    print(
        f"route proposal, 25 stops, {days} days: p50 {statistics.median(timings) * 1000:.0f} ms, "
        f"p95 {percentile(timings, 0.95) * 1000:.0f} ms, max {max(timings) * 1000:.0f} ms "
        "(target p95 < 1 s)"
    )
    print(
        f"of {total} stops: new schedules {served_new}, all lawful, and reports the rest "
        f"unscheduled; the old heuristic placed all {total}, {broken_old} of them outside a "
        "window, the lawful hours or the agent's day"
    )
    print(
        f"total travel on the same stops (those the new proposal schedules): new "
        f"{new_km:,.1f} km, old {old_same_km:,.1f} km, ratio {new_km / old_same_km:.3f}"
    )
    print(
        f"total travel as proposed: new {new_km:,.1f} km, old {old_km:,.1f} km (all stops, "
        f"unlawful ones included), ratio {new_km / old_km:.3f}"
    )


def assignment(seed: int) -> None:
    rng = random.Random(seed)
    shifts = [shift_for(rng, 100 + i) for i in range(20)]
    shifts = [
        routing.Shift(s.agent_id, s.start, s.start_time.replace(hour=8), s.end_time) for s in shifts
    ]
    stops = stops_for(rng, 500)
    began = clock.perf_counter()
    proposal = routing.propose_assignment(
        shifts,
        stops,
        DAY,
        LAW,
        TRAVEL,
        ASSIGN_BUDGET,
        balance_slack=DEFAULTS["ROUTE_BALANCE_SLACK"],
    )
    elapsed = clock.perf_counter() - began
    loads = [len(r.route.stops) for r in proposal.routes]
    km = sum(r.route.total_distance_m for r in proposal.routes) / 1000
    print(
        f"assignment, 500 visits over 20 agents: {elapsed:.2f} s (target < 10 s); "
        f"{sum(loads)} assigned, {len(proposal.unassigned)} unassigned, loads {min(loads)}-"
        f"{max(loads)} (cap {proposal.capacity}), {km:,.1f} km"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    compare(args.days, args.seed)
    assignment(args.seed)


if __name__ == "__main__":
    main()
