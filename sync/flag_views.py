"""What an agent is told of each flag: the agent view of every flag code, in one place.

Flags are raised from everything the server knows and stored with their full messages and
details, which reviewers read (`GET /records`). An answer to an agent — the push answer, a
replayed duplicate, a pull's outcomes — carries only the agent view of each flag, because an
answer to an agent never carries a borrower fact (a position, a distance, a time zone, other
people's visits, anything derived from them) that the agent's current card does not
already disclose. Three pushes with made-up positions once located a borrower's home to 3 m
from the distances in `location_mismatch`; whether such a flag is raised at all is the same
kind of oracle, only slower. So, per code:

- `needs`: the facts the flag's existence is derived from. The agent is told of the flag
  only when its current card discloses every one of them; otherwise it is withheld and the
  outcome is answered as if it had not been raised (`accepted` when nothing else is left).
- `message`: a fixed text; it never interpolates a value.
- `details`: an allow-list of keys, each with the facts its value is derived from (none for
  the agent's own record and the policy's thresholds). Details never restate a value computed
  from a card field (a distance from `home_geo`, a local time from `time_zone`): the phone
  holds the card itself, and a server-computed value would be a disclosure outside the ledger.
- `shown_when`: for flags raised from a mix of the agent's own records and other people's,
  a test over the allowed details that keeps only what the agent's own records raise.
- A code without a view is withheld entirely (default deny).

Facts are named by the card fields of server.domain.disclosure.CATALOGUE (which the policy
for the agent's purpose grants), or by one of the visit facts below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from . import compliance as rules
from .compliance import Flag
from .records import STORED_FLAGGED_MESSAGE, STORED_MESSAGE, RecordOutcome

# The visit's planned day, window and notice, as the agent's visit view shows them.
VISIT_PLAN = "visit_plan"
# The answer of the server's comparison of typed ID characters with the number on file.
ID_CHECK = "id_check"
# The visit is assigned to this agent now (so its status is the agent's to know).
VISIT_ASSIGNED = "visit_assigned"
# What the card discloses while the agent may hold it, whatever its fields.
CARD_VISIT_FACTS = frozenset({VISIT_PLAN, ID_CHECK, VISIT_ASSIGNED})
# The borrower's recorded consent to out-of-hours visits: no card field discloses it.
OUT_OF_HOURS_CONSENT = "out_of_hours_consent"
NEVER_DISCLOSED = frozenset({OUT_OF_HOURS_CONSENT})

# A card field disclosed implicitly by others: an address fixes the local time there.
IMPLIED_BY: Mapping[str, frozenset[str]] = MappingProxyType(
    {"time_zone": frozenset({"home_address", "home_geo"})}
)

_NONE: frozenset[str] = frozenset()


@dataclass(frozen=True)
class AgentView:
    """What an agent may be told of one flag code."""

    message: str
    needs: frozenset[str] = _NONE
    details: Mapping[str, frozenset[str]] = field(default_factory=dict)
    shown_when: Callable[[Mapping[str, Any]], bool] | None = None


def _count(details: Mapping[str, Any], key: str) -> int | None:
    value = details.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _own_visits_exceed(details: Mapping[str, Any]) -> bool:
    own, allowed = _count(details, "own_visits_in_period"), _count(details, "allowed")
    return own is not None and allowed is not None and own > allowed


def _own_agreements_compete(details: Mapping[str, Any]) -> bool:
    own = _count(details, "own_other_agreements")
    return own is not None and own >= 1


def _keys(*names: str) -> dict[str, frozenset[str]]:
    """Detail keys whose values are the agent's own record or the policy's thresholds."""
    return dict.fromkeys(names, _NONE)


_CASE_FLAGS = frozenset({"case_flags"})

AGENT_VIEWS: Mapping[str, AgentView] = MappingProxyType(
    {
        rules.OUTSIDE_VISIT_HOURS: AgentView(
            "Visit outside the permitted hours in the borrower's local time.",
            needs=frozenset({"time_zone"}),
            details=_keys("window"),
        ),
        rules.CONSENT_EXPIRED: AgentView(
            "Out-of-hours consent was not in force at the visit.",
            needs=frozenset({OUT_OF_HOURS_CONSENT}),
        ),
        rules.OUTSIDE_PLANNED_WINDOW: AgentView(
            "Arrival outside the visit's planned window.",
            needs=frozenset({VISIT_PLAN, "time_zone"}),
            details={"planned": frozenset({VISIT_PLAN}), "grace_min": _NONE},
        ),
        rules.VISIT_FREQUENCY_EXCEEDED: AgentView(
            "More home visits by you to this case within the period than the policy allows.",
            details=_keys("allowed", "period_days", "own_visits_in_period"),
            shown_when=_own_visits_exceed,
        ),
        rules.LOCATION_MISMATCH: AgentView(
            "Report made outside the geofence of the home address.",
            needs=frozenset({"home_geo"}),
            details=_keys("allowed_m", "accuracy_m"),
        ),
        rules.LOCATION_UNAVAILABLE: AgentView(
            "The report has no GPS fix precise enough to confirm the place.",
            needs=frozenset({"home_geo"}),
            details=_keys("reason", "accuracy_m", "max_accuracy_m"),
        ),
        rules.NO_PRIOR_NOTICE: AgentView(
            "No appointment or notice was recorded before the arrival.",
            needs=frozenset({VISIT_PLAN}),
            details={"notice_given_at": frozenset({VISIT_PLAN}), "arrived_at": _NONE},
        ),
        rules.CREDENTIAL_NOT_SHOWN_FIRST: AgentView(
            "Your credential was not recorded before contact began.",
            details=_keys("contact_at", "credential_at", "grace_s"),
        ),
        rules.THIRD_PARTY_DEBT_DISCUSSED: AgentView("The debt was discussed with a third party."),
        rules.CASE_DO_NOT_VISIT: AgentView("The case is marked do-not-visit.", needs=_CASE_FLAGS),
        rules.CASE_HARDSHIP: AgentView("The case is marked hardship.", needs=_CASE_FLAGS),
        rules.CASE_LEGAL_HOLD: AgentView("The case is under legal hold.", needs=_CASE_FLAGS),
        rules.CLOCK_SKEW: AgentView(
            "The device clock is off the server's.",
            details=_keys("skew_s", "recorded_ahead_s", "limit_s"),
        ),
        rules.LATE_SYNC: AgentView(
            "Received long after it was recorded.", details=_keys("delay_s", "limit_s")
        ),
        rules.BADGE_MISMATCH: AgentView(
            "The badge number shown is not yours.", details=_keys("shown")
        ),
        rules.ID_MISMATCH: AgentView(
            "The ID document shown did not match the borrower.", needs=frozenset({ID_CHECK})
        ),
        rules.ID_UNVERIFIABLE: AgentView(
            "The ID document could not be checked.", needs=frozenset({ID_CHECK})
        ),
        rules.ID_CHECK_LIMIT_REACHED: AgentView(
            "The limit of ID checks for this borrower was reached: not compared.",
            needs=frozenset({ID_CHECK}),
        ),
        rules.ID_NOT_COMPARED: AgentView(
            "Not compared: the visit's card was not yours to hold at the time.",
            needs=frozenset({ID_CHECK}),
        ),
        rules.VISIT_CANCELLED: AgentView(
            "The visit was cancelled.", needs=frozenset({VISIT_ASSIGNED})
        ),
        rules.VISIT_REASSIGNED: AgentView("The visit is no longer assigned to you."),
        rules.COMPETING_AGREEMENT: AgentView(
            "You already stored another agreement for this case.",
            details=_keys("own_other_agreements"),
            shown_when=_own_agreements_compete,
        ),
    }
)


def card_facts(card_fields: Iterable[str], may_hold_card: bool, assigned: bool) -> frozenset[str]:
    """What the agent's current card for a visit discloses, as the facts views name.

    `card_fields` are the fields the disclosure policy grants agents for the visit's
    purpose; they count only while the agent may hold the card."""
    if type(card_fields) is tuple:  # the policy's own (DisclosurePolicy.allowed_fields)
        return _card_facts_of(card_fields, may_hold_card, assigned)
    return _card_facts(card_fields, may_hold_card, assigned)


# A push or a pull asks for every visit's card facts, under a handful of purposes: each is
# worked out once, and is then the same object wherever it keys a memo (its hash is kept).
@lru_cache(maxsize=256)
def _card_facts_of(
    card_fields: tuple[str, ...], may_hold_card: bool, assigned: bool
) -> frozenset[str]:
    """card_facts of a policy's tuple of fields, once per distinct arguments."""
    return _card_facts(card_fields, may_hold_card, assigned)


def _card_facts(card_fields: Iterable[str], may_hold_card: bool, assigned: bool) -> frozenset[str]:
    """card_facts, worked out."""
    if not may_hold_card:
        return frozenset({VISIT_ASSIGNED}) if assigned else _NONE
    facts = set(card_fields) | CARD_VISIT_FACTS
    for implied, by in IMPLIED_BY.items():
        if facts & by:
            facts.add(implied)
    return frozenset(facts)


# A code's view under one set of facts: the same few codes and card facts over and over (a
# pull answers every outcome of a day under a handful of purposes), and a pure function of
# its two hashable arguments, so each is worked out once.
@lru_cache(maxsize=1024)
def _view_under(
    code: str, facts: frozenset[str]
) -> tuple[str, tuple[str, ...], Callable[[Mapping[str, Any]], bool] | None] | None:
    """The message, the detail keys the facts allow and the shown_when test of a code's
    view, or None when these facts do not let the agent learn of such a flag at all."""
    view = AGENT_VIEWS.get(code)
    if view is None or not view.needs <= facts:
        return None
    keys = tuple(key for key, derived_from in view.details.items() if derived_from <= facts)
    return view.message, keys, view.shown_when


def _agent_view(
    code: str, details: Mapping[str, Any], facts: frozenset[str]
) -> tuple[str, dict[str, Any]] | None:
    """The agent's message and details of one flag, or None when the agent may not learn
    it was raised: the rule agent_flag and agent_outcome_dict share."""
    view = _view_under(code, facts)
    if view is None:
        return None
    message, keys, shown_when = view
    shown = {key: details[key] for key in keys if key in details}
    if shown_when is not None and not shown_when(shown):
        return None
    return message, shown


def agent_flag(flag: Flag, facts: frozenset[str]) -> Flag | None:
    """The agent view of one flag, or None when the agent may not learn it was raised."""
    seen = _agent_view(flag.code, flag.details, facts)
    return None if seen is None else Flag(flag.code, *seen)


def agent_outcome(outcome: RecordOutcome, facts: frozenset[str]) -> RecordOutcome:
    """An outcome as the agent may see it: flags through their agent views, and the status
    and message of a stored record following the flags that are left."""
    flags = tuple(view for f in outcome.flags if (view := agent_flag(f, facts)) is not None)
    status, message, original = _as_seen(
        outcome.status, outcome.message, outcome.original_status, bool(flags)
    )
    return replace(outcome, status=status, message=message, flags=flags, original_status=original)


def agent_outcome_wire(outcome: RecordOutcome, facts: frozenset[str]) -> dict[str, Any]:
    """agent_outcome(outcome, facts).to_dict(), written without building the agent's
    outcome: every outcome of every push answer passes here, and the dataclasses.replace
    was the largest single cost of answering a replayed batch. Each flag's wire form is
    written straight from its agent view (Flag.to_dict's keys, in its order), without a
    Flag built for it: the details are the view's own dict, made for this answer."""
    flags = []
    for flag in outcome.flags:
        seen = _agent_view(flag.code, flag.details, facts)
        if seen is not None:
            flags.append({"code": flag.code, "message": seen[0], "details": seen[1]})
    return _wire(
        outcome.record_id,
        _as_seen(outcome.status, outcome.message, outcome.original_status, bool(flags)),
        outcome.reason,
        flags,
        outcome.content_hash,
        outcome.missing_blobs,
    )


_STORED = ("accepted", "flagged")


def _as_seen(
    status: str, message: str, original_status: str | None, flagged: bool
) -> tuple[str, str, str | None]:
    """The status, message and original status the agent is told: a stored record's (and a
    replayed one's original) follow whether any flag the agent may see is left."""
    verdict = "flagged" if flagged else "accepted"
    if status in _STORED:
        return verdict, STORED_FLAGGED_MESSAGE if flagged else STORED_MESSAGE, original_status
    if status == "duplicate" and original_status in _STORED:
        return status, message, verdict
    return status, message, original_status


def _wire(
    record_id: str,
    seen: tuple[str, str, str | None],
    reason: str | None,
    flags: list[dict[str, Any]],
    content_hash: str | None,
    missing_blobs: Iterable[str],
) -> dict[str, Any]:
    """An outcome's wire form (RecordOutcome.to_dict's keys, in its order)."""
    status, message, original_status = seen
    return {
        "record_id": record_id,
        "status": status,
        "reason": reason,
        "message": message,
        "flags": flags,
        "content_hash": content_hash,
        "missing_blobs": list(missing_blobs),
        "original_status": original_status,
    }


def agent_outcome_dict(stored: Mapping[str, Any], facts: frozenset[str]) -> dict[str, Any]:
    """agent_outcome(RecordOutcome.from_dict(stored), facts).to_dict(), read straight from
    the stored form (RecordOutcome.to_dict): a pull answers up to hundreds of outcomes, and
    building, replacing and writing out a RecordOutcome and its Flags cost more than the
    rest of the outcome's way out together."""
    flags = []
    for flag in stored.get("flags", ()):
        seen = _agent_view(flag["code"], flag.get("details", {}), facts)
        if seen is not None:
            flags.append({"code": flag["code"], "message": seen[0], "details": seen[1]})
    return _wire(
        stored["record_id"],
        _as_seen(
            stored["status"], stored.get("message", ""), stored.get("original_status"), bool(flags)
        ),
        stored.get("reason"),
        flags,
        stored.get("content_hash"),
        stored.get("missing_blobs", ()),
    )


def agent_may_learn_id_result(facts: frozenset[str]) -> bool:
    """The result of the ID comparison reaches the agent only while it may hold the card."""
    return ID_CHECK in facts
