"""What a case is: its statuses and flags, and the requests a borrower can make.

The server, the wire schemas and the card rules (sync/cards.py) read these names from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OPEN = "open"
CLOSED_PAID = "closed_paid"
CLOSED_SETTLED = "closed_settled"
CLOSED_WRITTEN_OFF = "closed_written_off"
LEGAL = "legal"
CASE_STATUSES: tuple[str, ...] = (OPEN, CLOSED_PAID, CLOSED_SETTLED, CLOSED_WRITTEN_OFF, LEGAL)
CLOSED_STATUSES: frozenset[str] = frozenset({CLOSED_PAID, CLOSED_SETTLED, CLOSED_WRITTEN_OFF})

DO_NOT_VISIT = "do_not_visit"
HARDSHIP = "hardship"
LEGAL_HOLD = "legal_hold"
DISPUTE = "dispute"
DECEASED = "deceased"
CASE_FLAGS: tuple[str, ...] = (DO_NOT_VISIT, HARDSHIP, LEGAL_HOLD, DISPUTE, DECEASED)

# A borrower's own requests, each a record with where it came from and who took it.
REQUEST_DO_NOT_VISIT = "do_not_visit"
REQUEST_DO_NOT_CONTACT = "do_not_contact"
REQUEST_CONTACT_TIMES = "preferred_contact_times"
REQUEST_OUT_OF_HOURS_CONSENT = "out_of_hours_consent"
REQUEST_KINDS: tuple[str, ...] = (
    REQUEST_DO_NOT_VISIT,
    REQUEST_DO_NOT_CONTACT,
    REQUEST_CONTACT_TIMES,
    REQUEST_OUT_OF_HOURS_CONSENT,
)
REQUEST_SOURCES: tuple[str, ...] = ("visit", "phone", "letter", "portal")
# Channels a do-not-contact request names; field visits have their own request (do_not_visit).
CONTACT_CHANNELS: tuple[str, ...] = ("phone", "sms", "email", "letter")


def flags_set(case: Mapping[str, Any]) -> frozenset[str]:
    """The flags a case row (flag columns of 0/1 or booleans) has set."""
    return frozenset(flag for flag in CASE_FLAGS if case.get(flag))
