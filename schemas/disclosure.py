"""How a response schema says which of its fields are borrower data, and whose.

A field that carries a fact about a borrower names the fact (`borrower_fact("home_geo")`);
the item it sits in names its subject, the field that leads to the borrower
(`borrower_subject("visit")` on a `visit_id`). The server reads these declarations after
each response is dumped and writes one exposure-ledger entry per borrower served; the fact
names are checked against the server's catalogue when the app starts.

The declarations are OpenAPI extensions (`x-borrower-fact`, `x-borrower-subject`,
`x-borrower-fact-keys`), so clients and auditors read in the API document itself which
fields are ledgered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FACT = "x-borrower-fact"
FACT_KEYS = "x-borrower-fact-keys"
SET_BY = "x-borrower-fact-set-by"
SUBJECT = "x-borrower-subject"
# What a subject field holds the id of; the server maps each to a borrower.
SUBJECT_KINDS = ("borrower", "case", "visit", "record")


def borrower_fact(name: str, *, set_by: str | None = None, **metadata: Any) -> dict[str, Any]:
    """Field metadata: this field carries the borrower fact `name`. `set_by`: the request
    field that writes it; a value equal to what the caller sent under that name in the same
    request is handed back, not disclosed (creating a visit with notes is not reading them)."""
    declared = {**metadata, FACT: name}
    if set_by:
        declared[SET_BY] = set_by
    return declared


def borrower_facts_by_key(
    default: str, keys: Mapping[str, str | None], **metadata: Any
) -> dict[str, Any]:
    """Metadata for a free-form object field: each key carries the fact it maps to (None:
    no borrower fact); a key not listed carries `default`, so a new key is never unledgered."""
    return {**metadata, FACT: default, FACT_KEYS: dict(keys)}


def borrower_subject(kind: str, **metadata: Any) -> dict[str, Any]:
    """Field metadata: this field is the id (of a borrower, case, visit or record) that says
    whose facts the other fields of this item are."""
    if kind not in SUBJECT_KINDS:
        raise ValueError(f"unknown subject kind {kind!r}")
    return {**metadata, SUBJECT: kind}
