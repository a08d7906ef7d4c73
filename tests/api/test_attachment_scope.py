"""Attachments are their uploaders' business: metadata and progress only for them (and for
staff once a record references the blob), records reference only their author's blobs, and a
device's unreferenced blobs have a quota and expire."""

from __future__ import annotations

import random

from tests.api.test_attachments import (
    API,
    MIB,
    push_report,
    put_blob,
    send_chunk,
    sha,
    start_upload,
)


def blob_hashes(db) -> set[str]:
    return {row[0] for row in db.execute("SELECT sha256 FROM blobs")}


def test_another_agent_learns_nothing_from_a_hash(client, auth, world):
    """Used to answer agent2 200 with agent1's blob metadata and upload progress."""
    agent1, agent2 = auth.headers("agent1"), auth.headers("agent2")
    photo = b"\xff\xd8\xff agent1's photo"
    assert put_blob(client, agent1, photo).status_code == 201
    big = random.Random(11).randbytes(MIB + 10)
    upload_id = start_upload(client, agent1, big).json["upload_id"]
    assert send_chunk(client, agent1, upload_id, 0, big[:MIB]).status_code == 200

    never = client.get(f"{API}/attachments/{sha(b'never uploaded')}", headers=agent2)
    assert never.status_code == 404
    for target in (sha(photo), sha(big)):
        seen = client.get(f"{API}/attachments/{target}", headers=agent2)
        assert seen.status_code == 404
        assert seen.json["error"] == never.json["error"]
        # Staff neither: no record references these blobs.
        staff = client.get(f"{API}/attachments/{target}", headers=auth.headers("dispatcher"))
        assert staff.json["error"] == never.json["error"]

    # The uploader still sees both.
    own = client.get(f"{API}/attachments/{sha(photo)}", headers=agent1)
    assert (own.status_code, own.json["complete"]) == (200, True)
    progress = client.get(f"{API}/attachments/{sha(big)}", headers=agent1)
    assert (progress.status_code, progress.json["received"]) == (200, MIB)

    # Opening an upload of agent1's stored blob used to answer "complete" without a byte
    # sent; now agent2 uploads like anyone with a blob nobody has.
    started = start_upload(client, agent2, photo)
    assert (started.status_code, started.json["complete"]) == (201, False)


def test_a_record_may_reference_only_blobs_its_author_uploaded(client, auth, world, db):
    """Used to accept agent2's report citing agent1's photo by its hash."""
    agent1, agent2 = auth.headers("agent1"), auth.headers("agent2")
    photo = b"\xff\xd8\xff agent1's signature"
    assert put_blob(client, agent1, photo).status_code == 201
    visit = world.visits["v3"]  # agent2's

    theirs = push_report(client, agent2, visit, [sha(photo)])
    nobodys = push_report(client, agent2, visit, [sha(b"uploaded by nobody")])
    # Answered exactly as a blob nobody uploaded: the retry is no oracle, and nothing stored.
    assert (theirs["status"], theirs["reason"]) == ("retry", "attachment_missing")
    assert theirs["missing_blobs"] == [sha(photo)]
    same = {"record_id", "missing_blobs"}
    assert {k: v for k, v in theirs.items() if k not in same} == {
        k: v for k, v in nobodys.items() if k not in same
    }
    stored = db.execute(
        "SELECT count(*) FROM sync_records WHERE agent_id = ?", [world.users["agent2"]]
    )
    assert stored.fetchone()[0] == 0

    # Sending the bytes makes agent2 an owner, answered as a first upload (201, its own
    # time), so the upload does not tell that someone else had them either.
    world.clock.advance(minutes=3)
    again = put_blob(client, agent2, photo, content_type="image/png")
    assert again.status_code == 201
    assert (again.json["created_at"], again.json["content_type"]) == (
        "2026-11-24T02:03:00.000000Z",
        "image/png",
    )
    accepted = push_report(client, agent2, visit, [sha(photo)])
    assert accepted["status"] in ("accepted", "flagged"), accepted
    assert blob_hashes(db) == {sha(photo)}  # still one copy of the bytes


def test_unreferenced_blobs_are_held_to_a_quota_per_device(make_app, auth, world):
    """Used to take any number of unreferenced blobs from a device."""
    small = make_app(BLOB_QUOTA_UNREFERENCED_BYTES=100).test_client()
    agent1 = auth.headers("agent1")
    first, second = (b"\x89PNG" + bytes([n]) * 56 for n in range(2))  # 60 bytes each
    assert put_blob(small, agent1, first, "image/png").status_code == 201

    refused = put_blob(small, agent1, second, "image/png")
    assert refused.status_code == 409
    assert refused.json["error"]["code"] == "blob_quota_exceeded"
    assert refused.json["error"]["details"] == {"quota": 100, "held": 60, "adding": 60}
    chunked = start_upload(small, agent1, second, "image/png")
    assert (chunked.status_code, chunked.json["error"]["code"]) == (409, "blob_quota_exceeded")
    # Another device has its own room.
    assert put_blob(small, auth.headers("agent2"), second, "image/png").status_code == 201

    # Once a pushed record references the first blob, its bytes leave the quota.
    outcome = push_report(small, agent1, world.visits["v1"], [sha(first)])
    assert outcome["status"] in ("accepted", "flagged"), outcome
    assert put_blob(small, agent1, second, "image/png").status_code == 201


def test_unreferenced_blobs_expire(client, auth, world, db, clock):
    """Used to keep every uploaded blob forever, referenced or not."""
    agent1, agent2 = auth.headers("agent1"), auth.headers("agent2")
    kept, dropped, shared = (b"\x89PNG " + name for name in (b"kept", b"dropped", b"shared"))
    for data in (kept, dropped, shared):
        assert put_blob(client, agent1, data, "image/png").status_code == 201
    assert put_blob(client, agent2, shared, "image/png").status_code == 201
    assert push_report(client, agent1, world.visits["v1"], [sha(kept)])["status"] != "retry"
    assert push_report(client, agent2, world.visits["v3"], [sha(shared)])["status"] != "retry"

    clock.advance(days=7, seconds=1)
    auth.sessions.clear()  # the tokens expired meanwhile
    fresh = b"\x89PNG fresh"
    assert put_blob(client, auth.headers("agent1"), fresh, "image/png").status_code == 201

    # The sweep ran with that upload: agent1's unreferenced blob is gone; the shared one
    # stays for agent2, whose record references it, but is no longer agent1's.
    assert blob_hashes(db) == {sha(kept), sha(shared), sha(fresh)}
    agent1 = auth.headers("agent1")
    assert client.get(f"{API}/attachments/{sha(dropped)}", headers=agent1).status_code == 404
    assert client.get(f"{API}/attachments/{sha(shared)}", headers=agent1).status_code == 404
    assert client.get(f"{API}/attachments/{sha(kept)}", headers=agent1).status_code == 200
    owners = db.execute("SELECT sha256, user_id FROM blob_owners ORDER BY sha256").fetchall()
    assert sorted(owners) == sorted(
        [
            (sha(kept), world.users["agent1"]),
            (sha(shared), world.users["agent2"]),
            (sha(fresh), world.users["agent1"]),
        ]
    )
