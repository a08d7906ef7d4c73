"""Planning typed-ID comparisons: a budget per borrower, none without the card."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from sync.compliance import ID_CHECK_LIMIT_REACHED, ID_NOT_COMPARED
from sync.identity import id_verification, plan_id_checks
from sync.records import CaseFacts, IncomingRecord, VisitFacts

AGENT = 7
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
# visit id -> (case id, borrower id): visits 1 and 2 are two visits to case 10; visit 3 is
# another case (11) of the same borrower; visit 4 another borrower's.
VISITS = {1: (10, 500), 2: (10, 500), 3: (11, 500), 4: (12, 600)}


def _visit(visit_id: int, agent_id: int = AGENT) -> VisitFacts:
    case_id, _ = VISITS[visit_id]
    return VisitFacts(
        id=visit_id,
        case=CaseFacts(id=case_id, time_zone="Asia/Shanghai"),
        agent_id=agent_id,
        status="planned",
        visit_date=date(2026, 11, 24),
    )


def _check(n: int, visit_id: int) -> IncomingRecord:
    return IncomingRecord.create(
        id=f"00000000-0000-4000-8000-{n:012d}",
        kind="id_confirmation",
        visit_id=visit_id,
        device_seq=n,
        recorded_at=NOW,
        body={"confirmation_kind": "borrower_identity"},
    )


def plan(checks, *, used=None, held=(1, 2, 3, 4), limit=2, visits=None, stored=()):
    records = [_check(n, visit_id) for n, visit_id in enumerate(checks, start=1)]
    result = plan_id_checks(
        records,
        {r.id: "12345X" for r in records},
        visits or {v: _visit(v) for v in VISITS},
        stored,
        agent_id=AGENT,
        card_held=held,
        borrower_of={v: borrower for v, (_, borrower) in VISITS.items()},
        checks_used=used or {},
        limit=limit,
    )
    outcome = {}
    for n, record in enumerate(records, start=1):
        if record.id in result.compare:
            outcome[n] = result.compare[record.id]
        else:
            outcome[n] = result.refused.get(record.id)
    return outcome


@pytest.mark.parametrize(
    ("checks", "options", "expected"),
    [
        # Two visits to one case share the borrower's budget (it used to be per visit).
        ([1, 2, 2], {}, {1: 10, 2: 10, 3: ID_CHECK_LIMIT_REACHED}),
        # So do the borrower's other cases; another borrower has a budget of its own.
        ([1, 3, 3, 4], {}, {1: 10, 2: 11, 3: ID_CHECK_LIMIT_REACHED, 4: 12}),
        # Checks already made in the period count.
        ([2], {"used": {500: 2}}, {1: ID_CHECK_LIMIT_REACHED}),
        ([4], {"used": {500: 2}}, {1: 12}),
        # No card, no comparison, and the budget is not spent on it.
        ([1, 2, 2], {"held": (2,)}, {1: ID_NOT_COMPARED, 2: 10, 3: 10}),
        # Already stored, or never this agent's visit: nothing at all.
        ([1], {"stored": ("00000000-0000-4000-8000-000000000001",)}, {1: None}),
        ([1], {"visits": {1: _visit(1, agent_id=99)}}, {1: None}),
    ],
)
def test_plan_id_checks(checks, options, expected):
    assert plan(checks, **options) == expected


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ([], "match"),
        (["id_mismatch"], "mismatch"),
        (["id_unverifiable"], "unverifiable"),
        (["id_check_limit_reached"], "limit_reached"),
        (["id_not_compared", "visit_reassigned"], "not_compared"),
    ],
)
def test_id_verification_names_why_nothing_was_compared(codes, expected):
    outcome = {"status": "flagged", "flags": [{"code": code} for code in codes]}
    body = {"confirmation_kind": "borrower_identity"}
    assert id_verification("id_confirmation", body, outcome) == expected
