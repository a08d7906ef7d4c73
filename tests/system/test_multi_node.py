"""Three app servers on one PostgreSQL store, a whole node SIGKILLed mid-push, several
times: every acknowledged record is stored exactly once and the ledger verifies.
Run with `-s` to see the figures."""

from __future__ import annotations

from loadtest.multinode import multi_node_trial


def test_three_nodes_one_killed_mid_push_lose_and_double_nothing(tmp_path, postgres_url):
    report = multi_node_trial(tmp_path, postgres_url, nodes=3, agents=6, kills=3, workers=1)
    print("\n" + "\n".join(report.lines()))

    assert report.kills == 3
    assert report.acknowledged > 0 and report.meter.lost > 0  # the kills did cut requests
    assert report.store.missing == [] and report.store.duplicated == []
    # amcheck over every index after the last kill
    assert report.store.intact, report.store.integrity
    assert report.meter.agreements and report.store.receipts_missing == []
    assert (report.ledger["intact"], report.ledger["problem"]) == (True, None)
    assert report.ledger["entries_checked"] > 0
    assert report.meter.server_errors == []
    assert report.still_queued == 0 and report.phone_errors == []
