"""Where a response schema carries borrower facts, read once from its declarations, and the
facts found in one dumped body.

The declarations are field metadata (schemas/disclosure.py). A plan keeps only the parts of
a schema tree that lead to a fact, so walking a body touches nothing else. Building a plan
checks the declarations: every fact is a catalogue name and has a subject, an item says
whose it is through at most one subject field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, fields

from schemas.disclosure import FACT, FACT_KEYS, SET_BY, SUBJECT, SUBJECT_KINDS
from server.domain.disclosure import FACT_KINDS


class DeclarationError(TypeError):
    """A response schema whose borrower-fact declarations are incomplete or unknown."""


@dataclass(frozen=True)
class Plan:
    """One schema's fact-bearing fields, by the key they are dumped under."""

    subject: tuple[str, str] | None  # (key, kind): the id saying whose facts these are
    facts: tuple[tuple[str, str, str | None], ...]  # (key, fact, request field setting it)
    keyed: tuple[tuple[str, str, Mapping[str, str | None]], ...]  # (key, default, fact per key)
    nested: tuple[tuple[str, Plan], ...]

    def facts_declared(self) -> set[str]:
        """Every fact name this plan can find."""
        names = {fact for _, fact, _ in self.facts}
        for _, default, by_key in self.keyed:
            names |= {default} | {fact for fact in by_key.values() if fact}
        for _, child in self.nested:
            names |= child.facts_declared()
        return names


@dataclass(slots=True)
class Found:
    """The facts of one item of a body: whose (the subject's kind and id), and where each
    is (its key in `container`, to remove it; the request field that writes it)."""

    subject_kind: str
    subject_id: Any
    container: dict[str, Any]
    places: list[tuple[str, str, str | None]]  # (key, fact, set_by)


def plan_for(schema: Any) -> Plan | None:
    """The plan of a response schema (class or instance); None when it carries no fact."""
    if isinstance(schema, type) and issubclass(schema, Schema):
        schema = schema()
    if not isinstance(schema, Schema):
        return None
    return _plan(schema, inherited_subject=False, path=type(schema).__name__)


def _nested_schema(field: fields.Field) -> Schema | None:
    if isinstance(field, fields.List):
        field = field.inner
    if isinstance(field, fields.Nested):
        return field.schema
    return None


def _check_fact(name: Any, where: str) -> None:
    if name not in FACT_KINDS:
        raise DeclarationError(f"{where}: {name!r} is not a borrower fact in the catalogue")


def _plan(schema: Schema, *, inherited_subject: bool, path: str) -> Plan | None:
    subject = None
    for name, field in schema.dump_fields.items():
        if SUBJECT in field.metadata:
            kind = field.metadata[SUBJECT]
            if kind not in SUBJECT_KINDS or subject is not None:
                raise DeclarationError(f"{path}.{name}: a second or unknown subject {kind!r}")
            subject = (field.data_key or name, kind)
    has_subject = inherited_subject or subject is not None
    facts, keyed, nested = [], [], []
    for name, field in schema.dump_fields.items():
        key, where = field.data_key or name, f"{path}.{name}"
        if FACT in field.metadata:
            fact = field.metadata[FACT]
            _check_fact(fact, where)
            if not has_subject:
                raise DeclarationError(f"{where}: fact {fact!r} without a subject field")
            if FACT_KEYS in field.metadata:
                by_key = field.metadata[FACT_KEYS]
                for each in by_key.values():
                    if each is not None:
                        _check_fact(each, where)
                keyed.append((key, fact, dict(by_key)))
            else:
                facts.append((key, fact, field.metadata.get(SET_BY)))
            continue
        inner = _nested_schema(field)
        if inner is not None:
            child = _plan(inner, inherited_subject=has_subject, path=where)
            if child is not None:
                nested.append((key, child))
    if not (facts or keyed or nested):
        return None
    return Plan(subject, tuple(facts), tuple(keyed), tuple(nested))


def carries(value: Any) -> bool:
    """A value that tells something: not null, not empty."""
    return value is not None and value != "" and value != [] and value != {}


def walk(plan: Plan, data: Any) -> list[Found]:
    """Every fact the dumped body carries, grouped by the item it is in, with its subject."""
    found: list[Found] = []
    _walk(plan, data, ("", None), found)
    return found


def _walk(plan: Plan, data: Any, subject: tuple[str, Any], found: list[Found]) -> None:
    # A list's items are walked in this loop, not by a call each: an answer is lists of
    # hundreds of small items (outcomes, their flags, cards); the plan's parts are read once.
    own_subject, facts, keyed, nested = plan.subject, plan.facts, plan.keyed, plan.nested
    if own_subject is None and not keyed and not nested and isinstance(data, list):
        # Leaves of the subject above them (an outcome's flags): their facts alone.
        for item in data:
            if isinstance(item, dict):
                get = item.get
                places = [
                    place
                    for place in facts
                    if (value := get(place[0])) is not None
                    and value != ""
                    and value != []
                    and value != {}
                ]
                if places:
                    found.append(Found(subject[0], subject[1], item, places))
            elif isinstance(item, list):
                _walk(plan, item, subject, found)
        return
    for item in data if isinstance(data, list) else (data,):
        if isinstance(item, list):
            _walk(plan, item, subject, found)
            continue
        if not isinstance(item, dict):
            continue
        get = item.get
        whose = subject if own_subject is None else (own_subject[1], get(own_subject[0]))
        # carries(), inline: a pull's body holds hundreds of facts.
        places = [
            place
            for place in facts
            if (value := get(place[0])) is not None and value != "" and value != [] and value != {}
        ]
        for key, default, by_key in keyed:
            value = get(key)
            if isinstance(value, dict):
                inner = [
                    (k, by_key.get(k, default), None) for k, each in value.items() if carries(each)
                ]
                inner = [place for place in inner if place[1] is not None]
                if inner:
                    found.append(Found(whose[0], whose[1], value, inner))
            elif carries(value):
                places.append((key, default, None))
        if places:
            found.append(Found(whose[0], whose[1], item, places))
        for key, child in nested:
            value = get(key)
            if value is not None:
                _walk(child, value, whose, found)


def echoes(plan: Plan) -> bool:
    """Whether any fact the plan finds may echo a request field (a SET_BY declaration)."""
    return any(set_by for _, _, set_by in plan.facts) or any(
        echoes(child) for _, child in plan.nested
    )
