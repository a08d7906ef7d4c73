"""Checking who is at the door: the borrower's ID document and the agent's own badge.

The phone never holds the borrower's ID number. The agent types the last six characters of
the document shown; the server compares them with the number on file and keeps only the
result. The comparison is answered for the agent's own visits only and a bounded number of
times, so it cannot be used to guess a number character by character.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .compliance import BADGE_MISMATCH, ID_MISMATCH, ID_UNVERIFIABLE
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


def id_checks_to_answer(
    records: Iterable[IncomingRecord],
    typed: Mapping[str, str],
    visits: Mapping[int, VisitFacts],
    stored_ids: Iterable[str],
    checks_used: Mapping[int, int],
    agent_id: int,
    limit: int,
) -> dict[str, int | None]:
    """Record id -> the case whose ID number to compare against, or None when the visit's
    budget of checks is spent. Records not listed get no comparison at all: not this agent's
    visit, no typed characters, or already stored."""
    stored = set(stored_ids)
    used = dict(checks_used)
    answers: dict[str, int | None] = {}
    for record in records:
        visit = visits.get(record.visit_id)
        if record.id not in typed or visit is None or record.id in stored:
            continue
        if not visit.was_assigned_to(agent_id):
            continue
        used[visit.id] = used.get(visit.id, 0) + 1
        answers[record.id] = visit.case.id if used[visit.id] <= limit else None
    return answers


def typed_id_matches(national_id: str | None, typed: str) -> bool | None:
    """Compare the typed characters with the end of the number on file (case ignored);
    None when there is no number to compare with."""
    if not national_id:
        return None
    return national_id[-TYPED_ID_LENGTH:].upper() == typed.upper()


def id_verification(
    kind: str | None, body: Mapping[str, Any] | None, outcome: Mapping
) -> str | None:
    """match / mismatch / unverifiable for a stored borrower_identity confirmation."""
    if kind != "id_confirmation" or (body or {}).get("confirmation_kind") != BORROWER_IDENTITY:
        return None
    if outcome.get("status") not in ("accepted", "flagged", "duplicate"):
        return None
    codes = {flag["code"] for flag in outcome.get("flags", [])}
    if ID_MISMATCH in codes:
        return "mismatch"
    if ID_UNVERIFIABLE in codes:
        return "unverifiable"
    return "match"
