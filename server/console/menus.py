"""Which pages each role's menu lists (each page also checks the role itself)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from server.domain.roles import ADMIN, DISPATCHER, PRIVACY_OFFICER

# (endpoint, label); a dispatcher also supervises (flag review, the register).
MENUS = {
    DISPATCHER: (
        ("console.board", _l("Day board")),
        ("console.replan", _l("Re-plan")),
        ("console.assignment_proposal", _l("Assign open visits")),
        ("console.promises", _l("Broken promises")),
        ("console.flags", _l("Flag review")),
        ("console.register", _l("Visit register")),
    ),
    PRIVACY_OFFICER: (
        ("console.ledger", _l("Ledger status")),
        ("console.disclosures", _l("Disclosure report")),
        ("console.anomalies", _l("Anomalies")),
        ("console.history", _l("Agent and device history")),
        ("console.retention_status", _l("Retention")),
        ("console.evidence", _l("Evidence packs")),
    ),
    ADMIN: (("console.ledger", _l("Ledger checkpoints")),),
}


def menu_for(role: str) -> tuple:
    return MENUS.get(role, ())
