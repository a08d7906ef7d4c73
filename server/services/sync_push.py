"""Push: store what the field recorded, reconciled against what changed on the server.

One batch is stored in one transaction. Its answer is written, and accounted in the
exposure ledger, after that commit with no write lock held (api.sync: commits_first), so a
second device's push stores meanwhile. Every record gets its own outcome; a malformed
record is rejected on its own and never costs the good records beside it. The decision for
each record is sync.reconcile's; this module reads the facts, asks, stores and answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

import msgspec
import sqlite_utils

from schemas.fast_dump import dumped, written_type
from schemas.sync import OutcomeSchema
from server import memo
from server.clock import to_iso
from server.errors import BatchTooLarge
from server.runtime import Caller, Runtime
from server.services import exposure
from server.services.attachments import note_references
from server.services.contacts import record_synced_contacts
from server.services.disclosure import agent_card_facts
from server.services.push_facts import (
    Replay,
    batch_visits,
    known_replays,
    server_facts,
)
from server.services.push_fast import fast_check
from server.services.push_validation import (
    CheckedRecord,
    check_record,
    plain_json,
    raw_digest,
    rejection_digest,
)
from server.services.visit_outcomes import apply_reports
from server.storage import sync as sync_rows
from server.storage.connection import transaction
from server.storage.sync import stored_json
from server.timing import phase
from sync.contacts import CONTACT
from sync.flag_views import agent_may_learn_id_result, agent_outcome_dict, agent_outcome_wire
from sync.identity import id_verification
from sync.receipts import sign_receipt
from sync.reconcile import REPLAYED_MESSAGE, blobs_of, reconcile_batch
from sync.records import RECORD_KINDS, IncomingRecord, RecordOutcome, ServerFacts


@dataclass(frozen=True)
class PreparedPush:
    """A batch read and checked before the push's write transaction (see `prepare`)."""

    batch: dict
    digests: list[str | None]
    replays: dict[int, Replay]
    checked: list[CheckedRecord]
    # Each checked record's body as it will be stored, written ahead of the lock
    # (_body_json); None for a record refused on the wire or answered from the store.
    bodies: list[str | None]


def prepare(db: sqlite_utils.Database, rt: Runtime, caller: Caller, batch: dict) -> PreparedPush:
    """Everything of a push that needs no write lock: the batch's size, the replays answered
    from the store (stored records never change), and each other record's wire validation.

    Run before the write transaction, so that two devices pushing at once validate in
    parallel; a record another push stores meanwhile is still answered as a replay by
    reconciliation, under the lock, with the same outcome."""
    principal = caller.principal
    assert principal is not None and principal.device_id is not None
    if len(batch["records"]) > rt.settings["MAX_PUSH_RECORDS"]:
        raise BatchTooLarge(
            f"at most {rt.settings['MAX_PUSH_RECORDS']} records per push", field="records"
        )
    raws = batch["records"]
    digests = [raw_digest(raw) for raw in raws]
    with phase("replays"):
        replays = known_replays(db, principal.user_id, raws, digests)
    with phase("validate"):
        checked = [
            CheckedRecord(str(raw.get("id")))
            if i in replays
            else fast_check(raw) or check_record(raw)
            for i, raw in enumerate(raws)
        ]
    with phase("validate"):
        bodies = [_body_json(c.record) if c.record is not None else None for c in checked]
    return PreparedPush(batch, digests, replays, checked, bodies)


def push(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, prepared: PreparedPush
) -> dict[str, Any]:
    """Reconcile and store a prepared batch of offline records (`prepare`); one outcome
    per record, in order."""
    principal = caller.principal
    assert principal is not None and principal.device_id is not None
    batch, replays, checked = prepared.batch, prepared.replays, prepared.checked
    incoming = [c.record for c in checked if c.record is not None]
    typed = {c.record.id: c.typed_id for c in checked if c.record and c.typed_id}
    now = caller.now
    if not incoming:
        # Nothing to store but the push's own log: one transaction with the answer's
        # ledger entries instead of two commits (an all-replay batch is a phone that did not
        # hear its answer; it is answered as fast as it can be).
        exposure.hold_transaction(db)
    ahead: list[tuple[ServerFacts, list[RecordOutcome]]] = []

    def reconcile_ahead() -> None:
        # Another push holds the write lock: reconcile now, against the facts as they
        # stand; under the lock the facts are read again and these outcomes are kept
        # only if every fact is the same (reconcile_batch is a function of them).
        with phase("facts_ahead"):
            facts = server_facts(
                db, rt, caller, incoming, typed, batch["device_time"], batch_visits(db, incoming)
            )
        with phase("reconcile_ahead"):
            ahead.append((facts, reconcile_batch(incoming, facts, rt.compliance, now)))

    with transaction(db, while_waiting=reconcile_ahead if incoming else None):
        # A batch with nothing to reconcile (every record a replay answered from the store,
        # or refused on the wire) reads no facts: they could change no outcome.
        joined: list[dict] = []
        decided: Iterator[RecordOutcome] = iter(())
        with phase("facts"):
            if incoming:
                joined = batch_visits(db, incoming)
                facts = server_facts(db, rt, caller, incoming, typed, batch["device_time"], joined)
        with phase("reconcile"):
            if incoming:
                decided = iter(_reconciled(incoming, facts, ahead, rt, now))
        # A replay's outcome is read from its stored text only if its answer is not kept
        # (_replayed_answer); storing reads no more of it than that it is a duplicate.
        outcomes = [
            _FROM_STORE if i in replays else _as_sent(c.rejection or next(decided), c.sent_id)
            for i, c in enumerate(checked)
        ]
        with phase("store"):
            case_of = {parts["visit"]["id"]: parts["case"]["id"] for parts in joined}
            receipts, texts = _store(db, rt, caller, prepared, outcomes, case_of)
            if incoming:  # else nothing was stored: no blob, visit or contact moves on
                note_references(db, caller, _referenced_blobs(checked, outcomes))
                # What happened at the door moves the visits on (services/visit_outcomes.py).
                reported = [
                    c.record.visit_id
                    for c, o in zip(checked, outcomes, strict=True)
                    if o.stored and c.record and c.record.kind == "visit_report"
                ]
                apply_reports(db, caller, reported)
                # Calls and messages from the field join the contact log (services/contacts).
                contacts = _stored_of_kind(checked, outcomes, CONTACT)
                record_synced_contacts(db, rt, caller, contacts, case_of)
        confirmed = sync_rows.confirm_purges(
            db, principal.device_id, batch.get("purge_acks") or [], to_iso(now)
        )
        _record_push(db, principal.device_id, batch, now)
        answered = [_answered(c, replays.get(i)) for i, c in enumerate(checked)]
        disclosed = agent_card_facts(
            db, rt, caller, [v for _, v in answered if v is not None], known=joined
        )
    answers = []
    for i, (o, (kind_body, visit_id)) in enumerate(zip(outcomes, answered, strict=True)):
        seen = disclosed.get(visit_id, _NO_FACTS)
        sent_id = checked[i].sent_id
        receipt = receipts.get(sent_id)
        replay = replays.get(i)
        if replay is not None:
            answers.append(_replayed_answer(replay, sent_id, receipt, seen))
        elif i in texts:
            answers.append(_stored_answer(o, kind_body, receipt, seen, texts[i]))
        else:
            answers.append(outcome_out(o, kind_body, receipt, seen))
    return {"server_time": now, "outcomes": answers, "purges_confirmed": confirmed}


def _reconciled(
    incoming: list[IncomingRecord],
    facts: ServerFacts,
    ahead: list[tuple[ServerFacts, list[RecordOutcome]]],
    rt: Runtime,
    now: datetime,
) -> list[RecordOutcome]:
    """reconcile_batch(incoming, facts, ...), or the outcomes reconciled ahead of the lock
    when the facts they were decided on are the facts read under it (_same_facts)."""
    for earlier, outcomes in ahead:
        if _same_facts(earlier, facts):
            return outcomes
    return reconcile_batch(incoming, facts, rt.compliance, now)


def _same_facts(one: ServerFacts, other: ServerFacts) -> bool:
    """Equal, and written the same as JSON: two equal values that read differently (the
    same moment at two UTC offsets, 0.0 and -0.0, 1 and True) are not taken for each
    other. Sets are written in their iteration order, which is the same for the same
    rows read by the same code; should it ever differ, the batch is only reconciled
    again. 0.1-0.2 ms for a batch over 25 visits (repr takes 2 ms)."""
    try:
        return one == other and _FACTS_JSON(one) == _FACTS_JSON(other)
    except (TypeError, msgspec.MsgspecError):
        return False  # a fact msgspec cannot write: reconciled again, under the lock


_FACTS_JSON = msgspec.json.Encoder().encode


_NO_FACTS: frozenset[str] = frozenset()
# What storing reads of a record answered from the store: a duplicate, never stored.
_FROM_STORE = RecordOutcome("", "duplicate", None, REPLAYED_MESSAGE)


# A phone that did not hear a push's answer sends the same batch again, usually seconds
# later, and every record of it is answered from the store (push_facts.known_replays). Its
# answer is a pure function of the stored outcome's text, the record's kind, the id as sent
# and what the agent's card discloses; and it is the push's own answer to the record with
# the replay's status, message and original status. So the push keeps that answer, already
# dumped by OutcomeSchema's compiled plan (fast_dump.dumped, which the answer's dump hands
# on), under that key, and a replay that finds it takes a copy of the containers the ledger
# may remove a fact from (the outcome, its flags). Kept only for kinds whose answer reads no
# body and has no receipt, and outcomes whose details shown to the agent read back from the
# store as they are (JSON's own types; the others never reach an answer). Kept per worker:
# a replay the other worker serves (about half of them under gunicorn's two workers, which
# take connections as they come) builds its answer from the stored text. At most
# REPLAY_ANSWERS_KEPT (about 2.5 KB each with its key: 10 MB per worker; 4,096 answers is
# 40 batches), the oldest dropped first.
REPLAY_ANSWERS_KEPT = 4096
_KEPT_ANSWERS: dict[tuple[str, str, str, frozenset[str]], dict[str, Any]] = {}
_KEPT_KINDS = frozenset({"visit_report", CONTACT})
_WRITTEN_OUTCOME = written_type(OutcomeSchema)


def _stored_answer(
    outcome: RecordOutcome,
    kind_body: tuple[str, Mapping[str, Any]] | None,
    receipt: dict | None,
    disclosed: frozenset[str],
    text: str,
) -> dict[str, Any]:
    """outcome_out(...) for a record this push stores as `text`, dumped; its replay's
    answer is kept (see _KEPT_ANSWERS) when it can be told from this one."""
    data = outcome_out(outcome, kind_body, receipt, disclosed)
    if (
        receipt is not None
        or kind_body is None
        or kind_body[0] not in _KEPT_KINDS
        or outcome.original_status is not None
        or not all(plain_json(flag["details"]) for flag in data["flags"])
    ):
        return data
    data = dumped(OutcomeSchema, data)
    if type(data) is not _WRITTEN_OUTCOME:
        return data
    kept = _WRITTEN_OUTCOME(data)
    kept["flags"] = [dict(flag) for flag in data["flags"]]
    kept["status"] = "duplicate"
    kept["reason"] = None
    kept["message"] = REPLAYED_MESSAGE
    kept["missing_blobs"] = []
    kept["original_status"] = data["status"]
    key = (text, kind_body[0], outcome.record_id, disclosed)
    memo.keep(_KEPT_ANSWERS, key, kept, REPLAY_ANSWERS_KEPT)
    return data


def _replayed_answer(
    replay: Replay, sent_id: str, receipt: dict | None, disclosed: frozenset[str]
) -> dict[str, Any]:
    """outcome_out(...) for a record answered from the store (push_facts.known_replays),
    sent with id `sent_id`: a copy of the answer its push kept, if any (see _KEPT_ANSWERS),
    else built from the stored outcome."""
    kind_body = replay[1]
    if receipt is None:
        kept = _KEPT_ANSWERS.get((replay[3], kind_body[0], sent_id, disclosed))
        if kept is not None:
            copy = _WRITTEN_OUTCOME(kept)
            copy["flags"] = [dict(flag) for flag in kept["flags"]]
            copy["missing_blobs"] = []
            return copy
    return _answer_of(_replayed_wire(replay, sent_id, disclosed), kind_body, receipt, disclosed)


def _replayed_wire(replay: Replay, sent_id: str, disclosed: frozenset[str]) -> dict[str, Any]:
    """agent_outcome_wire(_as_sent(replay_outcome(id, stored_outcome(text)), sent_id),
    disclosed) (sync.reconcile, push_facts) read straight from the stored text, as the pull
    reads its outcomes (flag_views.agent_outcome_dict): building the outcome and its flags
    cost more than the rest of the answer."""
    stored = stored_json(replay[3])
    return agent_outcome_dict(
        {  # sync.reconcile.replay_outcome's fields, with the id as sent
            "record_id": sent_id,
            "status": "duplicate",
            "reason": None,
            "message": REPLAYED_MESSAGE,
            "flags": stored.get("flags", ()),
            "content_hash": stored.get("content_hash"),
            "original_status": stored.get("original_status") or stored["status"],
        },
        disclosed,
    )


def _stored_of_kind(
    checked: list[CheckedRecord], outcomes: list[RecordOutcome], kind: str
) -> list[IncomingRecord]:
    """The records of one kind this push stores."""
    return [
        c.record
        for c, o in zip(checked, outcomes, strict=True)
        if o.stored and c.record is not None and c.record.kind == kind
    ]


def _referenced_blobs(checked: list[CheckedRecord], outcomes: list[RecordOutcome]) -> set[str]:
    """The blobs the records stored by this push reference."""
    return {
        sha256
        for c, outcome in zip(checked, outcomes, strict=True)
        if outcome.stored and c.record is not None
        for sha256 in blobs_of(c.record)
    }


def _answered(
    checked: CheckedRecord, replay: Replay | None
) -> tuple[tuple[str, Mapping[str, Any]] | None, int | None]:
    """The (kind, body) and visit id an outcome answers, from the store for a replay. The
    body is only read (sync.identity.id_verification): the record's own, not a copy."""
    if replay is not None:
        return replay[1], replay[2]
    if checked.record is not None:
        return (checked.record.kind, checked.record.body), checked.record.visit_id
    return None, None


def _as_sent(outcome: RecordOutcome, sent_id: str) -> RecordOutcome:
    """Answer with the id exactly as the device sent it (say, an upper-case UUID): clients
    match outcomes to records by that string. The store keys records by the canonical form."""
    return outcome if outcome.record_id == sent_id else replace(outcome, record_id=sent_id)


def _record_push(db: sqlite_utils.Database, device_id: str, batch: dict, now: datetime) -> None:
    queue = batch.get("queue") or {}
    oldest = queue.get("oldest_recorded_at")
    sync_rows.record_push(
        db,
        {
            "device_id": device_id,
            "now": to_iso(now),
            "device_time": to_iso(batch["device_time"]),
            "clock_skew_s": round((batch["device_time"] - now).total_seconds(), 3),
            "queued_count": queue.get("pending"),
            "oldest_queued_at": to_iso(oldest) if oldest else None,
        },
    )


def _store(
    db: sqlite_utils.Database,
    rt: Runtime,
    caller: Caller,
    prepared: PreparedPush,
    outcomes: list[RecordOutcome],
    case_of: dict[int, int],
) -> tuple[dict[str, dict[str, Any]], dict[int, str]]:
    """Insert stored records (and receipts); log rejections; return receipts by record id
    as sent, and the stored outcomes' texts by batch index. `case_of`: the case of each of
    the batch's visits."""
    principal = caller.principal
    assert principal is not None
    checked, digests, replays = prepared.checked, prepared.digests, prepared.replays
    raws = prepared.batch["records"]
    now = to_iso(caller.now)
    receipts: dict[str, dict[str, Any]] = {}
    texts: dict[int, str] = {}
    rows: list[tuple[Any, ...]] = []
    rejections: list[dict[str, Any]] = []
    for index, outcome in enumerate(outcomes):
        record = checked[index].record
        if outcome.stored and record is not None:
            texts[index] = _outcome_json(outcome)
            rows.append(  # in sync_rows.RECORD_COLUMNS order
                (
                    record.id,
                    record.kind,
                    principal.user_id,
                    principal.device_id,
                    record.visit_id,
                    case_of[record.visit_id],
                    record.device_seq,
                    to_iso(record.recorded_at),
                    now,
                    record.digest,
                    outcome.status,
                    texts[index],
                    prepared.bodies[index],
                    digests[index],
                )
            )
            if record.kind == "agreement" and outcome.content_hash:
                receipt = sign_receipt(
                    rt.keys.private_key, record.id, outcome.content_hash, caller.now
                ).to_dict()
                sync_rows.insert_receipt(db, receipt)
                receipts[outcome.record_id] = receipt
        elif outcome.status == "rejected":
            rejections.append(
                {
                    "record_id": outcome.record_id[:64],
                    "digest": record.digest if record else rejection_digest(raws[index]),
                    "agent_id": principal.user_id,
                    "device_id": principal.device_id,
                    "reason": outcome.reason or "rejected",
                    "message": outcome.message[:500],
                    "received_at": now,
                    "kind": _sent_kind(raws[index]),
                }
            )
    if rows:
        sync_rows.insert_record_values(db, rows)
    if rejections:
        sync_rows.insert_rejections(db, rejections)
    # Only an agreement has a receipt (stored above with it, under its id): a replay read
    # from the store as another kind is not looked up.
    replayed = {
        (checked[i].record.id if checked[i].record else checked[i].sent_id.lower()): (
            checked[i].sent_id
        )
        for i, o in enumerate(outcomes)
        if o.status == "duplicate" and (i not in replays or replays[i][1][0] == "agreement")
    }
    for agreement_id, receipt in sync_rows.receipts(db, list(replayed)).items():
        receipts[replayed[agreement_id]] = receipt
    return receipts, texts


def _sent_kind(raw: Any) -> str | None:
    """The kind a refused record was sent as, when it is one Doorstep knows (else None: an
    unknown kind may be why it was refused, and is not worth keeping)."""
    kind = raw.get("kind") if isinstance(raw, dict) else None
    return kind if isinstance(kind, str) and kind in RECORD_KINDS else None


def _body_json(record: IncomingRecord) -> str:
    """The body as stored: JSON with sorted keys, datetimes in the store's format
    (server.clock.to_iso), dates as ISO text and any other non-JSON value as its text."""
    # _plain(dict(record.body)), without copying the body first.
    plain = {
        key: item if type(item) in _JSON_LEAVES else _plain(item)
        for key, item in record.body.items()
    }
    try:
        return _SORTED_JSON(plain).decode("utf-8")
    except (TypeError, UnicodeEncodeError, msgspec.MsgspecError):
        # A lone surrogate or a NaN, which msgspec refuses: the standard library writes it.
        return json.dumps(plain, sort_keys=True)


def _outcome_json(outcome: RecordOutcome) -> str:
    """The stored outcome: its to_dict, as JSON (flag details are plain JSON values)."""
    data = outcome.to_dict()
    try:
        return _JSON(data).decode("utf-8")
    except (TypeError, UnicodeEncodeError, msgspec.MsgspecError):
        return json.dumps(data)


_SORTED_JSON = msgspec.json.Encoder(order="sorted").encode
_JSON = msgspec.json.Encoder().encode


def _plain(value: Any) -> Any:
    """`value` with only JSON's own types left (what msgspec writes as json.dumps reads)."""
    kind = type(value)
    if kind in _JSON_LEAVES:
        return value
    if kind is datetime:  # the common case, first (isinstance below takes subclasses)
        return to_iso(value)
    if kind is dict:
        return {
            key: item if type(item) in _JSON_LEAVES else _plain(item) for key, item in value.items()
        }
    if kind is list or kind is tuple:
        return [item if type(item) in _JSON_LEAVES else _plain(item) for item in value]
    if isinstance(value, datetime):
        return to_iso(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


_JSON_LEAVES = frozenset((str, int, float, bool, type(None)))


def outcome_out(
    outcome: RecordOutcome,
    kind_body: tuple[str, Mapping[str, Any]] | None,
    receipt: dict | None,
    disclosed: frozenset[str],
) -> dict[str, Any]:
    """The wire form of an outcome as the agent may see it: flags through their agent views
    (sync.flag_views) given what the agent's current card `disclosed`, with its receipt and,
    while the card may be held, the ID-verification result. The store keeps the full one."""
    return _answer_of(agent_outcome_wire(outcome, disclosed), kind_body, receipt, disclosed)


def _answer_of(
    data: dict[str, Any],
    kind_body: tuple[str, Mapping[str, Any]] | None,
    receipt: dict | None,
    disclosed: frozenset[str],
) -> dict[str, Any]:
    """An outcome's agent wire form (flag_views) with its receipt and ID-verification
    result: outcome_out's last step."""
    kind, body = kind_body or (None, None)
    data["receipt"] = receipt
    data["id_verification"] = (
        id_verification(kind, body, data) if agent_may_learn_id_result(disclosed) else None
    )
    return data
