"""The sections of an evidence pack: each writes its files under the pack's payload and names
the borrower facts it carries. `SECTIONS` is the list the builder runs, in order; adding a
section (the contact timeline, the visit register) is adding one entry.

Allow-lists throughout: an ID check is written as its result only (never the typed
characters, never the number on file); a record body is written as stored, and the server
never stores the typed ID characters in the first place (server/services/push_validation.py).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from schemas.audit_reports import DisclosureReportSchema
from schemas.visit_register import RegisterLineSchema
from server.domain.csv_cells import to_csv
from server.domain.ledger import HASHED_COLUMNS, checkpoint_message
from server.runtime import Runtime
from server.services import audit_reports, visit_register
from server.services.checkpoints import as_checkpoint
from server.storage import evidence as evidence_rows
from server.storage import sync as sync_rows
from sync.canonical import agreement_canonical_bytes
from sync.cases import CASE_FLAGS
from sync.compliance import BADGE_MISMATCH
from sync.identity import id_verification
from sync.receipts import RECEIPT_VERSION
from sync.signing import decode_signature


@dataclass
class PackContext:
    """What every section reads from and writes to."""

    db: sqlite_utils.Database
    rt: Runtime
    case: dict[str, Any]
    borrower: dict[str, Any]
    payload: Path  # the directory that becomes the bag's data/
    records: list[dict[str, Any]] = field(default_factory=list)
    contents: dict[str, Any] = field(default_factory=dict)  # section -> summary, for pack.json

    def write_json(self, relative: str, document: Any) -> None:
        """A JSON file under the payload (sorted keys, UTF-8, one trailing newline)."""
        self.write_bytes(relative, _json(document).encode())

    def write_bytes(self, relative: str, data: bytes) -> None:
        """A file under the payload."""
        path = self.payload / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def copy_blob(self, relative: str, sha256: str) -> dict[str, Any] | None:
        """Stream a stored blob into the payload in chunks; its metadata, None if gone."""
        meta = evidence_rows.blob_meta(self.db, sha256)
        if meta is None:
            return None
        path = self.payload / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            evidence_rows.copy_blob(self.db, meta["rowid"], out)
        return {"sha256": sha256, "size": meta["size"], "content_type": meta["content_type"]}


@dataclass(frozen=True)
class Section:
    """One part of the pack: its name, the borrower facts it carries, and its writer."""

    name: str
    facts: frozenset[str]
    write: Callable[[PackContext], None]


def _json(document: Any) -> str:
    return json.dumps(document, sort_keys=True, ensure_ascii=False, indent=2) + "\n"


def _body(record: dict[str, Any]) -> dict[str, Any]:
    return json.loads(record["body"])


def _outcome(record: dict[str, Any]) -> dict[str, Any]:
    return json.loads(record["outcome"])


def _extension(content_type: str) -> str:
    return {"image/jpeg": ".jpg", "image/png": ".png"}.get(content_type) or (
        mimetypes.guess_extension(content_type) or ".bin"
    )


# -- case -----------------------------------------------------------------------------------


def write_case(pack: PackContext) -> None:
    """The case and whose it is: ids, name, product, amounts, status and flags."""
    case, borrower = pack.case, pack.borrower
    pack.write_json(
        "case.json",
        {
            "case_id": case["id"],
            "case_external_id": case["external_id"],
            "borrower_id": borrower["id"],
            "borrower_external_id": borrower["external_id"],
            "display_name": borrower["full_name"],
            "product": case["product"],
            "overdue_amount": case["overdue_amount"],
            "currency": case["currency"],
            "status": case["status"],
            "flags": {flag: bool(case[flag]) for flag in CASE_FLAGS},
        },
    )
    pack.contents["case"] = "case.json"


# -- field records ----------------------------------------------------------------------------


def _record_meta(record: dict[str, Any]) -> dict[str, Any]:
    outcome = _outcome(record)
    return {
        "record_id": record["id"],
        "kind": record["kind"],
        "visit_id": record["visit_id"],
        "agent_id": record["agent_id"],
        "device_id": record["device_id"],
        "recorded_at": record["recorded_at"],
        "received_at": record["received_at"],
        "status": outcome.get("status"),
        "flags": outcome.get("flags", []),
    }


def write_visit_reports(pack: PackContext) -> None:
    """Every visit report of the case as stored, with its outcome and flags."""
    visits = evidence_rows.case_visits(pack.db, pack.case["id"])
    written = []
    for record in pack.records:
        if record["kind"] != "visit_report":
            continue
        relative = f"visit-reports/visit-{record['visit_id']}/{record['id']}.json"
        visit = visits.get(record["visit_id"], {})
        pack.write_json(
            relative,
            {**_record_meta(record), "visit": visit, "report": _body(record)},
        )
        written.append(relative)
    pack.contents["visit_reports"] = written


def id_check(record: dict[str, Any]) -> dict[str, Any]:
    """An ID confirmation as its result only: what was checked and what came out."""
    body, outcome = _body(record), _outcome(record)
    kind = body.get("confirmation_kind")
    result = id_verification(record["kind"], body, outcome)
    if kind == "agent_credential":
        codes = {flag.get("code") for flag in outcome.get("flags", [])}
        result = "badge_mismatch" if BADGE_MISMATCH in codes else "badge_match"
    return {
        "record_id": record["id"],
        "visit_id": record["visit_id"],
        "agent_id": record["agent_id"],
        "recorded_at": record["recorded_at"],
        "received_at": record["received_at"],
        "confirmation_kind": kind,
        "result": result,
        "borrower_acknowledged": body.get("borrower_acknowledged"),
        "flag_codes": sorted({flag.get("code") for flag in outcome.get("flags", [])}),
    }


def write_id_checks(pack: PackContext) -> None:
    """ID-check results, never an ID number or the characters typed."""
    checks = [id_check(r) for r in pack.records if r["kind"] == "id_confirmation"]
    pack.write_json("id-checks.json", checks)
    pack.contents["id_checks"] = len(checks)


def write_agreements(pack: PackContext) -> None:
    """Each agreement in canonical form, its signed receipt and both signature images."""
    written = []
    agreements = [r for r in pack.records if r["kind"] == "agreement"]
    receipts = sync_rows.receipts(pack.db, [r["id"] for r in agreements])
    for record in agreements:
        body = _body(record)
        folder = f"agreements/{record['id']}"
        canonical = agreement_canonical_bytes(body)
        pack.write_bytes(f"{folder}/agreement.canonical.json", canonical)
        pack.write_json(f"{folder}/record.json", {**_record_meta(record), "agreement": body})
        receipt = receipts.get(record["id"])
        if receipt is not None:
            pack.write_json(
                f"{folder}/receipt.json",
                {
                    "version": RECEIPT_VERSION,
                    "agreement_id": receipt["agreement_id"],
                    "content_hash": receipt["content_hash"],
                    "received_at": receipt["received_at"],
                    "key_id": receipt["key_id"],
                    "signature": receipt["signature"],
                },
            )
        images = {}
        for who in ("borrower", "agent"):
            sha256 = body.get(f"{who}_signature_sha256")
            meta = evidence_rows.blob_meta(pack.db, sha256) if sha256 else None
            if meta is None:
                continue
            name = f"{folder}/{who}-signature{_extension(meta['content_type'])}"
            images[who] = pack.copy_blob(name, sha256)
        written.append(
            {
                "agreement_id": record["id"],
                "content_hash": hashlib.sha256(canonical).hexdigest(),
                "receipt": receipt is not None,
                "signatures": sorted(images),
            }
        )
    pack.contents["agreements"] = written


def write_photos(pack: PackContext) -> None:
    """Every blob a record of the case lists as an attachment, streamed in chunks."""
    referenced: dict[str, list[str]] = {}
    for record in pack.records:
        for sha256 in _body(record).get("attachments") or ():
            referenced.setdefault(sha256, []).append(record["id"])
    index = []
    for sha256, record_ids in sorted(referenced.items()):
        meta = evidence_rows.blob_meta(pack.db, sha256)
        if meta is None:
            index.append({"sha256": sha256, "records": record_ids, "file": None})
            continue
        name = f"photos/{sha256}{_extension(meta['content_type'])}"
        pack.copy_blob(name, sha256)
        index.append({**_blob(meta), "records": record_ids, "file": name})
    pack.write_json("photos/index.json", index)
    pack.contents["photos"] = len([item for item in index if item["file"]])


def _blob(meta: dict[str, Any]) -> dict[str, Any]:
    return {"sha256": meta["sha256"], "size": meta["size"], "content_type": meta["content_type"]}


# -- disclosures, ledger, keys -----------------------------------------------------------------


def write_disclosures(pack: PackContext) -> None:
    """The borrower's accounting of disclosures (JSON and CSV), as the privacy officer reads it."""
    args = {"since": None, "until": None, "after": 0, "limit": 10000}
    report = audit_reports.borrower_disclosures(pack.db, pack.rt, pack.borrower["id"], args)
    dumped = DisclosureReportSchema().dump(report)
    pack.write_json("disclosures/report.json", dumped)
    csv_text = to_csv(audit_reports.DISCLOSURE_CSV_COLUMNS, dumped["items"])
    pack.write_bytes("disclosures/report.csv", csv_text.encode())
    pack.contents["disclosures"] = {
        "items": len(dumped["items"]),
        "since": dumped["since"],
        "truncated": dumped["next_after"] is not None,
    }


def ledger_line(row: dict[str, Any]) -> str:
    """A ledger entry as one JSON line: the hashed columns and the stored hash."""
    document = {column: row[column] for column in HASHED_COLUMNS}
    document["hash"] = row["hash"]
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def write_ledger(pack: PackContext) -> None:
    """The borrower's entries, and for each the chain from it to the nearest checkpoint that
    signs it, with that checkpoint's signed message and signature as separate files."""
    entries = evidence_rows.borrower_entries(pack.db, pack.borrower["id"])
    runs: list[tuple[int, dict[str, Any]]] = []  # (first borrower entry, its checkpoint)
    seqs = [e["seq"] for e in entries]
    start = 0  # seqs[start:] still wait for a checkpoint; one pass over the checkpoints
    if seqs:
        for checkpoint in evidence_rows.checkpoints_from(pack.db, seqs[0]):
            if seqs[start] > checkpoint["head_seq"]:
                continue
            runs.append((seqs[start], checkpoint))
            start = bisect.bisect_right(seqs, checkpoint["head_seq"], lo=start)
            if start == len(seqs):
                break
    pending = seqs[start:]
    with _open(pack, "ledger/entries.jsonl") as f:
        for entry in entries:
            f.write(ledger_line(entry) + "\n")
    with _open(pack, "ledger/chain.jsonl") as f:
        for first, checkpoint in runs:
            for row in evidence_rows.entries_between(pack.db, first, checkpoint["head_seq"]):
                f.write(ledger_line(row) + "\n")
    with _open(pack, "ledger/checkpoints.jsonl") as f:
        for first, row in runs:
            signed = as_checkpoint(row)
            document = {**signed.to_dict(), "id": row["id"], "covers_from_seq": first}
            f.write(json.dumps(document, sort_keys=True) + "\n")
            message = checkpoint_message(
                signed.key_id, signed.head_seq, signed.head_hash, signed.created_at
            )
            pack.write_bytes(f"ledger/checkpoints/checkpoint-{row['id']}.msg", message)
            pack.write_bytes(
                f"ledger/checkpoints/checkpoint-{row['id']}.sig",
                decode_signature(signed.signature) or b"",
            )
    pack.contents["ledger"] = {
        "entries": len(entries),
        "unsigned_entries": len(pending),
        "checkpoints": [row["id"] for _, row in runs],
    }


def _open(pack: PackContext, relative: str):
    path = pack.payload / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("w", encoding="utf-8", newline="\n")


def write_keys(pack: PackContext) -> None:
    """The server's public key and every key of its keyring, as PEM files."""
    current = pack.rt.keys.key_id
    pack.write_bytes("keys/server-public-key.pem", pack.rt.keys.public_pem().encode())
    listing = []
    for key in evidence_rows.keyring(pack.db):
        pack.write_bytes(f"keys/{key['key_id']}.pem", key["public_key_pem"].encode())
        listing.append(
            {
                "key_id": key["key_id"],
                "added_at": key["added_at"],
                "endorsed_by": key["endorsed_by"],
                "current": key["key_id"] == current,
            }
        )
    if not any(k["key_id"] == current for k in listing):
        pack.write_bytes(f"keys/{current}.pem", pack.rt.keys.public_pem().encode())
        listing.append({"key_id": current, "added_at": None, "endorsed_by": None, "current": True})
    pack.write_json("keys/keyring.json", {"current_key_id": current, "keys": listing})
    pack.contents["keys"] = [k["key_id"] for k in listing]


def write_register(pack: PackContext) -> None:
    """The case's visit register: every attempt's time, place, method and outcome, with
    its flags and their review (JSON and CSV, as a dispatcher's export shows them)."""
    lines = visit_register.case_register(pack.db, pack.rt, pack.case["id"])
    dumped = RegisterLineSchema(many=True).dump(lines)
    pack.write_json("register/visit_register.json", dumped)
    csv_text = to_csv(visit_register.CSV_COLUMNS, visit_register.csv_rows(dumped))
    pack.write_bytes("register/visit_register.csv", csv_text.encode())
    pack.contents["register"] = {"lines": len(dumped)}


_CASE_FACTS = frozenset({"display_name", "product", "overdue_amount", "currency", "case_flags"})
_REPORT_FACTS = frozenset(
    {"visit_outcome", "promise_to_pay", "visit_notes", "gps_fix", "flag_details", "field_record"}
)

# The order the builder runs them in.
SECTIONS: list[Section] = [
    Section("case", _CASE_FACTS, write_case),
    Section("visit_reports", _REPORT_FACTS, write_visit_reports),
    Section("id_checks", frozenset({"id_result"}), write_id_checks),
    Section(
        "agreements",
        frozenset({"agreement_terms", "gps_fix", "attachment_bytes"}),
        write_agreements,
    ),
    Section("photos", frozenset({"attachment_bytes"}), write_photos),
    Section(
        "register",
        frozenset({"display_name", "visit_outcome", "gps_fix", "id_result", "flag_details"}),
        write_register,
    ),
    Section("disclosures", frozenset(), write_disclosures),
    Section("ledger", frozenset(), write_ledger),
    Section("keys", frozenset(), write_keys),
]
