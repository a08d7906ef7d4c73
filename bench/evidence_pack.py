"""Building one legal evidence pack: a case with 20 visits, 40 photos of 2 MB, 200 calls on
its contact log and 200 ledger entries about its borrower. Prints the wall time of
`flask evidence-pack` and of `flask verify-evidence`, and the peak RSS of each (a child
process, so the figure is the build's alone: photos are streamed in 1 MiB chunks, never all
in memory).

    .venv/bin/python -m bench.evidence_pack [--visits 20] [--photos 40] [--photo-mib 2]
        [--calls 200] [--entries 200]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, VENV_BIN, bench_env, flask, scratch_dir
from server.storage import attachments as attachment_rows
from server.storage import contacts as contact_rows
from server.storage import ledger as ledger_rows
from server.storage import sync as sync_rows
from server.storage import visits as visit_rows
from server.storage.connection import open_db, transaction

NOW = "2026-11-24T02:00:00Z"


def seed(
    db_path: Path, visits: int, photos: int, photo_bytes: int, entries: int, calls: int
) -> int:
    """Add the field evidence to demo case 1; its id."""
    db = open_db(str(db_path))
    case = next(db.query("SELECT * FROM cases ORDER BY id LIMIT 1"))
    agent_id = next(db.query("SELECT id FROM users WHERE role = 'agent' ORDER BY id"))["id"]
    per_visit = max(1, photos // visits)
    made = 0
    for n in range(visits):
        with transaction(db):
            visit_id = visit_rows.insert_visit(
                db,
                {
                    "case_id": case["id"],
                    "agent_id": agent_id,
                    "visit_date": f"2026-10-{1 + n % 28:02d}",
                    "purpose": "home_visit",
                    "status": "completed",
                    "created_at": NOW,
                    "updated_at": NOW,
                    "updated_by": agent_id,
                },
            )
            hashes = []
            for _ in range(per_visit if made + per_visit <= photos else photos - made):
                data = os.urandom(photo_bytes)  # one photo in memory at a time
                digest = hashlib.sha256(data).hexdigest()
                attachment_rows.insert_blob(
                    db,
                    {
                        "sha256": digest,
                        "size": len(data),
                        "content_type": "image/jpeg",
                        "data": data,
                        "created_at": NOW,
                        "uploaded_by": agent_id,
                    },
                )
                hashes.append(digest)
                made += 1
            body = {"outcome": "not_home", "arrived_at": NOW, "attachments": hashes}
            sync_rows.insert_records(
                db,
                [
                    {
                        "id": str(uuid.uuid4()),
                        "kind": "visit_report",
                        "agent_id": agent_id,
                        "device_id": "bench-phone",
                        "visit_id": visit_id,
                        "case_id": case["id"],
                        "device_seq": n,
                        "recorded_at": NOW,
                        "received_at": NOW,
                        "digest": "0" * 64,
                        "status": "accepted",
                        "outcome": json.dumps({"status": "accepted", "flags": []}),
                        "body": json.dumps(body),
                        "raw_digest": None,
                    }
                ],
            )
    with transaction(db):
        contact_rows.insert_contacts(
            db,
            [
                {
                    "case_id": case["id"],
                    "channel": "phone_call",
                    "direction": "outbound",
                    "occurred_at": f"2026-10-{1 + n % 28:02d}T{9 + n % 8:02d}:{n % 60:02d}:00Z",
                    "agent_id": agent_id,
                    "agent_name": None,
                    "visit_id": None,
                    "logged_by": None,
                    "outcome": "no_answer" if n % 3 else "reached",
                    "duration_s": 0 if n % 3 else 95,
                    "notes": f"bench call {n}",
                    "external_ref": f"dialer-{n}",
                    "natural_key": f"bench|{case['id']}|phone_call|{n}",
                    "source": "import",
                    "flags": [],
                    "logged_at": NOW,
                }
                for n in range(calls)
            ],
        )
        ledger_rows.append(
            db,
            [
                {
                    "occurred_at": NOW,
                    "user_id": agent_id,
                    "role": "dispatcher",
                    "device_id": None,
                    "borrower_id": case["borrower_id"] if n % 2 else case["borrower_id"] + 1,
                    "case_id": case["id"],
                    "visit_id": None,
                    "fields": json.dumps(["visit_outcome"]),
                    "purpose": "compliance_evidence",
                    "endpoint": "GET /api/v1/records",
                    "request_id": f"bench-{n}",
                    "outcome": "served",
                }
                for n in range(2 * entries)
            ],
        )
    db.conn.close()
    return case["id"]


def timed(env: dict[str, str], workdir: Path, *args: str) -> tuple[float, int, str]:
    """(seconds, peak RSS in MiB, stdout) of one flask command, measured on that child alone
    (os.wait4 returns the rusage of the one process waited for)."""
    out_path = workdir / "stdout.txt"
    started = time.perf_counter()
    with out_path.open("w") as out:
        child = subprocess.Popen(
            [str(VENV_BIN / "flask"), "--app", "wsgi", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    output = out_path.read_text()
    if child.returncode != 0:
        raise SystemExit(output)
    return elapsed, usage.ru_maxrss // 1024, output


def in_process(env: dict[str, str], case_id: int, out_dir: Path) -> None:
    """Build and verify in this process: the time of the work alone, and how far it raised
    this process's peak RSS (resource.getrusage) above what the loaded app already used."""
    os.environ.update(env)
    from server import create_app
    from server.runtime import Caller, Principal
    from server.services.evidence_pack import build_pack
    from server.services.evidence_verify import verify_pack

    app = create_app()
    with app.app_context():
        rt = app.extensions["doorstep"]
        db = open_db(env["DOORSTEP_DATABASE"])
        user = next(db.query("SELECT id, username FROM users WHERE username = 'privacy01'"))
        who = Caller(
            Principal(user["id"], user["username"], "privacy_officer", None),
            "bench-in-process",
            "bench evidence-pack",
            "local",
            rt.clock(),
        )
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        started = time.perf_counter()
        built = build_pack(db, rt, who, case_id, "bench, in process", out_dir)
        build_s = time.perf_counter() - started
        after_build = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        started = time.perf_counter()
        report = verify_pack(built.path)
        verify_s = time.perf_counter() - started
        after_verify = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        db.conn.close()
    print(
        f"in process: build {build_s:.2f} s, verify {verify_s:.2f} s "
        f"({'intact' if report.valid else report.problems[:3]}); peak RSS {before} MiB with "
        f"the app loaded, {after_build} MiB after the build (+{after_build - before}), "
        f"{after_verify} MiB after verifying (+{after_verify - after_build})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--visits", type=int, default=20)
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--photo-mib", type=float, default=2.0)
    parser.add_argument("--entries", type=int, default=200)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    photo_bytes = int(args.photo_mib * 1024 * 1024)
    with scratch_dir() as workdir:
        env = bench_env(workdir)
        flask(env, "demo", "--borrowers", "50", "--agents", "2", "--visits-per-agent", "2")
        case_id = seed(
            workdir / "bench.db", args.visits, args.photos, photo_bytes, args.entries, args.calls
        )
        print(
            f"case {case_id}: {args.visits} visits, {args.photos} photos of "
            f"{args.photo_mib:g} MiB ({args.photos * args.photo_mib:g} MiB), "
            f"{args.calls} calls on its contact log, {args.entries} ledger entries about its "
            "borrower"
        )
        in_process(env, case_id, workdir / "packs-in-process")
        startup_s, startup_rss, _ = timed(env, workdir, "keys", "list")
        print(f"a flask command that does nothing much: {startup_s:.2f} s, {startup_rss} MiB")
        build_s, build_rss, out = timed(
            env,
            workdir,
            "evidence-pack",
            str(case_id),
            str(workdir / "packs"),
            "--by",
            "privacy01",
            "--reason",
            "bench",
        )
        pack = json.loads(out.strip().splitlines()[-1])["pack"]
        size = sum(p.stat().st_size for p in Path(pack).rglob("*") if p.is_file())
        print(f"build:  {build_s:.2f} s, peak RSS {build_rss} MiB, pack {size / 2**20:.1f} MiB")
        verify_s, verify_rss, _ = timed(env, workdir, "verify-evidence", pack)
        print(f"verify: {verify_s:.2f} s, peak RSS {verify_rss} MiB")
        print(
            f"build beyond start-up: {build_s - startup_s:.2f} s, "
            f"{build_rss - startup_rss} MiB (the photos total {args.photos * args.photo_mib:g} MiB)"
        )


if __name__ == "__main__":
    main()
