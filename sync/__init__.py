"""Doorstep's offline-sync engine: pure functions and frozen dataclasses, no I/O.

- `geo`: great-circle distance and GPS fixes.
- `canonical`: the canonical agreement form, its content hash, and record digests.
- `receipts`: Ed25519 receipts over (agreement id, content hash, received at).
- `cursor`: opaque, HMAC-protected pull cursors bound to one device.
- `compliance`: the compliance policy, its named profiles and one function per rule.
- `records`: the values reconciliation takes in and gives back.
- `reconcile`: the decision for each pushed record.
"""
