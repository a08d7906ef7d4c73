"""Accounting a body by groups of alike items (exposure_plan.sighted, the plan compiled to
a walker; ledgering.account_sighted) holds to the plain walk asked item by item
(exposure_plan.walk, ledgering.account_found): the same facts found in the same places,
the same body left to send, the same ledger entries in the same order."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.routes import RouteSchema
from schemas.sync import PullResultSchema, RecordPageSchema
from schemas.visits import CaseSchema, DayOrderResultSchema
from server.api.exposure_plan import Plan, carries, plan_for, sighted, walk
from server.api.ledgering import account_found, account_sighted
from server.runtime import Caller, Principal
from server.services import exposure
from tests.unit.test_exposure_plan import _Record

PLANS = [
    plan_for(schema)
    for schema in (
        PullResultSchema,
        RecordPageSchema,
        RouteSchema,
        DayOrderResultSchema,
        CaseSchema,
        _Record,
    )
]
# Ids that are one dict key but not one subject (1, 1.0, True), record ids one subject
# apart from their case, a contact-log entry's id, and ids no subject has.
SUBJECT_IDS = st.sampled_from([1, 2, 1.0, True, "r-1", "R-1", "contact-3", None, "", [1]])
FACT_VALUES = st.sampled_from([None, "", [], {}, "x", "y", 0, False, [1], {"k": "v"}])


def _bodies(plan: Plan) -> st.SearchStrategy[Any]:
    """Bodies in the plan's shape (and out of it: scalars, lists in lists, missing keys)."""
    keys: dict[str, st.SearchStrategy[Any]] = {}
    if plan.subject is not None:
        keys[plan.subject[0]] = SUBJECT_IDS
    for key, _, _ in plan.facts:
        keys[key] = FACT_VALUES
    for key, _, by_key in plan.keyed:
        keys[key] = st.one_of(
            FACT_VALUES,
            st.dictionaries(st.sampled_from([*by_key, "other"]), FACT_VALUES, max_size=3),
        )
    for key, child in plan.nested:
        keys[key] = st.deferred(lambda child=child: _bodies(child))
    item = st.fixed_dictionaries({}, optional=keys)
    return st.one_of(
        st.none(),
        st.just(3),
        item,
        st.lists(st.one_of(item, st.lists(item, max_size=2)), max_size=4),
    )


@st.composite
def plans_and_bodies(draw) -> tuple[Plan, Any]:
    plan = draw(st.sampled_from(PLANS))
    return plan, draw(_bodies(plan))


def _key(kind: str, subject_id: Any, facts: frozenset[str]) -> Any:
    try:
        hash(subject_id)
    except TypeError:
        return None
    return (kind, type(subject_id), subject_id, facts)


@settings(max_examples=1000, deadline=None)
@given(plans_and_bodies())
def test_sighted_groups_what_walk_finds_in_the_order_walk_finds_it(case):
    plan, body = case
    expected: dict[Any, tuple[str, Any, frozenset[str], list]] = {}
    for item in walk(plan, body):
        facts = frozenset(fact for _, fact, _ in item.places)
        key = _key(item.subject_kind, item.subject_id, facts) or object()
        group = expected.setdefault(key, (item.subject_kind, item.subject_id, facts, []))
        group[3].append((id(item.container), item.places))
    got = [
        (
            group.subject_kind,
            group.subject_id,
            group.facts,
            [
                (id(container), [p for p in places if carries(container.get(p[0]))])
                for container, places in group.items
            ],
        )
        for group in sighted(plan, body)
    ]
    assert got == list(expected.values())
    assert [type(subject_id) for _, subject_id, _, _ in got] == [
        type(subject_id) for _, subject_id, _, _ in expected.values()
    ]


def _subjects(db: Any, kind: str, ids: list[Any]) -> dict[Any, tuple[int, int, int | None]]:
    """ledger.subjects of a made-up store: an id names a borrower by its length."""
    return {i: (len(str(i)) % 3 + 1, 10, None) for i in ids if str(i) not in ("", "2")}


def _recorder(covered: set[str]) -> exposure.Recorder:
    caller = Caller(
        Principal(7, "agent07", "agent", "dev-1"), "req-1", "sync.pull", "127.0.0.1", NOW
    )
    recorder = exposure.Recorder(caller)
    # Borrower 2's card was served (its facts ledgered), record r-1 noted as borrower 3's.
    recorder.add(
        {
            "borrower_id": 2,
            "case_id": 20,
            "visit_id": 200,
            "fields": covered,
            "purpose": "collection",
        }
    )
    recorder.owners[("record", "r-1")] = (3, 30, 300)
    return recorder


NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@settings(max_examples=1000, deadline=None)
@given(plans_and_bodies(), st.data())
def test_accounting_by_groups_sends_and_ledgers_what_item_by_item_does(case, data):
    plan, body = case
    declared = sorted(plan.facts_declared())
    allowed = tuple(data.draw(st.sets(st.sampled_from(declared))))
    covered = data.draw(st.sets(st.sampled_from(declared)))
    assert _both_ways(plan, body, allowed, covered)[0][1] is not None


def _both_ways(plan: Plan, body: Any, allowed: tuple[str, ...], covered: set[str]) -> list:
    """(body left to send, ledger entries) by account_found and by account_sighted, which
    must be the same."""
    rt = SimpleNamespace(disclosure=SimpleNamespace(allowed_fields=lambda role, purpose: allowed))
    answers = []
    with mock.patch.object(exposure.ledger_rows, "subjects", _subjects):
        for account in (
            lambda r, b: account_found(None, rt, r, plan, b, "pull", dict),
            lambda r, b: account_sighted(None, rt, r, plan, b, "pull"),
        ):
            recorder, sent = _recorder(set(covered)), copy.deepcopy(body)
            assert account(recorder, sent) is sent
            answers.append((sent, [(b, e) for b, e in recorder.entries.items()]))
    assert answers[0] == answers[1]
    return answers


def test_a_fact_that_may_not_be_sent_leaves_every_flag_of_the_outcome():
    flags = [
        {"code": "far", "message": None, "details": {}},
        {"code": "", "message": "late", "details": {"grace_min": 30}},
        {"code": None, "message": None, "details": None},
    ]
    body = {"outcomes": [{"record_id": "r-1", "id_verification": None, "flags": flags}]}
    (sent, entries), _ = _both_ways(plan_for(PullResultSchema), body, ("id_result",), set())
    assert sent["outcomes"][0]["flags"] == [
        {"message": None, "details": {}},
        {"code": ""},
        {"code": None, "message": None, "details": None},
    ]
    assert [(borrower, entry["fields"]) for borrower, entry in entries] == [(2, set())]
