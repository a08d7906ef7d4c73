"""The one place that talks to the vehicle-routing solver (PyVRP).

It receives whole metres and seconds and answers orders of jobs, nothing more: whether a
stop is lawful is decided in server/domain/routing.py, which walks every order again.

The model: one vehicle per agent, starting at its own start node no earlier than its start
time and done by its end time; every job optional with a prize far above any detour, so the
solver serves what it can and leaves out what does not fit; routes are open (each ends at a
dummy place that every node reaches at no cost); a job pinned to an agent is made
unreachable for the others through a per-agent distance profile; an optional capacity, one
unit per job, keeps the agents' loads even.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyvrp
from pyvrp.stop import MaxIterations, MaxRuntime, MultipleCriteria

# A detour is at most a few hundred kilometres; serving a job must always beat skipping it.
_PRIZE = 10_000_000
# An agent's own visits are kept before new ones are taken on.
_PINNED_PRIZE = 4 * _PRIZE
# An arc that must never be used: large, yet far from overflowing the solver's int64 sums.
_NEVER = 1_000_000_000


@dataclass(frozen=True)
class Vehicle:
    """One agent: its start node, and its day in seconds from the problem's time origin."""

    start_node: int
    start_s: int
    end_s: int
    capacity: int | None = None


@dataclass(frozen=True)
class Job:
    """One stop: its node, when service may begin (opens..closes) and how long it takes."""

    node: int
    opens_s: int
    closes_s: int
    service_s: int
    vehicle: int | None = None  # only this vehicle may serve it


@dataclass(frozen=True)
class SolverProblem:
    """Square matrices over the nodes (metres, seconds), the vehicles and the jobs."""

    distance: Sequence[Sequence[int]]
    duration: Sequence[Sequence[int]]
    vehicles: Sequence[Vehicle]
    jobs: Sequence[Job]


def solve(
    problem: SolverProblem, *, iterations: int, max_seconds: float, seed: int
) -> list[list[int]]:
    """For each vehicle, the indices of the jobs it serves, in order."""
    if not problem.jobs or not problem.vehicles:
        return [[] for _ in problem.vehicles]
    data = _problem_data(problem)
    stop = MultipleCriteria([MaxIterations(max(1, iterations)), MaxRuntime(max_seconds)])
    result = pyvrp.solve(data, stop=stop, seed=seed, collect_stats=False, display=False)
    orders: list[list[int]] = [[] for _ in problem.vehicles]
    for route in result.best.routes():
        orders[route.vehicle_type()] = [
            activity.idx for activity in route.schedule() if activity.is_client()
        ]
    return orders


def _problem_data(problem: SolverProblem) -> pyvrp.ProblemData:
    """PyVRP's data: locations are the start nodes, the job nodes and one shared end."""
    starts = sorted({v.start_node for v in problem.vehicles})
    nodes = starts + [job.node for job in problem.jobs]
    end = len(nodes)
    depot_of = {node: i for i, node in enumerate(starts)}
    dist = _open_ended(np.asarray(problem.distance, dtype=np.int64)[np.ix_(nodes, nodes)])
    secs = _open_ended(np.asarray(problem.duration, dtype=np.int64)[np.ix_(nodes, nodes)])
    with_load = any(v.capacity is not None for v in problem.vehicles)
    clients = [
        pyvrp.Client(
            location=len(starts) + j,
            delivery=[1] if with_load else [],
            service_duration=job.service_s,
            tw_early=job.opens_s,
            tw_late=job.closes_s,
            prize=_PRIZE if job.vehicle is None else _PINNED_PRIZE,
            required=False,
        )
        for j, job in enumerate(problem.jobs)
    ]
    profiles, profile_of = _profiles(problem, len(starts), dist, secs)
    vehicle_types = [
        pyvrp.VehicleType(
            num_available=1,
            capacity=[v.capacity if v.capacity is not None else len(problem.jobs)]
            if with_load
            else [],
            start_depot=depot_of[v.start_node],
            end_depot=len(starts),
            tw_early=v.start_s,
            tw_late=max(v.start_s, v.end_s),
            start_late=v.start_s,
            profile=profile_of[i],
        )
        for i, v in enumerate(problem.vehicles)
    ]
    return pyvrp.ProblemData(
        locations=[pyvrp.Location(0.0, 0.0) for _ in range(end + 1)],
        clients=clients,
        depots=[pyvrp.Depot(location=i) for i in [*range(len(starts)), end]],
        vehicle_types=vehicle_types,
        distance_matrices=[d for d, _ in profiles],
        duration_matrices=[t for _, t in profiles],
    )


def _open_ended(matrix: np.ndarray) -> np.ndarray:
    """Add the shared end: reached from anywhere for free, left for nowhere."""
    size = matrix.shape[0] + 1
    out = np.full((size, size), _NEVER, dtype=np.int64)
    out[:-1, :-1] = matrix
    out[:, -1] = 0
    np.fill_diagonal(out, 0)
    return out


def _profiles(
    problem: SolverProblem, offset: int, dist: np.ndarray, secs: np.ndarray
) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[int]]:
    """Distance/duration pairs per profile, and each vehicle's profile.

    Without pinned jobs every vehicle shares one profile. Otherwise profile 0 closes every
    pinned job, and each vehicle with pinned jobs gets a profile that opens its own.
    """
    owners = sorted({job.vehicle for job in problem.jobs if job.vehicle is not None})
    if not owners:
        return [(dist, secs)], [0] * len(problem.vehicles)
    columns = {
        owner: [offset + j for j, job in enumerate(problem.jobs) if job.vehicle == owner]
        for owner in owners
    }
    every = [c for cols in columns.values() for c in cols]
    profiles = [_closed(dist, secs, every)]
    profile_of = [0] * len(problem.vehicles)
    for owner in owners:
        others = [c for o, cols in columns.items() if o != owner for c in cols]
        profile_of[owner] = len(profiles)
        profiles.append(_closed(dist, secs, others))
    return profiles, profile_of


def _closed(
    dist: np.ndarray, secs: np.ndarray, columns: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Copies of the matrices in which these locations cannot be reached."""
    d, t = dist.copy(), secs.copy()
    d[:, columns] = _NEVER
    t[:, columns] = _NEVER
    for c in columns:
        d[c, c] = t[c, c] = 0
    return d, t
