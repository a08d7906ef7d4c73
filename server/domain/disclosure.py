"""The disclosure policy: which borrower facts each role sees, for which purpose.

Two kinds of purpose: a visit's purpose decides the fields of a borrower card (CATALOGUE);
a staff purpose (STAFF_PURPOSES) decides which other facts an endpoint may send, such as
the records of a visit or the distances of a route (FIELD_FACTS). Every fact that leaves
the server is one of these names, written to the exposure ledger.

Some data can never be served to anyone, whatever the configuration says: the national ID
number, full phone numbers and family/third-party contacts. They are simply not in the
catalogues below, so no policy file can name them and no response schema carries them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sync.cases import CASE_FLAGS
from sync.visits import VISIT_PURPOSES

Row = Mapping[str, Any]


def mask_phone(number: str) -> str:
    """Keep the first 3 and last 4 digits: 13812345678 -> 138****5678."""
    digits = "".join(ch for ch in number if ch.isdigit())
    if len(digits) < 8:
        return "*" * max(len(digits) - 2, 2) + digits[-2:]
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def _phones(borrower: Row) -> list[str]:
    raw = borrower.get("phones") or "[]"
    return json.loads(raw) if isinstance(raw, str) else list(raw)


def _geo(borrower: Row) -> dict[str, float] | None:
    if borrower.get("home_lat") is None or borrower.get("home_lon") is None:
        return None
    return {"lat": borrower["home_lat"], "lon": borrower["home_lon"]}


# field name -> how to read it from (borrower, case, visit). The complete list of what any
# role may ever be shown; adding a field here is a privacy decision, reviewed as such.
CATALOGUE: dict[str, Callable[[Row, Row, Row], Any]] = {
    "display_name": lambda b, c, v: b["full_name"],
    "home_address": lambda b, c, v: b.get("home_address"),
    "home_geo": lambda b, c, v: _geo(b),
    "phone_masked": lambda b, c, v: [mask_phone(p) for p in _phones(b)],
    "time_zone": lambda b, c, v: b.get("time_zone"),
    "date_of_birth": lambda b, c, v: b.get("date_of_birth"),
    "work_address": lambda b, c, v: b.get("work_address"),
    "employer": lambda b, c, v: b.get("employer"),
    "income": lambda b, c, v: b.get("income"),
    "product": lambda b, c, v: c["product"],
    "overdue_amount": lambda b, c, v: c["overdue_amount"],
    "currency": lambda b, c, v: c["currency"],
    "days_past_due": lambda b, c, v: c["days_past_due"],
    "last_payment_date": lambda b, c, v: c.get("last_payment_date"),
    "last_payment_amount": lambda b, c, v: c.get("last_payment_amount"),
    "case_flags": lambda b, c, v: {flag: bool(c.get(flag)) for flag in CASE_FLAGS},
    "purpose": lambda b, c, v: v.get("purpose"),
    "dispatcher_notes": lambda b, c, v: v.get("notes"),
    # The most pressing promise or instalment: kind, state, amount due, due date, currency.
    # Computed by the server before the card is built (services/repayment.card_statuses).
    "repayment_status": lambda b, c, v: c.get("repayment_status"),
}
# Card fields the server computes from other records before building the card.
COMPUTED_CARD_FIELDS: frozenset[str] = frozenset({"repayment_status"})

# Borrower facts that are not card fields: what the field recorded about a visit, and what
# planning derives from the borrower's home. Served by endpoints for a staff purpose, never
# in a card. Adding a name here is a privacy decision, reviewed as such.
FIELD_FACTS: dict[str, str] = {
    "visit_outcome": "what happened at the door: outcome, arrival/departure/contact times, "
    "third party present, debt discussed with them",
    "promise_to_pay": "a promised amount and date",
    "visit_notes": "the agent's notes in a visit report",
    "gps_fix": "a position recorded at the visit (report location, signing place)",
    "agreement_terms": "a repayment agreement: installments, total, wording, signatures' hashes",
    "id_result": "whether the ID document shown matched the borrower's number on file",
    "flag_details": "compliance flags on a visit's records: code, message and details "
    "(distances from the home, local times, other visits)",
    "field_record": "any other content of a field record",
    "notice_note": "the dispatcher's note on the notice or appointment given to the borrower",
    "cancel_reason": "why a visit to the borrower was cancelled",
    "route_leg_distance": "a route leg's distance and travel time to the borrower's home",
    "route_arrival": "estimated arrival, departure, waiting time and lateness at the home, "
    "or why no arrival can be scheduled",
    "route_start": "a route starts from the agent's last reported position: the visit it "
    "was reported at, and when",
    "borrower_requests": "what the borrower asked for: not to be visited, not to be contacted "
    "on a channel, when to be contacted, out-of-hours consent (its hours, validity, evidence)",
    "attachment_bytes": "the bytes of a photo or signature image an agent recorded at a visit",
}
FACT_KINDS: frozenset[str] = frozenset(CATALOGUE) | frozenset(FIELD_FACTS)

# Purposes of endpoints that serve facts outside cards. The ledger entry carries the purpose.
DISPATCH_PLANNING = "dispatch_planning"
COMPLIANCE_EVIDENCE = "compliance_evidence"
# Supervising visits: the register of every attempt's time, place and method.
VISIT_REGISTER = "visit_register"
# Handing a case's evidence to a court or an auditor (the evidence pack, docs/evidence.md).
LEGAL_ESCALATION = "legal_escalation"
STAFF_PURPOSES: tuple[str, ...] = (
    DISPATCH_PLANNING,
    COMPLIANCE_EVIDENCE,
    VISIT_REGISTER,
    LEGAL_ESCALATION,
)
# An endpoint that serves cards and nothing else: its entries carry each visit's purpose,
# and no policy lists this name, so a fact beyond the cards would not be sent.
VISIT_CARDS = "visit_cards"

_AGENT_HOME_VISIT = [
    "display_name",
    "home_address",
    "home_geo",
    "phone_masked",
    "overdue_amount",
    "currency",
    "days_past_due",
    "product",
    "purpose",
    "dispatcher_notes",
    "repayment_status",
]

_DISPATCH_CARD = [
    "display_name",
    "home_address",
    "home_geo",
    "phone_masked",
    "time_zone",
    "product",
    "overdue_amount",
    "currency",
    "days_past_due",
    "last_payment_date",
    "last_payment_amount",
    "case_flags",
    "purpose",
    "dispatcher_notes",
]
_FIELD_RECORDS = [
    "visit_outcome",
    "promise_to_pay",
    "visit_notes",
    "gps_fix",
    "agreement_terms",
    "id_result",
    "flag_details",
    "field_record",
]
# What an evidence pack may carry: the case's identification, the field records and their
# images. A policy file may narrow it; a section whose facts are not allowed is left out.
_EVIDENCE_PACK = ["display_name", "product", "overdue_amount", "currency", "case_flags"] + [
    *_FIELD_RECORDS,
    "attachment_bytes",
]

DEFAULT_POLICY: dict[str, dict[str, list[str]]] = {
    "agent": {
        # The outcome of the agent's own records (ID check, flags), on push and pull.
        COMPLIANCE_EVIDENCE: ["id_result", "flag_details"],
        "home_visit": _AGENT_HOME_VISIT,
        "follow_up": _AGENT_HOME_VISIT,
        "agreement_signing": _AGENT_HOME_VISIT + ["last_payment_date", "last_payment_amount"],
        "workplace_visit": [
            "display_name",
            "work_address",
            "employer",
            "phone_masked",
            "overdue_amount",
            "currency",
            "days_past_due",
            "product",
            "purpose",
            "dispatcher_notes",
            "repayment_status",
        ],
    },
    "dispatcher": {
        "*": _DISPATCH_CARD,
        # Visits as planned (notes, notice, cancellation) and routes between the homes.
        # What happened at the door (last outcome, attempts, flag codes) is what re-planning
        # works from; what the borrower asked for decides what may be planned at all.
        DISPATCH_PLANNING: _DISPATCH_CARD
        + ["notice_note", "cancel_reason", "route_leg_distance", "route_arrival", "route_start"]
        + ["visit_outcome", "flag_details", "borrower_requests"]
        # The promises worklist: broken promises and overdue instalments, what is owed.
        + ["promise_to_pay", "agreement_terms", "repayment_status"],
        # Reading what the field recorded: reports, ID results, agreements, flags.
        # The photos and signature images included (GET /attachments/{sha256}/content).
        COMPLIANCE_EVIDENCE: _FIELD_RECORDS + ["attachment_bytes"],
        # The visit register: whom each attempt was for, what happened, where (the fix and
        # its distance from the home), the identity result and the flags. No notes, no
        # promises, no agreement terms, no address.
        VISIT_REGISTER: ["display_name", "visit_outcome", "gps_fix", "id_result", "flag_details"],
    },
    # Privacy officers audit *that* a field was exposed; their one purpose that carries
    # values is the evidence pack for a court (ledgered, staff-logged, legal hold). Admins
    # manage accounts and have none.
    "privacy_officer": {LEGAL_ESCALATION: _EVIDENCE_PACK},
    "admin": {},
}


class PolicyError(ValueError):
    """A disclosure policy file that names unknown roles or fields."""


@dataclass(frozen=True)
class DisclosurePolicy:
    rules: Mapping[str, Mapping[str, tuple[str, ...]]]

    def allowed_fields(self, role: str, purpose: str | None) -> tuple[str, ...]:
        """The fields this role may see for this purpose; nothing when unlisted. A visit
        purpose (or None) gives card fields only, a staff purpose any fact."""
        by_purpose = self.rules.get(role, {})
        if purpose in by_purpose:
            return by_purpose[purpose]
        return by_purpose.get("*", ())

    def as_dict(self) -> dict[str, dict[str, list[str]]]:
        return {r: {p: list(f) for p, f in ps.items()} for r, ps in self.rules.items()}


def build_policy(overrides: Mapping[str, Any] | None = None) -> DisclosurePolicy:
    """Defaults, with per role and purpose lists replaced by the overrides."""
    merged = {role: dict(purposes) for role, purposes in DEFAULT_POLICY.items()}
    for role, purposes in (overrides or {}).items():
        if role not in merged:
            raise PolicyError(f"unknown role {role!r} in disclosure policy")
        if not isinstance(purposes, Mapping):
            raise PolicyError(f"policy for {role!r} must map purposes to field lists")
        for purpose, fields in purposes.items():
            if purpose != "*" and purpose not in VISIT_PURPOSES + STAFF_PURPOSES:
                raise PolicyError(f"unknown purpose {purpose!r} for {role!r}")
            if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
                raise PolicyError(f"{role}/{purpose}: expected a list of field names")
            # Cards are built from the card catalogue; staff purposes may name any fact.
            known = FACT_KINDS if purpose in STAFF_PURPOSES else frozenset(CATALOGUE)
            unknown = sorted(set(fields) - known)
            if unknown:
                raise PolicyError(
                    f"{role}/{purpose}: fields {unknown} cannot be disclosed "
                    f"(known: {sorted(known)})"
                )
            merged[role][purpose] = list(fields)
    return DisclosurePolicy(
        {role: {p: tuple(f) for p, f in ps.items()} for role, ps in merged.items()}
    )


def load_policy(path: str | None) -> DisclosurePolicy:
    if not path:
        return build_policy()
    try:
        overrides = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PolicyError(f"cannot read disclosure policy {path}: {exc}") from exc
    return build_policy(overrides)


def build_card(fields: tuple[str, ...], borrower: Row, case: Row, visit: Row) -> dict[str, Any]:
    """The borrower card: exactly the allowed fields, masked where they must be."""
    return {name: CATALOGUE[name](borrower, case, visit) for name in fields}
