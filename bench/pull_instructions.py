"""Pulls of the peers workload in process, for an instruction count (valgrind's callgrind).

Wall and CPU times on the shared machine move by tens of percent with its load; the number
of instructions a pull runs does not. `prepare` builds a store once (outside valgrind): the
demo world, agent01's phone enrolled, and agent01's 100 visit reports pushed (4 per visit,
as in the peers bench's Doorstep workload, so a pull carries 100 outcomes, most `flagged`).
`pull` copies that store and pulls agent01's day N times from a fresh cursor through the
Flask test client. The cost of N pulls is the count of `pull DIR N` minus `pull DIR 0`:

    .venv/bin/python -m bench.pull_instructions prepare /tmp/pulls
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python -m bench.pull_instructions pull /tmp/pulls 20   # and with 0

`pull` prints a digest of the last answer body (server_time and cursor masked), so two
trees can be shown to answer the same. Figures only; nothing fails on time.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import PASSWORD, bench_env, flask
from bench.profile_push import batch_body


def _env(store: Path, database: Path) -> dict[str, str]:
    env = bench_env(store)
    env.update(
        DOORSTEP_DATABASE=str(database),
        DOORSTEP_SIGNING_KEY_FILE=str(store / "signing.pem"),
        DOORSTEP_ACCESS_TOKEN_TTL_S=str(7 * 24 * 3600),
    )
    return env


def prepare(store: Path) -> None:
    """The demo world, agent01 logged in on a phone, and its 100 reports pushed."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    store.mkdir(parents=True, exist_ok=True)
    (store / "signing.pem").write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    env = _env(store, store / "pulls.db")
    flask(env, "demo", "--borrowers", "2000", "--agents", "10", "--visits-per-agent", "25")
    os.environ.update(env)
    from server import create_app

    client = create_app().test_client()
    answer = client.post(
        "/api/v1/auth/login", json={"username": "agent01", "password": PASSWORD}
    ).get_json()
    headers = {
        "Authorization": f"Bearer {answer['access_token']}",
        "X-Device-Id": answer["device_id"],
    }
    day = client.get("/api/v1/sync/pull?limit=200", headers=headers).get_json()
    body = batch_body(day["upserts"], datetime.now(UTC), random.Random(12))
    pushed = client.post(
        "/api/v1/sync/push", data=body, headers={**headers, "Content-Type": "application/json"}
    )
    assert pushed.status_code == 200, pushed.status_code
    (store / "headers.json").write_text(json.dumps(headers))
    statuses = [o["status"] for o in pushed.get_json()["outcomes"]]
    print(f"prepared {store}: {len(statuses)} outcomes, {statuses.count('flagged')} flagged")


def pull(store: Path, pulls: int) -> None:
    """N pulls of agent01's day on a copy of the prepared store; a digest of the answer."""
    with tempfile.TemporaryDirectory(prefix="doorstep-pulls-") as scratch:
        database = Path(scratch) / "pulls.db"
        shutil.copyfile(store / "pulls.db", database)
        os.environ.update(_env(store, database))
        from server import create_app

        client = create_app().test_client()
        headers = json.loads((store / "headers.json").read_text())
        url = "/api/v1/sync/pull?limit=200"
        text = b""
        cpu = time.process_time()
        for _ in range(pulls):
            answer = client.get(url, headers=headers)
            assert answer.status_code == 200, answer.status_code
            text = answer.get_data()
        cpu = time.process_time() - cpu
        masked = re.sub(rb'"(server_time|cursor)":"[^"]*"', rb'"\1":"?"', text)
        print(
            f"{pulls} pulls, cpu {cpu * 1000 / max(pulls, 1):.2f} ms/pull, "
            f"{len(text)} bytes, answer sha256 {hashlib.sha256(masked).hexdigest()[:16]}"
        )


def main() -> None:
    command, store = sys.argv[1], Path(sys.argv[2])
    if command == "prepare":
        prepare(store)
    else:
        pull(store, int(sys.argv[3]))


if __name__ == "__main__":
    main()
