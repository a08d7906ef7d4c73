"""A push reads only the part of a case's history its rules can use (docs/sync.md,
"Performance: push and memory"); what it decides is what reading everything decided."""

from __future__ import annotations

from datetime import timedelta

from tests.api.lifecycle_steps import dispatcher_visit, push, report
from tests.api.test_contact_compliance import _stored_flags, _visit_without_notice
from tests.api.test_contacts import call, contact_record, log
from tests.api.test_sync import push as push_as_agent1
from tests.api.test_sync import report as home_report
from tests.conftest import T0


def test_a_completing_report_long_ago_still_completes_the_visit(world, client, auth):
    v1 = world.visits["v1"]
    push(client, auth, "agent1", [report(v1, "met_borrower", T0 - timedelta(days=40))])
    # Later tries, each more than the text margin after the one before.
    for days in (30, 20, 10):
        push(client, auth, "agent1", [report(v1, "not_home", T0 - timedelta(days=days))])
    visit = dispatcher_visit(client, auth, v1)
    assert (visit["status"], visit["last_outcome"], visit["attempts"]) == (
        "completed",
        "not_home",
        4,
    )
    assert visit["last_attempt_at"] == "2026-11-14T02:00:00.000000Z"


def test_the_latest_at_the_door_wins_across_offsets_and_sync_order(world, client, auth):
    v1 = world.visits["v1"]
    latest = report(v1, "refused", T0 - timedelta(hours=1))
    push(client, auth, "agent1", [latest])
    # Synced after, arrived before: at 13:00 in Kiribati (UTC+14) is 23:00 the day before.
    early = report(v1, "not_home")
    early["body"]["arrived_at"] = (T0 - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S+14:00")
    early["body"].pop("departed_at")
    early["recorded_at"] = (T0 - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert push(client, auth, "agent1", [early])[0]["status"] != "rejected"
    visit = dispatcher_visit(client, auth, v1)
    assert (visit["last_outcome"], visit["attempts"]) == ("refused", 2)


def test_a_notice_sent_long_before_the_calls_window_still_counts(client, auth, world, db):
    case_id, visit_id = _visit_without_notice(client, auth, world, 13)
    letter = call(channel="notice", outcome="delivered", at=T0 - timedelta(days=120))
    assert log(client, auth, case_id, letter).status_code == 201
    # A conversation long ago and a call the phone syncs now: the pause rule looks back only
    # its own period, so the old conversation is not read and not held against the call.
    talk = call(outcome="reached", at=T0 - timedelta(days=60))
    assert log(client, auth, case_id, talk).status_code == 201
    visit = home_report(visit_id, 1)
    dial = contact_record(visit_id, 2, outcome="no_answer")
    push_as_agent1(client, auth, [visit, dial])
    assert "no_prior_notice" not in _stored_flags(db, visit["id"])
    assert "call_after_conversation" not in _stored_flags(db, dial["id"])


def test_a_conversation_within_the_pause_is_still_read(client, auth, world, db):
    case_id, visit_id = _visit_without_notice(client, auth, world, 14)
    talk = call(outcome="reached", at=T0 - timedelta(days=6, hours=23))
    assert log(client, auth, case_id, talk).status_code == 201
    dial = contact_record(visit_id, 1, outcome="no_answer")
    push_as_agent1(client, auth, [dial])
    assert "call_after_conversation" in _stored_flags(db, dial["id"])
