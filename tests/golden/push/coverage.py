"""What the code can answer to a push, read from the code itself, and what a golden run
actually answered: so a new flag code, rejection reason, status, record kind or visit
outcome that the corpus never produces fails the golden test instead of going unchecked.

The codes are found in two ways, and their union is required:
- by convention: module constants whose value is their own name in lower case
  (`LATE_SYNC = "late_sync"`) in sync/compliance.py (flag codes) and sync/records.py
  (reasons);
- by reading the source: the first argument of every `Flag(...)` call and the reason of
  every `RecordOutcome(..., "rejected" | "retry", reason, ...)` or `_rejected(record,
  reason, ...)` call under sync/ and server/, resolved in the calling module.
"""

from __future__ import annotations

import ast
import functools
import importlib
import json
import typing
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from schemas.sync import BODY_SCHEMAS
from sync import compliance, identity
from sync import records as record_rules
from sync.compliance import PROFILES
from sync.records import CONFIRMATION_KINDS, Status
from sync.visits import VISIT_OUTCOMES

ROOT = Path(__file__).resolve().parents[3]
SCANNED = ("sync", "server")
NAMES = (
    "profile",
    "status",
    "reason",
    "flag",
    "stored kind",
    "visit outcome",
    "confirmation kind",
    "id_verification",
)


def _named_constants(module: ModuleType) -> set[str]:
    return {
        value
        for name, value in vars(module).items()
        if name.isupper() and isinstance(value, str) and value == name.lower()
    }


@functools.cache
def _calls() -> tuple[tuple[str, ast.Call], ...]:
    """(module name, call) for every call under the scanned packages."""
    return tuple(_walk_calls())


def _walk_calls() -> Iterable[tuple[str, ast.Call]]:
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            if not all(part.isidentifier() for part in module.split(".")):
                continue  # e.g. migrations named 0009_...: not importable, no rules there
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    yield module, node


def _callee(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


def _resolve(node: ast.expr, module_name: str) -> str | None:
    """A string constant, or a module-level name (or `alias.NAME`) holding one."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    module = importlib.import_module(module_name)
    value: object = None
    if isinstance(node, ast.Name):
        value = getattr(module, node.id, None)
    elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        value = getattr(getattr(module, node.value.id, None), node.attr, None)
    return value if isinstance(value, str) else None


def _arg(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    if len(call.args) > position:
        return call.args[position]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def defined_flag_codes() -> set[str]:
    """Every flag code the rules can raise."""
    codes = _named_constants(compliance)
    for module, call in _calls():
        if _callee(call) == "Flag" and (node := _arg(call, 0, "code")) is not None:
            code = _resolve(node, module)
            if code is not None:
                codes.add(code)
    return codes


def defined_reasons() -> set[str]:
    """Every reason a record can be rejected or retried with."""
    reasons = _named_constants(record_rules)
    for module, call in _calls():
        name = _callee(call)
        node = None
        if name == "RecordOutcome":
            status = _arg(call, 1, "status")
            if isinstance(status, ast.Constant) and status.value in ("rejected", "retry"):
                node = _arg(call, 2, "reason")
        elif name == "_rejected":
            node = _arg(call, 1, "reason")
        if node is not None and (reason := _resolve(node, module)) is not None:
            reasons.add(reason)
    return reasons


def defined_id_results() -> set[str]:
    """Every value sync.identity.id_verification can answer (its string returns)."""
    tree = ast.parse(Path(identity.__file__).read_text(encoding="utf-8"))
    function = next(
        n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "id_verification"
    )
    return {
        n.value.value
        for n in ast.walk(function)
        if isinstance(n, ast.Return)
        and isinstance(n.value, ast.Constant)
        and isinstance(n.value.value, str)
    }


def required() -> dict[str, set[str]]:
    """Everything the corpus must produce at least once, by what it is."""
    return {
        "profile": set(PROFILES),
        "status": set(typing.get_args(Status)),
        "reason": defined_reasons(),
        "flag": defined_flag_codes(),
        "stored kind": set(BODY_SCHEMAS),
        "visit outcome": set(VISIT_OUTCOMES),
        "confirmation kind": set(CONFIRMATION_KINDS),
        "id_verification": defined_id_results(),
    }


def produced(lines: Iterable[str]) -> dict[str, set[str]]:
    """What a golden run produced, in the same terms. Flags are read from the stored
    outcomes (the reviewers' full flags), reasons and statuses from the answers."""
    found: dict[str, set[str]] = {name: set() for name in NAMES}
    for text in lines:
        data = json.loads(text)
        if "world" in data:
            found["profile"].add(data["profile"])
        elif "outcome" in data:
            outcome = data["outcome"]
            found["status"].add(outcome["status"])
            if outcome["reason"]:
                found["reason"].add(outcome["reason"])
            if outcome["id_verification"]:
                found["id_verification"].add(outcome["id_verification"])
        elif data.get("table") == "sync_records":
            row = data["row"]
            found["stored kind"].add(row["kind"])
            found["flag"].update(flag["code"] for flag in row["outcome"]["flags"])
            if row["kind"] == "visit_report":
                found["visit outcome"].add(row["body"]["outcome"])
            if row["kind"] == "id_confirmation":
                found["confirmation kind"].add(row["body"]["confirmation_kind"])
    return found
