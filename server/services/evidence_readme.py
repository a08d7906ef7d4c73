"""README.txt of an evidence pack: how a court or an auditor checks it by hand."""

from __future__ import annotations

from typing import Any

_TEMPLATE = """\
DOORSTEP EVIDENCE PACK {pack_id}
================================================================================

Case {case_id} (borrower {borrower_id}), built {built_at} by {username} ({role}).
Reason given: {reason}
Building this pack was itself recorded: exposure-ledger entry {ledger_seq} (purpose
legal_escalation), signed by ledger checkpoint {checkpoint_id}, and the case was put under
legal hold.

This directory is a BagIt bag (RFC 8493). Everything below can be checked offline, with
standard tools, without trusting the software that made it.

WHAT IS IN IT
  bagit.txt, bag-info.txt          BagIt declaration and metadata
  manifest-sha256.txt              SHA-256 of every file under data/
  tagmanifest-sha256.txt           SHA-256 of every other file (this README included)
  data/pack.json                   who built the pack, when, why, and what each part holds
  data/case.json                   the case and whose it is
  data/visit-reports/              every visit report, as the server stored it, with flags
  data/id-checks.json              ID checks: the result only (match, mismatch, ...). The
                                   ID number and the characters typed are never stored.
  data/agreements/<id>/            agreement.canonical.json (the exact bytes the agreement's
                                   content hash covers), receipt.json (the server's signed
                                   receipt), the borrower's and the agent's signature images
  data/photos/                     photos referenced by the records, named by their SHA-256
  data/disclosures/                the borrower's accounting of disclosures (JSON, CSV)
  data/ledger/entries.jsonl        every exposure-ledger entry about this borrower
  data/ledger/chain.jsonl          for each entry, the chain from it to the nearest signed
                                   checkpoint (entries of other people are ids and field
                                   names only, never values)
  data/ledger/checkpoints.jsonl    those checkpoints; checkpoints/checkpoint-N.msg is the
                                   exact signed message, checkpoint-N.sig the raw signature
  data/keys/                       the server's Ed25519 public key(s), PEM

1. NO FILE CHANGED OR MISSING (coreutils)
     sha256sum -c tagmanifest-sha256.txt
     sha256sum -c manifest-sha256.txt
   Every line must say OK. Also check that no file exists that the manifests do not list:
     find data -type f | sort      (compare with the names in manifest-sha256.txt)

2. BAGIT VALIDATION (any BagIt tool; with Python's bagit package 1.8.1):
     python -m bagit --validate .
   or: python -c "import bagit; bagit.Bag('.').validate(); print('valid')"

3. THE SERVER'S KEY
   Compare data/keys/server-public-key.pem with the key the bank publishes
   (GET /api/v1/auth/public-key) or holds on record. Everything below proves only that
   the holder of that key signed it.

4. CHECKPOINT SIGNATURES (OpenSSL 3.0 or later), for each checkpoint N:
     openssl pkeyutl -verify -pubin -inkey data/keys/<key_id>.pem -rawin \\
       -in data/ledger/checkpoints/checkpoint-N.msg \\
       -sigfile data/ledger/checkpoints/checkpoint-N.sig
   It must print "Signature Verified Successfully". The .msg file is these lines joined by
   a newline, no trailing newline: doorstep-ledger-checkpoint-v1, key_id, head_seq,
   head_hash, created_at -- the same values as the line in checkpoints.jsonl.

5. LEDGER ENTRIES AGAINST THE CHECKPOINT
   Each line of chain.jsonl is an entry. Its "hash" is SHA-256 over the JSON array of
   these values, in this order, compact (no spaces), non-ASCII as UTF-8:
     seq, occurred_at, user_id, role, device_id, borrower_id, case_id, visit_id, fields,
     purpose, endpoint, request_id, outcome, prev_hash
   Each entry's prev_hash is the hash of the entry before it; the last entry of a run has
   the head_hash its checkpoint signed. In Python:
     import hashlib, json
     cols = ["seq","occurred_at","user_id","role","device_id","borrower_id","case_id",
             "visit_id","fields","purpose","endpoint","request_id","outcome","prev_hash"]
     for line in open("data/ledger/chain.jsonl"):
         e = json.loads(line)
         text = json.dumps([e[c] for c in cols], separators=(",", ":"), ensure_ascii=False)
         assert hashlib.sha256(text.encode()).hexdigest() == e["hash"], e["seq"]
   Then every line of entries.jsonl must appear, identical, in chain.jsonl.

6. AGREEMENTS
     sha256sum data/agreements/<id>/agreement.canonical.json
   must equal content_hash in receipt.json. The receipt's signature covers these lines
   joined by a newline: doorstep-receipt-v1, key_id, agreement_id, content_hash,
   received_at; its "signature" is unpadded base64url of the 64 signature bytes.
   The signature images' SHA-256 must equal borrower_signature_sha256 and
   agent_signature_sha256 in record.json; a photo's SHA-256 is its file name.

ALL AT ONCE
   With Doorstep installed:  flask --app wsgi verify-evidence <this directory>
   It runs checks 1, 2, 4, 5 and 6 and exits non-zero on the first kind of failure found,
   naming the file or the ledger entry.
"""


def readme_text(meta: dict[str, Any]) -> str:
    """The README for a pack with this pack.json metadata."""
    return _TEMPLATE.format(
        pack_id=meta["pack_id"],
        case_id=meta["case_id"],
        borrower_id=meta["borrower_id"],
        built_at=meta["built_at"],
        username=meta["built_by"]["username"],
        role=meta["built_by"]["role"],
        reason=meta["reason"].replace("\n", " "),
        ledger_seq=meta["ledger_seq_of_this_disclosure"],
        checkpoint_id=meta["checkpoint_id"],
    )
