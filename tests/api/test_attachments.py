"""Attachments: whole uploads, resumable chunked uploads, limits, who may do what."""

from __future__ import annotations

import hashlib
import random
import uuid

import pytest

from server.services.attachments import usable_blobs
from tests.conftest import PASSWORD

API = "/api/v1"
MIB = 1024 * 1024
CHUNK = "application/offset+octet-stream"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put_blob(client, headers, data: bytes, content_type="image/jpeg", name=None):
    return client.put(
        f"{API}/attachments/{name or sha(data)}",
        data=data,
        headers={**headers, "Content-Type": content_type},
    )


def start_upload(client, headers, data: bytes, content_type="image/jpeg", size=None):
    return client.post(
        f"{API}/attachments/{sha(data)}/uploads",
        json={"size": len(data) if size is None else size, "content_type": content_type},
        headers=headers,
    )


def send_chunk(client, headers, upload_id: str, offset: int, chunk: bytes):
    return client.patch(
        f"{API}/attachments/uploads/{upload_id}",
        data=chunk,
        headers={**headers, "Content-Type": CHUNK, "Upload-Offset": str(offset)},
    )


def push_report(client, headers, visit_id: int, attachments: list[str]) -> dict:
    """Push one visit report referencing these blobs; the record's outcome."""
    record = {
        "id": str(uuid.uuid4()),
        "kind": "visit_report",
        "visit_id": visit_id,
        "device_seq": 1,
        "recorded_at": "2026-11-24T01:50:00Z",
        "body": {
            "arrived_at": "2026-11-24T01:30:00Z",
            "outcome": "not_home",
            "location": {"lat": 31.201, "lon": 121.401, "accuracy_m": 10},
            "attachments": attachments,
        },
    }
    response = client.post(
        f"{API}/sync/push",
        json={"device_time": "2026-11-24T02:00:00Z", "records": [record]},
        headers=headers,
    )
    assert response.status_code == 200, response.json
    return response.json["outcomes"][0]


def count(db, table: str) -> int:
    return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def error(response) -> tuple[str, str | None]:
    return response.json["error"]["code"], response.json["error"]["field"]


@pytest.fixture
def agent(world, auth):
    return auth.headers("agent1")


@pytest.fixture
def agent1_id(world):
    return world.users["agent1"]


def test_upload_then_same_blob_again_is_a_no_op(client, agent, db, clock):
    photo = b"\xff\xd8\xff" + bytes(range(256)) * 40

    first = put_blob(client, agent, photo)
    assert first.status_code == 201, first.json
    assert first.json == {
        "sha256": sha(photo),
        "size": len(photo),
        "content_type": "image/jpeg",
        "complete": True,
        "received": len(photo),
        "created_at": "2026-11-24T02:00:00.000000Z",
    }

    clock.advance(minutes=5)
    again = put_blob(client, agent, photo, content_type="image/png")
    assert again.status_code == 200
    assert again.json == first.json  # neither the time nor the type changed
    rows = list(db.query("SELECT sha256, size, content_type, data, created_at FROM blobs"))
    assert rows == [
        {
            "sha256": sha(photo),
            "size": len(photo),
            "content_type": "image/jpeg",
            "data": photo,
            "created_at": "2026-11-24T02:00:00.000000Z",
        }
    ]


def test_bytes_that_do_not_match_the_hash_are_refused(client, agent, db):
    response = put_blob(client, agent, b"tampered photo", name=sha(b"original photo"))
    assert response.status_code == 422
    assert error(response) == ("hash_mismatch", "sha256")
    assert response.json["error"]["details"]["actual"] == sha(b"tampered photo")
    assert count(db, "blobs") == 0


@pytest.mark.parametrize(
    "name",
    ["not-a-hash", sha(b"x").upper(), sha(b"x")[:63], sha(b"x") + "0", "g" * 64],
)
def test_a_bad_hash_in_the_path_is_not_found(client, agent, name):
    put = put_blob(client, agent, b"x", name=name)
    get = client.get(f"{API}/attachments/{name}", headers=agent)
    post = client.post(
        f"{API}/attachments/{name}/uploads",
        json={"size": 1, "content_type": "image/png"},
        headers=agent,
    )
    for response in (put, get, post):
        # The path does not name a blob at all: no route, no query, a plain 404.
        assert response.status_code == 404, response.json
        assert response.json["error"]["code"] == "not_found"


def test_a_single_upload_over_the_limit_must_be_chunked(client, agent, db):
    big = random.Random(1).randbytes(4 * MIB + 1)
    response = put_blob(client, agent, big)
    assert response.status_code == 413
    assert error(response) == ("payload_too_large", "body")
    assert response.json["error"]["details"]["limit"] == 4 * MIB
    assert count(db, "blobs") == 0


def test_only_allowed_content_types(client, agent, db):
    text = b"hello"
    response = put_blob(client, agent, text, content_type="text/plain")
    assert response.status_code == 415
    assert error(response)[0] == "unsupported_media_type"
    assert "image/jpeg" in response.json["error"]["details"]["allowed"]
    assert put_blob(client, agent, text, content_type="").status_code == 415
    chunked = start_upload(client, agent, text, content_type="text/html")
    assert chunked.status_code == 415
    assert (count(db, "blobs"), count(db, "blob_uploads")) == (0, 0)
    assert put_blob(client, agent, text, content_type="application/pdf").status_code == 201


def test_chunked_upload_survives_a_dropped_connection(client, agent, agent1_id, db):
    photo = random.Random(7).randbytes(5 * MIB // 2)
    chunks = [photo[i : i + MIB] for i in range(0, len(photo), MIB)]
    assert [len(c) for c in chunks] == [MIB, MIB, MIB // 2]

    created = start_upload(client, agent, photo)
    assert created.status_code == 201, created.json
    upload_id = created.json["upload_id"]
    assert created.json == {
        "upload_id": upload_id,
        "sha256": sha(photo),
        "size": len(photo),
        "content_type": "image/jpeg",
        "received": 0,
        "complete": False,
    }

    first = send_chunk(client, agent, upload_id, 0, chunks[0])
    assert first.status_code == 200, first.json
    assert (first.json["received"], first.json["complete"]) == (MIB, False)
    assert first.headers["Upload-Offset"] == str(MIB)

    # Chunk 2 is stored but its response is lost: the client sends it again.
    assert send_chunk(client, agent, upload_id, MIB, chunks[1]).status_code == 200
    resent = send_chunk(client, agent, upload_id, MIB, chunks[1])
    assert resent.status_code == 409
    assert error(resent) == ("offset_mismatch", "Upload-Offset")
    assert resent.json["error"]["details"] == {"received": 2 * MIB}

    # Or, after a restart, the client asks where to resume (either way gives the same point).
    state = client.get(f"{API}/attachments/uploads/{upload_id}", headers=agent)
    assert state.status_code == 200
    assert (state.json["received"], state.headers["Upload-Offset"]) == (2 * MIB, str(2 * MIB))
    reopened = start_upload(client, agent, photo)
    assert reopened.status_code == 200
    assert (reopened.json["upload_id"], reopened.json["received"]) == (upload_id, 2 * MIB)
    progress = client.get(f"{API}/attachments/{sha(photo)}", headers=agent)
    assert progress.status_code == 200
    assert progress.json["complete"] is False
    assert (progress.json["received"], progress.json["created_at"]) == (2 * MIB, None)
    assert usable_blobs(db, agent1_id, [sha(photo)]) == frozenset()

    last = send_chunk(client, agent, upload_id, 2 * MIB, chunks[2])
    assert last.status_code == 200, last.json
    assert (last.json["received"], last.json["complete"]) == (len(photo), True)
    assert last.headers["Upload-Offset"] == str(len(photo))

    stored = db.execute("SELECT data, size FROM blobs WHERE sha256 = ?", [sha(photo)]).fetchone()
    assert sha(stored[0]) == sha(photo) and stored[1] == len(photo)
    assert (count(db, "blob_uploads"), count(db, "blob_chunks")) == (0, 0)
    meta = client.get(f"{API}/attachments/{sha(photo)}", headers=agent)
    assert (meta.json["complete"], meta.json["size"]) == (True, len(photo))
    # The finished upload is gone; asking to upload again says it is complete.
    assert client.get(f"{API}/attachments/uploads/{upload_id}", headers=agent).status_code == 404
    done = start_upload(client, agent, photo)
    assert done.status_code == 200
    assert (done.json["upload_id"], done.json["complete"]) == (None, True)


def test_a_chunk_must_start_at_the_resume_point(client, agent, db):
    data = b"%PDF" + bytes(100)
    upload_id = start_upload(client, agent, data, "application/pdf").json["upload_id"]

    ahead = send_chunk(client, agent, upload_id, 10, data[10:])
    assert ahead.status_code == 409
    assert ahead.json["error"]["details"] == {"received": 0}
    missing = client.patch(
        f"{API}/attachments/uploads/{upload_id}",
        data=data,
        headers={**agent, "Content-Type": CHUNK},
    )
    assert missing.status_code == 422
    assert missing.json["error"]["field"] == "Upload-Offset"
    assert count(db, "blob_chunks") == 0
    assert db.execute("SELECT received FROM blob_uploads").fetchone()[0] == 0


def test_chunk_limits(client, agent, db):
    photo = random.Random(3).randbytes(3 * MIB)
    upload_id = start_upload(client, agent, photo).json["upload_id"]

    too_big = send_chunk(client, agent, upload_id, 0, photo[: MIB + 1])
    assert too_big.status_code == 413
    assert too_big.json["error"]["details"]["limit"] == MIB

    small = b"\x89PNG" + bytes(10)
    small_id = start_upload(client, agent, small, "image/png").json["upload_id"]
    past_end = send_chunk(client, agent, small_id, 0, small + b"extra")
    assert past_end.status_code == 422
    assert error(past_end) == ("beyond_declared_size", "body")

    not_octets = client.patch(
        f"{API}/attachments/uploads/{small_id}",
        data=small,
        headers={**agent, "Content-Type": "image/png", "Upload-Offset": "0"},
    )
    assert not_octets.status_code == 415
    assert count(db, "blob_chunks") == 0

    huge = start_upload(client, agent, b"x", size=20 * MIB + 1)
    assert huge.status_code == 413
    assert error(huge) == ("payload_too_large", "size")


def test_a_chunked_upload_with_the_wrong_bytes_is_discarded(client, agent, db):
    claimed = b"the real signature"
    upload_id = start_upload(client, agent, claimed, "image/png").json["upload_id"]
    wrong = b"x" * len(claimed)

    response = send_chunk(client, agent, upload_id, 0, wrong)
    assert response.status_code == 422
    assert error(response) == ("hash_mismatch", "sha256")
    assert response.json["error"]["details"]["upload_discarded"] is True
    assert (count(db, "blobs"), count(db, "blob_uploads"), count(db, "blob_chunks")) == (0, 0, 0)
    assert client.get(f"{API}/attachments/uploads/{upload_id}", headers=agent).status_code == 404
    # The client starts over and succeeds.
    again = start_upload(client, agent, claimed, "image/png")
    assert again.status_code == 201 and again.json["upload_id"] != upload_id
    done = send_chunk(client, agent, again.json["upload_id"], 0, claimed)
    assert done.json["complete"] is True


def test_only_the_device_that_started_an_upload_may_continue_it(client, agent, auth, db):
    photo = random.Random(5).randbytes(2 * MIB)
    upload_id = start_upload(client, agent, photo).json["upload_id"]
    assert send_chunk(client, agent, upload_id, 0, photo[:MIB]).status_code == 200

    login = client.post(
        f"{API}/auth/login",
        json={"username": "agent1", "password": PASSWORD, "device_id": "phone-agent1-tablet"},
    )
    assert login.status_code == 200, login.json
    tablet = {
        "Authorization": f"Bearer {login.json['access_token']}",
        "X-Device-Id": "phone-agent1-tablet",
    }
    for other in (tablet, auth.headers("agent2")):
        state = client.get(f"{API}/attachments/uploads/{upload_id}", headers=other)
        assert state.status_code == 404
        chunk = send_chunk(client, other, upload_id, MIB, photo[MIB:])
        assert chunk.status_code == 404
        # Another device starts its own upload of the same blob rather than joining this one.
        own = start_upload(client, other, photo)
        assert own.status_code == 201 and own.json["upload_id"] != upload_id
    assert (
        db.execute("SELECT received FROM blob_uploads WHERE id = ?", [upload_id]).fetchone()[0]
        == MIB
    )
    # The first device finishes; the others' uploads learn it on their next chunk.
    assert send_chunk(client, agent, upload_id, MIB, photo[MIB:]).json["complete"] is True
    tablet_upload = start_upload(client, tablet, photo)
    assert (tablet_upload.status_code, tablet_upload.json["complete"]) == (200, True)


def test_who_may_see_and_upload(client, agent, auth, world):
    photo = b"\xff\xd8\xff signature"
    assert put_blob(client, agent, photo).status_code == 201
    url = f"{API}/attachments/{sha(photo)}"

    # Staff see a blob once a stored record references it, not before.
    assert client.get(url, headers=auth.headers("dispatcher")).status_code == 404
    assert push_report(client, agent, world.visits["v1"], [sha(photo)])["status"] != "retry"
    seen = client.get(url, headers=auth.headers("dispatcher"))
    assert seen.status_code == 200
    assert seen.json["complete"] is True
    assert "data" not in seen.json and "uploaded_by" not in seen.json
    for user in ("privacy", "admin"):
        assert client.get(url, headers=auth.headers(user)).status_code == 403
    for user in ("dispatcher", "privacy", "admin"):
        refused = put_blob(client, auth.headers(user), b"other")
        assert (refused.status_code, error(refused)[0]) == (403, "forbidden")
    assert client.get(url).status_code == 401
    unknown = client.get(f"{API}/attachments/{sha(b'never uploaded')}", headers=agent)
    assert unknown.status_code == 404


def test_usable_blobs_names_only_the_agents_verified_blobs(client, agent, agent1_id, auth, db):
    done, partial, unknown = b"\x89PNG done", b"\x89PNG partial!", b"\x89PNG unknown"
    theirs = b"\x89PNG agent2's"
    assert put_blob(client, agent, done, "image/png").status_code == 201
    upload_id = start_upload(client, agent, partial, "image/png").json["upload_id"]
    assert send_chunk(client, agent, upload_id, 0, partial[:4]).status_code == 200
    assert put_blob(client, auth.headers("agent2"), theirs, "image/png").status_code == 201

    hashes = [sha(done), sha(partial), sha(unknown), sha(theirs)]
    assert usable_blobs(db, agent1_id, hashes) == frozenset({sha(done)})
    assert usable_blobs(db, agent1_id, iter([sha(done), sha(done)])) == frozenset({sha(done)})
    assert usable_blobs(db, agent1_id, []) == frozenset()


def test_idle_uploads_are_swept(client, agent, auth, db, clock):
    stale = b"\x89PNG abandoned"
    upload_id = start_upload(client, agent, stale, "image/png").json["upload_id"]
    assert send_chunk(client, agent, upload_id, 0, stale[:4]).status_code == 200

    clock.advance(days=8)
    auth.sessions.pop("agent1")  # the old token expired too
    fresh = start_upload(client, auth.headers("agent1"), b"\x89PNG another", "image/png")
    assert fresh.status_code == 201
    assert [r[0] for r in db.execute("SELECT id FROM blob_uploads")] == [fresh.json["upload_id"]]
    assert count(db, "blob_chunks") == 0
