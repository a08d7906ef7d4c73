"""The words the console shows from the data (statuses, outcomes, roles, field names, …),
marked here so the translation catalogues carry them; templates translate them with _().
The English catalogue (translations/en) only turns these codes into words ("met_borrower"
reads "met the borrower"); every other English text is its own message id."""

from __future__ import annotations

from flask_babel import gettext


def N_(word: str) -> str:
    """Marks a word for the catalogue (pybabel extract -k N_); translated when shown."""
    return word


WORDS = (
    # roles
    N_("dispatcher"),
    N_("privacy_officer"),
    N_("admin"),
    N_("agent"),
    # visit statuses
    N_("planned"),
    N_("attempted"),
    N_("completed"),
    N_("missed"),
    N_("cancelled"),
    # outcomes at the door
    N_("met_borrower"),
    N_("not_home"),
    N_("refused"),
    N_("moved"),
    N_("third_party_met"),
    N_("promise_to_pay"),
    N_("agreement_signed"),
    N_("address_not_found"),
    N_("other"),
    # visit purposes (the register's method)
    N_("home_visit"),
    N_("follow_up"),
    N_("agreement_signing"),
    N_("workplace_visit"),
    # case statuses and flags
    N_("open"),
    N_("closed_paid"),
    N_("closed_settled"),
    N_("closed_written_off"),
    N_("legal"),
    N_("do_not_visit"),
    N_("hardship"),
    N_("legal_hold"),
    N_("dispute"),
    N_("deceased"),
    # flag review
    N_("assigned"),
    N_("resolved"),
    N_("justified"),
    N_("breach"),
    N_("data_error"),
    N_("assign"),
    N_("resolve"),
    N_("reopen"),
    # phone sync health
    N_("ok"),
    N_("behind"),
    N_("purge_pending"),
    N_("never_synced"),
    N_("revoked"),
    N_("blocked"),
    # the contact ladder
    N_("notice"),
    N_("phone"),
    N_("message"),
    N_("next_rung"),
    N_("notice_before_visit"),
    N_("awaiting_promise"),
    N_("no_lawful_channel"),
    N_("in_legal"),
    N_("case_closed"),
    # register attempts
    N_("reported"),
    N_("not_attempted"),
    # purposes in the ledger
    N_("dispatch_planning"),
    N_("visit_register"),
    N_("compliance_evidence"),
    N_("visit_cards"),
    # borrower fields
    N_("display_name"),
    N_("home_address"),
    N_("home_geo"),
    N_("phone_masked"),
    N_("product"),
    N_("overdue_amount"),
    N_("currency"),
    N_("days_past_due"),
    N_("last_payment_date"),
    N_("last_payment_amount"),
    N_("dispatcher_notes"),
    N_("case_flags"),
    N_("time_zone"),
    N_("purpose"),
    N_("contact_log"),
    # compliance flags on field records and contacts
    N_("outside_visit_hours"),
    N_("consent_expired"),
    N_("outside_planned_window"),
    N_("visit_frequency_exceeded"),
    N_("location_mismatch"),
    N_("location_unavailable"),
    N_("no_prior_notice"),
    N_("credential_not_shown_first"),
    N_("third_party_debt_discussed"),
    N_("case_do_not_visit"),
    N_("case_hardship"),
    N_("case_legal_hold"),
    N_("clock_skew"),
    N_("late_sync"),
    N_("badge_mismatch"),
    N_("id_mismatch"),
    N_("id_unverifiable"),
    N_("id_check_limit_reached"),
    N_("id_not_compared"),
    N_("visit_cancelled"),
    N_("visit_reassigned"),
    N_("competing_agreement"),
    N_("outside_contact_hours"),
    N_("call_frequency_exceeded"),
    N_("call_after_conversation"),
    N_("do_not_contact_channel"),
    # contact channels, directions and outcomes
    N_("letter"),
    N_("phone_call"),
    N_("sms"),
    N_("email"),
    N_("legal_letter"),
    N_("outbound"),
    N_("inbound"),
    N_("sent"),
    N_("delivered"),
    N_("returned"),
    N_("received"),
    N_("failed"),
    N_("bounced"),
    N_("reached"),
    N_("promise"),
    N_("callback_requested"),
    N_("third_party"),
    N_("no_answer"),
    N_("busy"),
    N_("voicemail"),
    N_("wrong_number"),
    N_("disconnected"),
    # record kinds and what an ID check confirms
    N_("visit_report"),
    N_("id_confirmation"),
    N_("agreement"),
    N_("contact"),
    N_("borrower_identity"),
    N_("agent_credential"),
    # anomaly kinds
    N_("no_assignment"),
    N_("outside_working_hours"),
    N_("unusual_volume"),
    N_("purge_unacknowledged"),
    N_("cards_without_reports"),
    # what retention removes
    N_("exposure_ledger"),
    N_("borrower_personal_data"),
    N_("personal_data"),
    N_("attachments"),
    N_("payments_and_promises"),
    N_("free_text_notes"),
)


def translated_words() -> dict[str, str]:
    """Every word above in the page's language, looked up once per page (a long page would
    otherwise translate the same status hundreds of times)."""
    return {word: gettext(word) for word in WORDS}
