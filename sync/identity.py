"""Checking who is at the door: the borrower's ID document and the agent's own badge.

The phone never holds the borrower's ID number. The agent types the last six characters of
the document shown; the server compares them with the number on file and keeps only the
result. The comparison is made only while the agent may hold the visit's card, and a bounded
number of times per borrower within a period -- however many visits the borrower's cases
get -- so it cannot be used to guess or confirm a number by trying.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .compliance import (
    BADGE_MISMATCH,
    ID_CHECK_LIMIT_REACHED,
    ID_MISMATCH,
    ID_NOT_COMPARED,
    ID_UNVERIFIABLE,
)
from .records import IncomingRecord, VisitFacts

BORROWER_IDENTITY = "borrower_identity"
AGENT_CREDENTIAL = "agent_credential"
TYPED_ID_LENGTH = 6


def is_agent_credential(kind: str, body: Mapping[str, Any]) -> bool:
    """An id_confirmation recording that the agent showed its badge."""
    return (
        kind == "id_confirmation"
        and isinstance(body, Mapping)
        and body.get("confirmation_kind") == AGENT_CREDENTIAL
    )


def credential_counts(kind: str, body: Mapping[str, Any], flag_codes: Iterable[str]) -> bool:
    """A stored badge confirmation proves the badge was shown, unless it was not this
    agent's badge."""
    return is_agent_credential(kind, body) and BADGE_MISMATCH not in set(flag_codes)


@dataclass(frozen=True)
class IdCheckPlan:
    """Which typed ID checks of a push the server compares, and why it refuses the others."""

    # record id -> the case whose ID number to compare against
    compare: Mapping[str, int] = field(default_factory=dict)
    # record id -> the flag saying why not: ID_CHECK_LIMIT_REACHED or ID_NOT_COMPARED
    refused: Mapping[str, str] = field(default_factory=dict)


def plan_id_checks(
    records: Iterable[IncomingRecord],
    typed: Mapping[str, str],
    visits: Mapping[int, VisitFacts],
    stored_ids: Iterable[str],
    *,
    agent_id: int,
    card_held: Iterable[int],
    borrower_of: Mapping[int, int],
    checks_used: Mapping[int, int],
    limit: int,
) -> IdCheckPlan:
    """Plan the comparisons of a push's typed ID checks.

    `card_held`: ids of the visits whose card the agent may hold now; `borrower_of`: visit
    id -> borrower id; `checks_used`: borrower id -> comparisons made in the current period.
    A check for a visit whose card the agent may not hold is not compared (its answer would
    be withheld, and the budget is not spent on it); beyond `limit` comparisons per borrower
    in the period none is made, whichever visit or case asks. Records in neither map get no
    comparison at all: no typed characters, already stored, or not this agent's visit."""
    stored, held = set(stored_ids), set(card_held)
    used = Counter(checks_used)
    compare: dict[str, int] = {}
    refused: dict[str, str] = {}
    for record in records:
        visit = visits.get(record.visit_id)
        if record.id not in typed or visit is None or record.id in stored:
            continue
        if not visit.was_assigned_to(agent_id):
            continue
        if visit.id not in held:
            refused[record.id] = ID_NOT_COMPARED
            continue
        borrower = borrower_of[visit.id]
        used[borrower] += 1
        if used[borrower] <= limit:
            compare[record.id] = visit.case.id
        else:
            refused[record.id] = ID_CHECK_LIMIT_REACHED
    return IdCheckPlan(compare, refused)


def typed_id_matches(national_id: str | None, typed: str) -> bool | None:
    """Compare the typed characters with the end of the number on file (case ignored);
    None when there is no number to compare with."""
    if not national_id:
        return None
    return national_id[-TYPED_ID_LENGTH:].upper() == typed.upper()


def id_verification(
    kind: str | None, body: Mapping[str, Any] | None, outcome: Mapping
) -> str | None:
    """match / mismatch / unverifiable (no number on file) / limit_reached / not_compared
    for a stored borrower_identity confirmation."""
    if kind != "id_confirmation" or (body or {}).get("confirmation_kind") != BORROWER_IDENTITY:
        return None
    if outcome.get("status") not in ("accepted", "flagged", "duplicate"):
        return None
    codes = {flag["code"] for flag in outcome.get("flags", [])}
    if ID_MISMATCH in codes:
        return "mismatch"
    if ID_CHECK_LIMIT_REACHED in codes:
        return "limit_reached"
    if ID_NOT_COMPARED in codes:
        return "not_compared"
    if ID_UNVERIFIABLE in codes:
        return "unverifiable"
    return "match"
