"""The disclosure policy: which borrower fields each role sees, for which visit purpose.

Some data can never be served to anyone, whatever the configuration says: the national ID
number, full phone numbers and family/third-party contacts. They are simply not in the
catalogue below, so no policy file can name them and no response schema carries them.
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
}

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
]

DEFAULT_POLICY: dict[str, dict[str, list[str]]] = {
    "agent": {
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
        ],
    },
    "dispatcher": {
        "*": [
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
    },
    # Privacy officers audit *that* a field was exposed; admins manage accounts. Neither
    # has a purpose that needs a borrower's values.
    "privacy_officer": {},
    "admin": {},
}


class PolicyError(ValueError):
    """A disclosure policy file that names unknown roles or fields."""


@dataclass(frozen=True)
class DisclosurePolicy:
    rules: Mapping[str, Mapping[str, tuple[str, ...]]]

    def allowed_fields(self, role: str, purpose: str | None) -> tuple[str, ...]:
        """The fields this role may see for this purpose; nothing when unlisted."""
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
            if purpose != "*" and purpose not in VISIT_PURPOSES:
                raise PolicyError(f"unknown visit purpose {purpose!r} for {role!r}")
            if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
                raise PolicyError(f"{role}/{purpose}: expected a list of field names")
            unknown = sorted(set(fields) - set(CATALOGUE))
            if unknown:
                raise PolicyError(
                    f"{role}/{purpose}: fields {unknown} cannot be disclosed "
                    f"(known: {sorted(CATALOGUE)})"
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
