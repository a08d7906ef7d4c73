"""The legal evidence pack: a BagIt bag that validates with the stock bagit validator and
with `flask verify-evidence`, fails on any changed byte, deleted file or edited ledger line,
holds no ID number, and whose building is ledgered, staff-logged and puts the case on hold.
Attachment downloads: the bytes, to dispatchers, each download ledgered."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import uuid
from datetime import timedelta
from pathlib import Path

import bagit
import pytest

from server.services.evidence_verify import verify_pack
from sync.canonical import agreement_content_hash
from tests.conftest import T0

API = "/api/v1"
PNG = b"\x89PNG\r\n\x1a\n"
PHOTOS = [PNG + b"photo one " * 50, PNG + b"photo two " * 70]
SIGNATURES = {"borrower": PNG + b"borrower signs", "agent": PNG + b"agent signs"}
NOTE = "EVIDENCE note: borrower promised at the gate"
REASON = "Shanghai court, matter 2026-0042"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def record(kind: str, visit_id: int, seq: int, minutes_ago: int, body: dict) -> dict:
    return {
        "id": str(uuid.UUID(int=seq, version=4)),
        "kind": kind,
        "visit_id": visit_id,
        "device_seq": seq,
        "recorded_at": iso(T0 - timedelta(minutes=minutes_ago)),
        "body": body,
    }


def upload(client, headers, data: bytes) -> str:
    answer = client.put(
        f"{API}/attachments/{sha(data)}",
        data=data,
        headers={**headers, "Content-Type": "image/png"},
    )
    assert answer.status_code in (200, 201), answer.json
    return sha(data)


@pytest.fixture
def field(world, client, auth, db):
    """agent1's records for v1: badge, ID check, a report with two photos, an agreement;
    then a dispatcher reads them (ledger entries for the borrower)."""
    agent = auth.headers("agent1")
    v1, c1 = world.visits["v1"], world.cases["C-0001"]
    national_id = db.execute(
        "SELECT b.national_id FROM borrowers b JOIN cases c ON c.borrower_id = b.id WHERE c.id = ?",
        [c1],
    ).fetchone()[0]
    photos = [upload(client, agent, p) for p in PHOTOS]
    signatures = {who: upload(client, agent, data) for who, data in SIGNATURES.items()}
    agreement = record("agreement", v1, 4, 25, {})
    body = {
        "agreement_id": agreement["id"],
        "case_id": c1,
        "visit_id": v1,
        "currency": "CNY",
        "total_amount": "900.00",
        "installments": [{"due_date": "2026-12-15", "amount": "900.00"}],
        "template_id": "repayment-plan",
        "template_version": 3,
        "borrower_signature_sha256": signatures["borrower"],
        "agent_signature_sha256": signatures["agent"],
        "signed_at": iso(T0 - timedelta(minutes=26)),
        "signed_lat": "31.2014",
        "signed_lon": "121.4014",
    }
    body["content_hash"] = agreement_content_hash(body)
    agreement["body"] = body
    records = [
        record(
            "id_confirmation",
            v1,
            1,
            40,
            {
                "confirmation_kind": "agent_credential",
                "badge_number": "B-1",
                "borrower_acknowledged": True,
            },
        ),
        record(
            "id_confirmation",
            v1,
            2,
            38,
            {"confirmation_kind": "borrower_identity", "id_last6": national_id[-6:]},
        ),
        record(
            "visit_report",
            v1,
            3,
            20,
            {
                "arrived_at": iso(T0 - timedelta(minutes=39)),
                "departed_at": iso(T0 - timedelta(minutes=20)),
                "outcome": "promise_to_pay",
                "promise_amount": "300.00",
                "promise_date": "2026-12-01",
                "notes": NOTE,
                "location": {"lat": 31.2013, "lon": 121.4013, "accuracy_m": 10},
                "attachments": photos,
            },
        ),
        agreement,
    ]
    answer = client.post(
        f"{API}/sync/push", json={"device_time": iso(T0), "records": records}, headers=agent
    )
    assert answer.status_code == 200, answer.json
    assert all(o["status"] in ("accepted", "flagged") for o in answer.json["outcomes"])
    read = client.get(f"{API}/records?case_id={c1}", headers=auth.headers("dispatcher"))
    assert read.status_code == 200
    return {
        "case_id": c1,
        "national_id": national_id,
        "photos": photos,
        "signatures": signatures,
        "agreement_id": agreement["id"],
        "borrower_id": db.execute("SELECT borrower_id FROM cases WHERE id = ?", [c1]).fetchone()[0],
    }


def build(client, auth, case_id: int, request_id: str = "pack-build-1"):
    return client.post(
        f"{API}/cases/{case_id}/evidence-pack",
        json={"reason": REASON},
        headers={**auth.headers("privacy"), "X-Request-Id": request_id},
    )


def unpack(answer, into: Path) -> Path:
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    assert answer.mimetype == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(answer.data)) as tar:
        names = tar.getnames()
        tar.extractall(into, filter="data")
    (root,) = {name.split("/")[0] for name in names}
    assert root == answer.headers["X-Evidence-Pack-Id"]
    return into / root


@pytest.fixture
def pack(field, client, auth, tmp_path) -> Path:
    """The pack as the API answers it, unpacked."""
    return unpack(build(client, auth, field["case_id"]), tmp_path / "unpacked")


def payload_files(pack: Path) -> list[Path]:
    return sorted(p for p in (pack / "data").rglob("*") if p.is_file())


def cli_verify(app, pack: Path):
    return app.test_cli_runner().invoke(args=["verify-evidence", str(pack)])


def test_a_pack_validates_with_bagit_and_verify_evidence(app, pack, field):
    bag = bagit.Bag(str(pack))
    bag.validate()  # the stock validator: raises on any problem
    assert set(bag.algorithms) == {"sha256"}
    manifest = (pack / "manifest-sha256.txt").read_text().splitlines()
    listed = {line.split(maxsplit=1)[1] for line in manifest}
    assert listed == {p.relative_to(pack).as_posix() for p in payload_files(pack)}
    tagmanifest = (pack / "tagmanifest-sha256.txt").read_text().splitlines()
    tags = {line.split(maxsplit=1)[1] for line in tagmanifest}
    assert {"README.txt", "bag-info.txt", "bagit.txt", "manifest-sha256.txt"} <= tags
    result = cli_verify(app, pack)
    assert result.exit_code == 0, result.output
    assert "intact" in result.output
    report = verify_pack(pack)
    assert report.valid and report.checked["agreements"] == 1
    assert report.checked["ledger_entries"] >= 2


def test_the_pack_holds_the_case_evidence(pack, field):
    data = pack / "data"
    (report_file,) = (data / "visit-reports").rglob("*.json")
    assert json.loads(report_file.read_text())["report"]["notes"] == NOTE
    checks = json.loads((data / "id-checks.json").read_text())
    assert sorted(c["result"] for c in checks) == ["badge_match", "match"]
    folder = data / "agreements" / field["agreement_id"]
    receipt = json.loads((folder / "receipt.json").read_text())
    assert sha((folder / "agreement.canonical.json").read_bytes()) == receipt["content_hash"]
    assert (folder / "borrower-signature.png").read_bytes() == SIGNATURES["borrower"]
    assert (folder / "agent-signature.png").read_bytes() == SIGNATURES["agent"]
    for photo, digest in zip(PHOTOS, field["photos"], strict=True):
        assert (data / "photos" / f"{digest}.png").read_bytes() == photo
    register = json.loads((data / "register" / "visit_register.json").read_text())
    reported = [line for line in register if line["record_id"]]
    assert {line["case_id"] for line in register} == {field["case_id"]}
    assert reported and all(line["distance_from_home_m"] is not None for line in reported)
    assert (data / "register" / "visit_register.csv").read_text().startswith("visit_date,")
    disclosures = json.loads((data / "disclosures" / "report.json").read_text())
    assert disclosures["borrower_id"] == field["borrower_id"]
    assert (data / "disclosures" / "report.csv").read_text().startswith("seq,")
    entries = [json.loads(line) for line in (data / "ledger" / "entries.jsonl").open()]
    assert {e["borrower_id"] for e in entries} == {field["borrower_id"]}
    assert entries[-1]["purpose"] == "legal_escalation"  # the pack's own disclosure
    assert (data / "keys" / "server-public-key.pem").read_text().startswith("-----BEGIN")
    meta = json.loads((data / "pack.json").read_text())
    assert meta["reason"] == REASON and meta["built_by"]["role"] == "privacy_officer"
    assert "sha256sum -c" in (pack / "README.txt").read_text()


def test_no_file_holds_the_id_number_or_the_typed_characters(pack, field):
    number = field["national_id"]
    needles = [number.encode(), number[-6:].encode(), b"id_last6"]
    for path in sorted(p for p in pack.rglob("*") if p.is_file()):
        content = path.read_bytes()
        for needle in needles:
            assert needle not in content, (path, needle)


@pytest.mark.parametrize("which", range(6))
def test_one_flipped_byte_in_any_payload_file_fails(app, pack, which):
    files = payload_files(pack)
    target = files[which * len(files) // 6]
    content = bytearray(target.read_bytes())
    content[len(content) // 2] ^= 0x01
    target.write_bytes(bytes(content))
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(pack)).validate()
    result = cli_verify(app, pack)
    assert result.exit_code != 0
    assert target.relative_to(pack).as_posix() in result.output


def test_a_deleted_file_fails(app, pack, field):
    target = pack / "data" / "photos" / f"{field['photos'][0]}.png"
    target.unlink()
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(pack)).validate()
    result = cli_verify(app, pack)
    assert result.exit_code != 0 and "photos" in result.output


def test_a_changed_readme_fails(app, pack):
    readme = pack / "README.txt"
    readme.write_text(readme.read_text().replace("DOORSTEP", "D00RSTEP"))
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(pack)).validate()
    assert cli_verify(app, pack).exit_code != 0


def test_a_file_slipped_in_fails(app, pack):
    (pack / "NOTE-FROM-SOMEONE.txt").write_text("trust me")
    (pack / "data" / "extra.json").write_text("{}")
    result = cli_verify(app, pack)
    assert result.exit_code != 0
    assert "NOTE-FROM-SOMEONE.txt is in no manifest" in result.output
    assert "data/extra.json" in result.output


def _edit_ledger_line(pack: Path, name: str) -> int:
    path = pack / "data" / "ledger" / name
    lines = path.read_text().splitlines()
    entry = json.loads(lines[0])
    entry["purpose"] = "home_visit" if entry["purpose"] != "home_visit" else "follow_up"
    lines[0] = json.dumps(entry, separators=(",", ":"), sort_keys=True)
    path.write_text("\n".join(lines) + "\n")
    return entry["seq"]


def test_an_edited_ledger_line_fails_even_with_fresh_manifests(app, pack):
    seq = _edit_ledger_line(pack, "chain.jsonl")
    _edit_ledger_line(pack, "entries.jsonl")
    assert cli_verify(app, pack).exit_code != 0
    # Someone who also rewrites the manifests passes bagit, not the ledger check.
    bag = bagit.Bag(str(pack))
    bag.save(manifests=True)
    bagit.Bag(str(pack)).validate()
    report = verify_pack(pack)
    assert not report.valid
    assert any(f"ledger entry {seq}" in p and "hash" in p for p in report.problems)
    result = cli_verify(app, pack)
    assert result.exit_code != 0 and f"ledger entry {seq}" in result.output


def test_an_entry_left_out_of_the_chain_fails(pack):
    path = pack / "data" / "ledger" / "chain.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    bagit.Bag(str(pack)).save(manifests=True)
    report = verify_pack(pack)
    assert any("missing from chain.jsonl" in p for p in report.problems)


def test_an_entry_left_out_of_the_borrower_list_fails(pack):
    path = pack / "data" / "ledger" / "entries.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[1:]) + "\n")
    bagit.Bag(str(pack)).save(manifests=True)
    seq = json.loads(lines[0])["seq"]
    report = verify_pack(pack)
    assert f"ledger entry {seq} is about the borrower but not listed" in report.problems


def test_each_entry_proves_against_its_nearest_checkpoint(field, client, auth, app, tmp_path):
    first = client.post(f"{API}/audit/checkpoints", json={}, headers=auth.headers("privacy"))
    assert first.status_code == 201
    again = client.get(
        f"{API}/records?case_id={field['case_id']}", headers=auth.headers("dispatcher")
    )
    assert again.status_code == 200
    pack = unpack(build(client, auth, field["case_id"]), tmp_path / "unpacked")
    ledger = pack / "data" / "ledger"
    runs = [json.loads(line) for line in (ledger / "checkpoints.jsonl").open()]
    assert [run["id"] for run in runs][0] == first.json["id"] and len(runs) == 2
    entries = [json.loads(line)["seq"] for line in (ledger / "entries.jsonl").open()]
    assert runs[0]["covers_from_seq"] == entries[0]
    assert runs[1]["covers_from_seq"] == min(s for s in entries if s > runs[0]["head_seq"])
    assert verify_pack(pack).valid
    assert cli_verify(app, pack).exit_code == 0


def test_building_is_ledgered_staff_logged_and_sets_legal_hold(pack, field, db, world):
    (entry,) = db.query("SELECT * FROM exposure_ledger WHERE request_id = 'pack-build-1'")
    assert entry["purpose"] == "legal_escalation"
    assert entry["user_id"] == world.users["privacy"] and entry["role"] == "privacy_officer"
    assert (entry["borrower_id"], entry["case_id"]) == (field["borrower_id"], field["case_id"])
    facts = set(json.loads(entry["fields"]))
    assert {"visit_notes", "id_result", "agreement_terms", "attachment_bytes"} <= facts
    case = db.execute("SELECT legal_hold FROM cases WHERE id = ?", [field["case_id"]]).fetchone()
    assert case[0] == 1
    history = list(db.query("SELECT * FROM case_history WHERE source = 'evidence_pack'"))
    assert len(history) == 1 and REASON in history[0]["reason"]
    actions = {
        row["action"]: json.loads(row["details"])
        for row in db.query("SELECT * FROM staff_audit WHERE request_id = 'pack-build-1'")
    }
    assert {"evidence_pack_built", "evidence_pack_sealed", "case_changed"} <= set(actions)
    assert actions["evidence_pack_built"]["ledger_seq"] == entry["seq"]
    digest = sha((pack / "tagmanifest-sha256.txt").read_bytes())
    assert actions["evidence_pack_sealed"]["tagmanifest_sha256"] == digest
    # a checkpoint signs the pack's own entry
    signed = db.execute("SELECT max(head_seq) FROM ledger_checkpoints").fetchone()[0]
    assert signed >= entry["seq"]


@pytest.mark.parametrize("user", ["agent1", "dispatcher", "admin"])
def test_other_roles_may_not_build_a_pack(field, client, auth, db, user):
    before = db.execute("SELECT count(*) FROM exposure_ledger").fetchone()[0]
    answer = client.post(
        f"{API}/cases/{field['case_id']}/evidence-pack",
        json={"reason": REASON},
        headers=auth.headers(user),
    )
    assert answer.status_code == 403 and answer.json["error"]["code"] == "forbidden"
    assert db.execute("SELECT count(*) FROM exposure_ledger").fetchone()[0] == before
    hold = db.execute("SELECT legal_hold FROM cases WHERE id = ?", [field["case_id"]]).fetchone()
    assert hold[0] == 0


def test_a_pack_needs_a_reason_and_a_known_case(field, client, auth):
    headers = auth.headers("privacy")
    missing = client.post(f"{API}/cases/{field['case_id']}/evidence-pack", json={}, headers=headers)
    assert missing.status_code == 422 and "reason" in json.dumps(missing.json)
    blank = client.post(
        f"{API}/cases/{field['case_id']}/evidence-pack", json={"reason": "  "}, headers=headers
    )
    assert blank.status_code == 422 and blank.json["error"]["field"] == "reason"
    unknown = client.post(
        f"{API}/cases/999999/evidence-pack", json={"reason": "x"}, headers=headers
    )
    assert unknown.status_code == 404


def test_the_cli_builds_a_pack_that_verifies(app, field, db, tmp_path):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "evidence-pack",
            str(field["case_id"]),
            str(tmp_path / "out"),
            "--by",
            "privacy",
            "--reason",
            REASON,
        ]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    pack = Path(summary["pack"])
    bagit.Bag(str(pack)).validate()
    assert cli_verify(app, pack).exit_code == 0
    (entry,) = db.query("SELECT * FROM exposure_ledger WHERE endpoint = 'cli evidence-pack'")
    assert entry["purpose"] == "legal_escalation" and entry["seq"] == summary["ledger_seq"]
    refused = runner.invoke(
        args=[
            "evidence-pack",
            str(field["case_id"]),
            str(tmp_path / "o2"),
            "--by",
            "dispatcher",
            "--reason",
            REASON,
        ]
    )
    assert refused.exit_code != 0 and "forbidden" in refused.output


# -- attachment downloads ------------------------------------------------------------------


def test_a_dispatcher_downloads_a_photo_and_the_download_is_ledgered(field, client, auth, db):
    digest = field["photos"][1]
    answer = client.get(
        f"{API}/attachments/{digest}/content",
        headers={**auth.headers("dispatcher"), "X-Request-Id": "download-photo-1"},
    )
    assert answer.status_code == 200 and answer.data == PHOTOS[1]
    assert answer.mimetype == "image/png"
    (entry,) = db.query("SELECT * FROM exposure_ledger WHERE request_id = 'download-photo-1'")
    assert set(json.loads(entry["fields"])) == {"attachment_bytes", f"attachment:{digest}"}
    assert (entry["borrower_id"], entry["case_id"], entry["purpose"]) == (
        field["borrower_id"],
        field["case_id"],
        "compliance_evidence",
    )
    # a privacy officer finds every download of that one photo
    found = client.get(
        f"{API}/audit/exposures?field=attachment:{digest}", headers=auth.headers("privacy")
    )
    assert [item["seq"] for item in found.json["items"]] == [entry["seq"]]


def test_a_signature_image_downloads_too(field, client, auth):
    digest = field["signatures"]["borrower"]
    answer = client.get(f"{API}/attachments/{digest}/content", headers=auth.headers("dispatcher"))
    assert answer.status_code == 200 and answer.data == SIGNATURES["borrower"]


@pytest.mark.parametrize("user", ["agent1", "privacy", "admin"])
def test_other_roles_may_not_download_bytes(field, client, auth, db, user):
    before = db.execute("SELECT count(*) FROM exposure_ledger").fetchone()[0]
    answer = client.get(
        f"{API}/attachments/{field['photos'][0]}/content", headers=auth.headers(user)
    )
    assert answer.status_code == 403
    assert db.execute("SELECT count(*) FROM exposure_ledger").fetchone()[0] == before


def test_an_unreferenced_or_unknown_blob_is_not_found_and_not_ledgered(field, client, auth, db):
    loose = upload(client, auth.headers("agent1"), PNG + b"never referenced")
    before = db.execute("SELECT count(*) FROM exposure_ledger").fetchone()[0]
    for digest in (loose, "ab" * 32):
        answer = client.get(
            f"{API}/attachments/{digest}/content", headers=auth.headers("dispatcher")
        )
        assert answer.status_code == 404
    assert db.execute("SELECT count(*) FROM exposure_ledger").fetchone()[0] == before
