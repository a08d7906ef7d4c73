"""Who uses Doorstep: the four roles every account has exactly one of."""

from __future__ import annotations

AGENT = "agent"
DISPATCHER = "dispatcher"
PRIVACY_OFFICER = "privacy_officer"
ADMIN = "admin"

ROLES = (AGENT, DISPATCHER, PRIVACY_OFFICER, ADMIN)
