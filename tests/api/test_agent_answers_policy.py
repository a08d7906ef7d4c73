"""What an agent is told of a flag follows the disclosure policy's agent card, not a list
kept beside it: here a policy file that shows case flags and no home position."""

from __future__ import annotations

import json

import pytest

from server import create_app
from tests.api.test_agent_answers import T0, push, report, reviewer_records

AGENT_CARD = ["display_name", "overdue_amount", "currency", "case_flags", "purpose"]


@pytest.fixture
def app(tmp_path, clock):
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"agent": {"home_visit": AGENT_CARD}}))
    return create_app(
        {
            "DATABASE": str(tmp_path / "doorstep.db"),
            "CLOCK": clock,
            "PASSWORD_TIME_COST": 1,
            "PASSWORD_MEMORY_COST_KIB": 1024,
            "DOORSTEP_ENV": "development",
            "RATE_PER_DEVICE_PER_MIN": 0,
            "RATE_PER_ADDRESS_PER_MIN": 0,
            "DISCLOSURE_POLICY_FILE": str(policy),
        }
    )


def test_the_agents_card_policy_decides_which_flags_it_is_told_of(world, client, auth, db):
    db.execute("UPDATE cases SET hardship = 1 WHERE id = ?", [world.cases["C-0002"]])
    db.conn.commit()
    v2 = world.visits["v2"]
    card = client.get(f"/api/v1/visits/{v2}", headers=auth.headers("agent1")).json["borrower"]
    assert card["case_flags"]["hardship"] is True and "home_geo" not in card
    (outcome,) = push(client, auth.headers("agent1"), [report(v2, 1, 31.30, 121.50, T0)])
    codes = {f["code"] for f in outcome["flags"]}
    assert "case_hardship" in codes  # the card shows it
    assert "location_mismatch" not in codes  # the card has no home position to compare with
    stored = reviewer_records(client, auth, v2)[outcome["record_id"]]
    assert {"case_hardship", "location_mismatch"} <= {f["code"] for f in stored["flags"]}
