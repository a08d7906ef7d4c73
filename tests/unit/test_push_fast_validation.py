"""The msgspec fast path of push validation decides exactly as the marshmallow path does.

server/services/push_fast.fast_check may only ever answer what
push_validation.check_record answers: the same accepted record (body keys in order, value
types, digest, typed ID characters) or nothing, leaving rejections to marshmallow. Both are
fed the golden push corpus and Hypothesis records, valid and broken.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.services import push_fast, sync_push
from server.services.push_fast import fast_check
from server.services.push_validation import CheckedRecord, check_record
from sync.contacts import OUTCOMES, PHONE_CALL, SMS
from sync.visits import VISIT_OUTCOMES
from tests.golden.push.driver import run_profile

SHA = "ab" * 32


def shape(checked: CheckedRecord) -> tuple:
    """Everything a CheckedRecord carries, with each value's type and exact spelling."""
    record = checked.record
    if record is None:
        return (checked.sent_id, checked.typed_id, checked.rejection)
    return (
        checked.sent_id,
        checked.typed_id,
        record.id,
        record.kind,
        record.visit_id,
        record.device_seq,
        repr(record.recorded_at),
        record.digest,
        repr(list(record.body.items())),
    )


def assert_same(raw: Any) -> CheckedRecord | None:
    """The fast answer, after checking it is the marshmallow answer (or no answer)."""
    slow = check_record(copy.deepcopy(raw))
    fast = fast_check(copy.deepcopy(raw))
    if fast is not None:
        assert slow.rejection is None, (raw, slow.rejection)
        assert shape(fast) == shape(slow), raw
    return fast


def envelope(kind: str, body: dict, **extra: Any) -> dict:
    return {
        "id": str(uuid.UUID(int=12345)),
        "kind": kind,
        "visit_id": 7,
        "device_seq": 3,
        "recorded_at": "2026-03-02T10:15:00+03:00",
        "body": body,
        **extra,
    }


# -- the golden corpus ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_records(tmp_path_factory) -> list[Any]:
    """Every record the golden corpus sends to validation under the default profile."""
    seen: list[Any] = []

    def recording(raw: Any) -> CheckedRecord | None:
        seen.append(copy.deepcopy(raw))
        return fast_check(raw)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sync_push, "fast_check", recording)
        for _ in run_profile(tmp_path_factory.mktemp("golden"), "default"):
            pass
    return seen


def test_golden_corpus_records_get_the_same_answer_on_both_paths(corpus_records):
    answered = [assert_same(raw) for raw in corpus_records]
    accepted = [raw for raw in corpus_records if check_record(raw).rejection is None]
    fast = [a for a in answered if a is not None]
    kinds = {a.record.kind for a in fast}
    assert len(corpus_records) > 500
    assert kinds == {"visit_report", "id_confirmation", "agreement", "contact"}
    print(f"{len(fast)} of {len(accepted)} accepted corpus records took the fast path")
    # The fast path is the common case, not a rarity.
    assert len(fast) >= 0.9 * len(accepted)


# -- hand-picked edges ---------------------------------------------------------------------

REPORT = {"arrived_at": "2026-03-02T10:00:00+03:00", "outcome": "met_borrower"}
CALL = {"channel": PHONE_CALL, "occurred_at": "2026-03-02T10:00:00Z"}


@pytest.mark.parametrize(
    "raw",
    [
        envelope("visit_report", REPORT),
        envelope("visit_report", {**REPORT, "notes": "a\x00b"}),
        envelope("visit_report", {**REPORT, "notes": "\ud800"}),
        envelope("visit_report", {**REPORT, "notes": "x" * 4001}),
        envelope("visit_report", {**REPORT, "promise_amount": "12.5"}),
        envelope("visit_report", {**REPORT, "promise_amount": 12}),
        envelope("visit_report", {**REPORT, "promise_amount": 12.25}),
        envelope("visit_report", {**REPORT, "promise_amount": "12.345"}),
        envelope("visit_report", {**REPORT, "promise_amount": "1e15"}),
        envelope("visit_report", {**REPORT, "promise_amount": "-1"}),
        envelope("visit_report", {**REPORT, "promise_amount": "NaN"}),
        envelope("visit_report", {**REPORT, "promise_amount": True}),
        envelope("visit_report", {**REPORT, "promise_date": "1999-12-31"}),
        envelope("visit_report", {**REPORT, "promise_date": "20260301"}),
        envelope("visit_report", {**REPORT, "arrived_at": "1899-12-31T23:00:00+00:00"}),
        envelope("visit_report", {**REPORT, "arrived_at": "2026-03-02T10:00:00"}),
        envelope("visit_report", {**REPORT, "arrived_at": "2026-03-02 10:00Z"}),
        envelope("visit_report", {**REPORT, "location": {"lat": 1, "lon": 2}}),
        envelope("visit_report", {**REPORT, "location": {"lat": "1", "lon": 2}}),
        envelope("visit_report", {**REPORT, "location": {"lat": 91, "lon": 2}}),
        envelope("visit_report", {**REPORT, "location": None}),
        envelope("visit_report", {**REPORT, "third_party_present": "yes"}),
        envelope("visit_report", {**REPORT, "attachments": [SHA + "\n"]}),
        envelope("visit_report", {**REPORT, "attachments": [SHA] * 21}),
        envelope("visit_report", {**REPORT, "extra": 1}),
        envelope("visit_report", {**REPORT, "x\x01": 1}),
        envelope("visit_report", {**REPORT, "\ud800": 1}),
        envelope("visit_report", {**REPORT, "outcome": "\ud800"}),
        envelope("visit_report", {**REPORT, "location": {"lat": 1, "lon": 2, "\udfff": 3}}),
        envelope("visit_report", REPORT, **{"\ud800": 1}),
        {**envelope("visit_report", REPORT), "kind": "\ud800"},
        envelope("visit_report", REPORT, id=str(uuid.UUID(int=5)).upper()),
        envelope("visit_report", REPORT, id="not-a-uuid"),
        envelope("visit_report", REPORT, visit_id=2**63),
        envelope("visit_report", REPORT, visit_id=True),
        envelope("visit_report", REPORT, visit_id=7.0),
        envelope("visit_report", REPORT, device_seq=-1),
        envelope("visit_report", REPORT, extra=None),
        envelope("nonsense", REPORT),
        envelope("id_confirmation", {"confirmation_kind": "borrower_identity"}),
        envelope(
            "id_confirmation", {"confirmation_kind": "borrower_identity", "id_last6": "A1b2C3"}
        ),
        envelope(
            "id_confirmation", {"confirmation_kind": "borrower_identity", "id_last6": "A1b2C3\n"}
        ),
        envelope(
            "id_confirmation", {"confirmation_kind": "agent_credential", "badge_number": "B-1"}
        ),
        envelope(
            "id_confirmation",
            {"confirmation_kind": "agent_credential", "badge_number": "B", "id_last6": "123456"},
        ),
        envelope(
            "contact", {"channel": SMS, "occurred_at": "2026-03-02T10:00:00Z", "outcome": "sent"}
        ),
        envelope(
            "contact",
            {"channel": SMS, "occurred_at": "2026-03-02T10:00:00Z", "outcome": "answered"},
        ),
        envelope(
            "contact",
            {
                "channel": PHONE_CALL,
                "occurred_at": "2026-03-02T10:00:00Z",
                "outcome": sorted(OUTCOMES[PHONE_CALL])[0],
                "duration_s": 86_401,
            },
        ),
        *(
            envelope("contact", {**CALL, "outcome": outcome, **promise})
            for outcome in ("promise", "reached")
            for promise in (
                {"promise_amount": "100.5", "promise_date": "2026-03-10"},
                {"promise_amount": "100.5"},
                {"promise_date": "2026-03-10"},
                {"promise_amount": "0", "promise_date": "2026-03-10"},
                {"promise_amount": None, "promise_date": None},
            )
        ),
        "not an object",
        ["a", "list"],
    ],
)
def test_edges_get_the_same_answer_on_both_paths(raw):
    assert_same(raw)


def test_a_plain_report_takes_the_fast_path_with_typed_values():
    raw = envelope("visit_report", {**REPORT, "promise_amount": "12.5"})
    fast = assert_same(raw)
    assert fast is not None and fast.record is not None
    assert str(fast.record.body["promise_amount"]) == "12.50"
    assert fast.record.body["arrived_at"].utcoffset() == timedelta(hours=3)


# -- Hypothesis ----------------------------------------------------------------------------

offsets = st.sampled_from([UTC, timezone(timedelta(hours=3)), timezone(timedelta(hours=-5))])
moments = st.one_of(
    st.datetimes(datetime(1900, 1, 2), datetime(2100, 12, 30), timezones=offsets),
    st.datetimes(datetime(1900, 1, 2), datetime(2100, 12, 30)),  # no offset: UTC
).map(lambda d: d.isoformat())
clean = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=12)
# Sometimes control characters, escapes and lone surrogates (which st.text never draws).
texts = st.one_of(
    clean, st.text(max_size=6), st.sampled_from(["\ud800", "a\udfffb", "\x00", "\x1b[31m"])
)
odd = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
    st.sampled_from(["2026-13-01", "2026-03-02T25:00:00Z", "1e3", "NaN", "0.001", "1899-01-01"]),
    st.sampled_from([0, -1, 2**63 - 1, 2**63, -(2**63) - 1, 10**15, "x" * 5000, "", " 1.5"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(texts, st.integers(), max_size=2),
)
amounts = st.one_of(
    st.decimals(min_value=0, max_value=10**15 - 1, places=2, allow_nan=False).map(str),
    st.integers(min_value=0, max_value=10**15 - 1),
)
days = st.dates(date(2000, 1, 1), date(2100, 12, 31)).map(lambda d: d.isoformat())
contact_channel = st.sampled_from([PHONE_CALL, SMS])

report_bodies = st.fixed_dictionaries(
    {"arrived_at": moments, "outcome": st.sampled_from(VISIT_OUTCOMES)},
    optional={
        "departed_at": st.one_of(st.none(), moments),
        "contacted_at": st.one_of(st.none(), moments),
        "promise_amount": st.one_of(st.none(), amounts),
        "promise_date": st.one_of(st.none(), days),
        "notes": st.one_of(st.none(), clean),
        "location": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {
                    "lat": st.floats(-90, 90) | st.integers(-90, 90),
                    "lon": st.floats(-180, 180),
                },
                optional={"accuracy_m": st.floats(0, 100_000)},
            ),
        ),
        "third_party_present": st.booleans(),
        "debt_discussed_with_third_party": st.booleans(),
        "attachments": st.lists(st.sampled_from([SHA, "cd" * 32]), max_size=3),
    },
)
confirmation_bodies = st.fixed_dictionaries(
    {"confirmation_kind": st.sampled_from(["borrower_identity", "agent_credential"])},
    optional={
        "id_last6": st.sampled_from(["A1b2C3", "999999"]),
        "badge_number": st.text("AB-12", min_size=1, max_size=8),
        "borrower_acknowledged": st.booleans(),
        "attachments": st.lists(st.just(SHA), max_size=6),
    },
)
contact_bodies = contact_channel.flatmap(
    lambda channel: st.fixed_dictionaries(
        {
            "channel": st.just(channel),
            "occurred_at": moments,
            "outcome": st.sampled_from(OUTCOMES[channel]),
        },
        optional={
            "direction": st.sampled_from(["outbound", "inbound"]),
            "duration_s": st.one_of(st.none(), st.integers(0, 86_400)),
            "notes": st.one_of(st.none(), clean),
            "external_ref": st.one_of(st.none(), st.text("abc123", min_size=1, max_size=9)),
            "promise_amount": st.one_of(st.none(), amounts),
            "promise_date": st.one_of(st.none(), days),
        },
    )
)
agreement_bodies = st.fixed_dictionaries(
    {
        "agreement_id": st.just(str(uuid.UUID(int=12345))),
        "case_id": st.integers(1, 2**63 - 1),
        "visit_id": st.integers(1, 100),
        "currency": st.sampled_from(["EUR", "KES"]),
        "total_amount": amounts,
        "installments": st.lists(
            st.fixed_dictionaries({"due_date": days, "amount": amounts}), min_size=1, max_size=3
        ),
        "template_id": clean,
        "template_version": st.integers(0, 3),
        "borrower_signature_sha256": st.just(SHA),
        "agent_signature_sha256": st.just(SHA),
        "signed_at": moments,
        "signed_lat": st.floats(-90, 90) | st.integers(-90, 90),
        "signed_lon": st.floats(-180, 180).map(str),
        "content_hash": st.just(SHA),
    }
)
records = st.one_of(
    report_bodies.map(lambda b: envelope("visit_report", b)),
    confirmation_bodies.map(lambda b: envelope("id_confirmation", b)),
    contact_bodies.map(lambda b: envelope("contact", b)),
    agreement_bodies.map(lambda b: envelope("agreement", b)),
)


@st.composite
def mutated(draw) -> Any:
    """A record with one thing broken: a field dropped, added or given an odd value."""
    raw = draw(records)
    body = raw["body"]
    nested = [body.get("location"), *(body.get("installments") or [])[:1]]
    targets = [raw, body, *(n for n in nested if isinstance(n, dict))]
    target = draw(st.sampled_from(targets))
    action = draw(st.sampled_from(["drop", "add", "replace"]))
    keys = sorted(target)
    if action == "drop" and keys:
        target.pop(draw(st.sampled_from(keys)))
    elif action == "add":
        target[draw(texts)] = draw(odd)
    elif keys:
        target[draw(st.sampled_from(keys))] = draw(odd)
    return raw


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records)
def test_generated_records_get_the_same_answer_on_both_paths(raw):
    fast = assert_same(raw)
    if check_record(raw).rejection is None:
        assert fast is not None, raw  # a plainly valid record never needs marshmallow


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_broken_records_get_the_same_answer_on_both_paths(raw):
    assert_same(raw)


def test_every_kind_has_a_fast_decoder():
    assert set(push_fast._RECORDS) == {"visit_report", "id_confirmation", "agreement", "contact"}
