"""The retention purge: per-kind clocks, legal holds, a signed certificate per kind.

One run takes the write lock once: it plans what is due, signs a checkpoint at the last
entry of the ledger's due prefix (the chain's new anchor) and one at the head, signs one
certificate per kind, and only then removes the ledger's prefix, the compliance evidence of
cases idle past their clock, the attachments no kept record references any more, the
personal data of borrowers closed past theirs and the free-text notes about them. The
delete triggers open only for what a certificate signed with the server's key covers, so a
row slipped into the retention gate by hand opens nothing. A dry run plans the same and
changes nothing. Which table each rule reaches: server/domain/retention_coverage.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlite_utils

from server.clock import to_iso
from server.domain.retention import (
    ATTACHMENTS,
    EVIDENCE,
    LEDGER,
    NOTES,
    PERSONAL,
    PERSONAL_COLUMNS,
    PURGED_NAME,
    RetentionRules,
    certificate_is_signed,
    sign_certificate,
)
from server.runtime import Caller, Runtime
from server.services.audit import chain_start, walk
from server.services.checkpoints import checkpoint_at_head, publish_checkpoints, record_checkpoint
from server.services.retention_kinds import (
    plan_attachments,
    plan_notes,
    remove_attachments,
    remove_notes,
)
from server.services.staff_log import log_action
from server.storage import ledger as ledger_rows
from server.storage import retention as retention_rows
from server.storage.connection import transaction
from sync.signing import format_timestamp

Plan = dict[str, Any]


def purge(
    db: sqlite_utils.Database, rt: Runtime, caller: Caller, *, dry_run: bool = False
) -> dict[str, Any]:
    """Remove what is due under each rule (or, dry, list it); returns per-kind reports."""
    rules = RetentionRules.from_settings(rt.settings)
    # Whole seconds, so the cutoffs a certificate states are exactly the ones applied.
    now = caller.now.replace(microsecond=0)
    cutoffs = rules.cutoffs(now)
    if dry_run:
        with ledger_rows.read_snapshot(db):
            plans = _plan(db, rules, now, cutoffs)
        return {"dry_run": True, "now": format_timestamp(now), "kinds": list(plans.values())}
    with transaction(db):
        plans = _plan(db, rules, now, cutoffs)
        _anchor_ledger(db, rt, now, plans[LEDGER])
        head = checkpoint_at_head(db, rt, now, "retention purge")
        for plan in plans.values():
            cutoff = cutoffs[plan["kind"]]
            plan["certificate_id"] = _certify(db, rt, now, plan, cutoff, head["id"])
        ours = rt.keys.public_key
        with retention_rows.certificates_honoured(
            db, lambda certificate: certificate_is_signed(ours, certificate)
        ):
            _purge_ledger(db, plans[LEDGER])
            _purge_evidence(db, plans[EVIDENCE])
            # After the evidence: a blob goes once no kept record references it.
            _as_certified(plans[ATTACHMENTS], remove_attachments(db, plans[ATTACHMENTS]))
            _as_certified(plans[NOTES], remove_notes(db, plans[NOTES], now))
        _purge_personal(db, now, plans[PERSONAL])
        log_action(
            db,
            caller,
            "retention_purge",
            "purge_certificate",
            plans[LEDGER]["certificate_id"],
            {plan["kind"]: plan["count"] for plan in plans.values()},
        )
    publish_checkpoints(db, rt)
    return {
        "dry_run": False,
        "now": format_timestamp(now),
        "checkpoint_id": head["id"],
        "kinds": list(plans.values()),
    }


def list_certificates(
    db: sqlite_utils.Database, after: int, limit: int, kind: str | None
) -> dict[str, Any]:
    """One page of signed purge certificates, optionally of one kind."""
    items = retention_rows.list_certificates(db, after, limit, kind)
    return {"items": items, "next_after": items[-1]["id"] if len(items) == limit else None}


def _plan(
    db: sqlite_utils.Database, rules: RetentionRules, now: datetime, cutoffs: dict[str, datetime]
) -> dict[str, Plan]:
    def plan(kind: str) -> Plan:
        return {
            "kind": kind,
            "rule": rules.rule_text(kind),
            "cutoff": format_timestamp(cutoffs[kind]),
        }

    evidence = _plan_evidence(db, to_iso(cutoffs[EVIDENCE]))
    return {
        LEDGER: {**plan(LEDGER), **_plan_ledger(db, to_iso(cutoffs[LEDGER]), rules.ledger_cap)},
        EVIDENCE: {**plan(EVIDENCE), **evidence},
        PERSONAL: {**plan(PERSONAL), **_plan_personal(db, to_iso(cutoffs[PERSONAL]))},
        ATTACHMENTS: {**plan(ATTACHMENTS), **plan_attachments(db, rules, now, evidence["ids"])},
        NOTES: {**plan(NOTES), **plan_notes(db, to_iso(cutoffs[NOTES]), evidence["ids"])},
    }


def _plan_ledger(db: sqlite_utils.Database, cutoff: str, cap: int) -> Plan:
    """The chain can only lose a prefix: up to the cutoff, stopping before held entries, and
    at most `cap` entries a run, so the write lock is held for seconds, not minutes."""
    anchor = ledger_rows.anchor(db)
    start = anchor["start_seq"] if anchor else 0
    due_end = max(start, ledger_rows.prefix_older_than(db, cutoff))
    held = ledger_rows.first_held_seq(db, due_end)
    allowed_end = due_end if held is None else max(start, held - 1)
    end = min(allowed_end, start + cap) if cap > 0 else allowed_end
    count = end - start
    details = {
        "entries": count,
        "from_seq": start + 1 if count else None,
        "to_seq": end if count else None,
        "held_back_from_seq": held,
        "entries_held_back": due_end - allowed_end,
        "entries_left_for_next_run": allowed_end - end,
    }
    return {"count": count, "details": details, "ids": []}


def _plan_evidence(db: sqlite_utils.Database, cutoff: str) -> Plan:
    cases = retention_rows.evidence_due_cases(db, cutoff)
    held = len(retention_rows.evidence_due_cases(db, cutoff, ignore_holds=True)) - len(cases)
    counts = retention_rows.count_evidence(db, cases)
    details = {"cases": len(cases), **counts, "cases_held": held}
    return {"count": sum(counts.values()), "details": details, "ids": cases}


def _plan_personal(db: sqlite_utils.Database, cutoff: str) -> Plan:
    borrowers = retention_rows.personal_due_borrowers(db, cutoff, PURGED_NAME)
    all_due = retention_rows.personal_due_borrowers(db, cutoff, PURGED_NAME, ignore_holds=True)
    details = {
        "borrowers": len(borrowers),
        "borrowers_held": len(all_due) - len(borrowers),
        "columns": sorted(PERSONAL_COLUMNS),
    }
    return {"count": len(borrowers), "details": details, "ids": borrowers}


def _anchor_ledger(db: sqlite_utils.Database, rt: Runtime, now: datetime, plan: Plan) -> None:
    """Check the prefix and its link onward, sign its last entry and anchor the chain there."""
    end = plan["details"]["to_seq"]
    if not plan["count"]:
        return
    start_seq, start_hash, problem = chain_start(db, rt)
    if problem is None:
        report = walk(db, start_seq, start_hash, upto_seq=end + 1)
        if not report.intact or report.head_seq < end:
            problem = report.problem or f"entries after {report.head_seq} are missing"
    if problem:
        # Removing a broken prefix would destroy the evidence of tampering: keep it.
        plan["details"].update(skipped=f"ledger not intact: {problem}", entries=0)
        plan["details"].update(from_seq=None, to_seq=None)
        plan["count"] = 0
        return
    end_hash = ledger_rows.hash_at(db, end)
    anchor = record_checkpoint(db, rt, now, "retention anchor", position=(end, end_hash))
    ledger_rows.set_anchor(db, anchor["id"], end, end_hash)
    plan["details"]["anchor_checkpoint_id"] = anchor["id"]


def _purge_ledger(db: sqlite_utils.Database, plan: Plan) -> None:
    if plan["count"]:
        removed = ledger_rows.delete_prefix(db, plan["details"]["to_seq"], plan["certificate_id"])
        _as_certified(plan, removed)


def _purge_evidence(db: sqlite_utils.Database, plan: Plan) -> None:
    if plan["ids"]:
        counts = retention_rows.delete_evidence(db, plan["ids"], plan["certificate_id"])
        _as_certified(plan, sum(counts.values()))


def _purge_personal(db: sqlite_utils.Database, now: datetime, plan: Plan) -> None:
    if plan["ids"]:
        erased = retention_rows.erase_personal_data(db, plan["ids"], PERSONAL_COLUMNS, to_iso(now))
        _as_certified(plan, erased)


def _as_certified(plan: Plan, removed: int) -> None:
    """The write lock is held from plan to delete: anything else is a bug, so roll back."""
    if removed != plan["count"]:
        raise RuntimeError(
            f"{plan['kind']}: removed {removed}, the certificate says {plan['count']}"
        )


def _certify(
    db: sqlite_utils.Database,
    rt: Runtime,
    now: datetime,
    plan: Plan,
    cutoff: datetime,
    checkpoint_id: int,
) -> int:
    certificate = sign_certificate(
        rt.keys.private_key,
        kind=plan["kind"],
        rule=plan["rule"],
        cutoff=cutoff,
        removed_count=plan["count"],
        checkpoint_id=checkpoint_id,
        details=plan["details"],
        created_at=now,
    )
    return retention_rows.insert_certificate(db, certificate)
