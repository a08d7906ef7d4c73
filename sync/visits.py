"""What a visit is: its purposes, statuses, the notice given before it, the outcomes at the door.

The server, the wire schemas and the phone all read these names from here.
"""

from __future__ import annotations

VISIT_PURPOSES: tuple[str, ...] = (
    "home_visit",
    "follow_up",
    "agreement_signing",
    "workplace_visit",
)
# Purposes that take the agent to the borrower's home: the home-visit rules apply to them
# (visits per period, distance from the home, prior notice).
HOME_PURPOSES: frozenset[str] = frozenset({"home_visit", "follow_up", "agreement_signing"})

VISIT_STATUSES: frozenset[str] = frozenset({"planned", "cancelled", "completed"})

NOTICE_KINDS: tuple[str, ...] = ("appointment", "letter", "sms", "phone_call", "email")

VISIT_OUTCOMES: tuple[str, ...] = (
    "met_borrower",
    "not_home",
    "refused",
    "moved",
    "third_party_met",
    "promise_to_pay",
    "agreement_signed",
    "address_not_found",
    "other",
)
# Outcomes in which nobody came to the door, so there was no contact to identify oneself for.
NO_CONTACT_OUTCOMES: frozenset[str] = frozenset({"not_home", "address_not_found"})
