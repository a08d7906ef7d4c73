"""An all-replay batch is answered from the store without reading the facts, reconciling
or moving visits on (sync_push.push); tests/system/test_push_replay_paths.py holds its
answers and rows to those of reconciling the replays."""

from __future__ import annotations

from server.services import sync_push
from tests.api.lifecycle_steps import push, report


def test_an_all_replay_batch_reads_no_facts(world, client, auth, monkeypatch):
    v1 = world.visits["v1"]
    records = [report(v1, "not_home"), report(v1, "refused")]
    first = push(client, auth, "agent1", records)

    def refused(*_args, **_kwargs):
        raise AssertionError("an all-replay batch read the facts")

    monkeypatch.setattr(sync_push, "server_facts", refused)
    monkeypatch.setattr(sync_push, "reconcile_batch", refused)
    monkeypatch.setattr(sync_push, "apply_reports", refused)
    again = push(client, auth, "agent1", records)
    assert [o["status"] for o in again] == ["duplicate", "duplicate"]
    assert [o["flags"] for o in again] == [o["flags"] for o in first]
