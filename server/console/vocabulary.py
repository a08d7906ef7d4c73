"""The words the console shows from the data (statuses, outcomes, roles, field names, …),
marked here so the translation catalogue carries them; templates translate them with _()."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

WORDS = (
    # roles
    _l("dispatcher"),
    _l("privacy_officer"),
    _l("admin"),
    _l("agent"),
    # visit statuses
    _l("planned"),
    _l("attempted"),
    _l("completed"),
    _l("missed"),
    _l("cancelled"),
    # outcomes at the door
    _l("met_borrower"),
    _l("not_home"),
    _l("refused"),
    _l("moved"),
    _l("third_party_met"),
    _l("promise_to_pay"),
    _l("agreement_signed"),
    _l("address_not_found"),
    _l("other"),
    # visit purposes (the register's method)
    _l("home_visit"),
    _l("follow_up"),
    _l("agreement_signing"),
    _l("workplace_visit"),
    # case statuses and flags
    _l("open"),
    _l("closed_paid"),
    _l("closed_settled"),
    _l("closed_written_off"),
    _l("legal"),
    _l("do_not_visit"),
    _l("hardship"),
    _l("legal_hold"),
    _l("dispute"),
    _l("deceased"),
    # flag review
    _l("assigned"),
    _l("resolved"),
    _l("justified"),
    _l("breach"),
    _l("data_error"),
    _l("assign"),
    _l("resolve"),
    _l("reopen"),
    # phone sync health
    _l("ok"),
    _l("behind"),
    _l("purge_pending"),
    _l("never_synced"),
    _l("revoked"),
    _l("blocked"),
    # the contact ladder
    _l("notice"),
    _l("phone"),
    _l("message"),
    _l("next_rung"),
    _l("notice_before_visit"),
    _l("awaiting_promise"),
    _l("no_lawful_channel"),
    _l("in_legal"),
    _l("case_closed"),
    # register attempts
    _l("reported"),
    _l("not_attempted"),
    # purposes in the ledger
    _l("dispatch_planning"),
    _l("visit_register"),
    _l("compliance_evidence"),
    _l("visit_cards"),
    # borrower fields
    _l("display_name"),
    _l("home_address"),
    _l("home_geo"),
    _l("phone_masked"),
    _l("product"),
    _l("overdue_amount"),
    _l("currency"),
    _l("days_past_due"),
    _l("last_payment_date"),
    _l("last_payment_amount"),
    _l("dispatcher_notes"),
    _l("case_flags"),
    _l("time_zone"),
    _l("purpose"),
    _l("contact_log"),
)
