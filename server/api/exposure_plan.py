"""Where a response schema carries borrower facts, read once from its declarations, and the
facts found in one dumped body.

The declarations are field metadata (schemas/disclosure.py). A plan keeps only the parts of
a schema tree that lead to a fact, so walking a body touches nothing else. Building a plan
checks the declarations: every fact is a catalogue name and has a subject, an item says
whose it is through at most one subject field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


@dataclass(slots=True)
class Sighted:
    """The items of a body that walk() finds with one subject (its kind, and its id of
    one type) and one set of facts, in the order walk finds the first: accounting answers
    such items alike (server/api/ledgering.py), so it is asked once for them all."""

    subject_kind: str
    subject_id: Any
    facts: frozenset[str]
    # (container, places): the places of the container's facts; those whose value carries
    # one (carries()) are the places walk finds (a leaf's items list every place).
    items: list[tuple[dict[str, Any], Sequence[tuple[str, str, str | None]]]]


def sighted(plan: Plan, data: Any) -> list[Sighted]:
    """walk(plan, data), its items grouped by subject and facts (Sighted)."""
    compiled = _WALKERS.get(id(plan))
    if compiled is None or compiled[0] is not plan:
        compiled = _WALKERS[id(plan)] = (plan, _compile(plan))
    groups: dict[Any, Sighted] = {}
    compiled[1](data, "", None, groups)
    return list(groups.values())


# Plans compiled to walkers, by id (a plan with keyed facts is not hashable); the plan is
# kept with its walker so its id is not reused. Plans are made once per response schema.
_WALKERS: dict[int, tuple[Plan, Any]] = {}


def _sight(
    groups: dict[Any, Sighted],
    kind: str,
    subject_id: Any,
    container: dict[str, Any],
    places: list[tuple[str, str, str | None]],
    facts: frozenset[str],
) -> None:
    try:
        # The id's type is part of the key: 1, 1.0 and True are one dict key, but only an
        # int names a subject (exposure._owners).
        key = (kind, type(subject_id), subject_id, facts)
        group = groups.get(key)
    except TypeError:  # an id that cannot be a key: a group of its own
        key, group = len(groups), None  # (no other key is an int)
    if group is None:
        groups[key] = Sighted(kind, subject_id, facts, [(container, places)])
    else:
        group.items.append((container, places))


def _sight_all(
    groups: dict[Any, Sighted],
    kind: str,
    subject_id: Any,
    facts: frozenset[str],
    found: list[tuple[dict[str, Any], Sequence[tuple[str, str, str | None]]]],
) -> None:
    """_sight for each of `found`, items of one subject and one set of facts, in order."""
    try:
        key = (kind, type(subject_id), subject_id, facts)
        group = groups.get(key)
    except TypeError:
        for container, places in found:
            _sight(groups, kind, subject_id, container, places, facts)
        return
    if group is None:
        groups[key] = Sighted(kind, subject_id, facts, found)
    else:
        group.items.extend(found)


def _keyed_places(
    value: dict[str, Any], default: str, by_key: Mapping[str, str | None]
) -> list[tuple[str, str, str | None]]:
    inner = [(k, by_key.get(k, default), None) for k, each in value.items() if carries(each)]
    return [place for place in inner if place[1] is not None]


def _carries(read: str) -> str:
    """carries(value) as an expression, `value` set to `read`: text, a list or a dict
    (nearly every value of a body) carries when it is not empty; any other value is
    compared as carries() does."""
    return (
        f"(value if (t := type(value := {read})) is str or t is dict or t is list "
        'else value is not None and value != "" and value != [] and value != {})'
    )


def _compile(plan: Plan) -> Any:
    """A walker of this plan as Python code: walk's loop with the plan's parts unrolled
    (a pull's answer is hundreds of small items, and walk reads the plan for every one)."""
    lines: list[str] = []
    names: dict[str, Any] = {
        "_sight": _sight,
        "_sight_all": _sight_all,
        "_keyed_places": _keyed_places,
        "carries": carries,
        "frozenset": frozenset,
    }
    counter = [0]

    def constant(value: Any) -> str:
        name = f"_c{len(names)}"
        names[name] = value
        return name

    def emit(node: Plan) -> str:
        counter[0] += 1
        fn = f"_walk{counter[0]}"
        children = [(key, emit(child)) for key, child in node.nested]
        fact_names = {fact for _, fact, _ in node.facts} | {d for _, d, _ in node.keyed}
        same = constant(frozenset(fact_names)) if len(fact_names) == 1 else None
        # Leaves of the subject above them (an outcome's flags): the items of one call are
        # of one subject with one set of facts, and join their group together.
        leaf = node.subject is None and not node.keyed and not node.nested and same is not None
        flush = [
            "                if found:",
            f"                    _sight_all(groups, kind, sid, {same}, found)",
            "                    found = []",
        ]
        body = [
            f"def {fn}(data, kind, sid, groups):",
            *(["    found = []"] if leaf else []),
            "    for item in data if isinstance(data, list) else (data,):",
            "        if not isinstance(item, dict):",
            "            if isinstance(item, list):",
            *(flush if leaf else []),
            f"                {fn}(item, kind, sid, groups)",
            "            continue",
            "        get = item.get",
        ]
        whose = "kind, sid"  # the subject above, unless the item names its own
        if node.subject is not None:
            whose = "own_kind, own_id"
            body.append(
                f"        {whose} = {constant(node.subject[1])}, get({constant(node.subject[0])})"
            )
        if leaf:
            # Whether a fact is carried at all: which ones is read again only to remove
            # them (ledgering), nearly never.
            carried = " or ".join(_carries(f"get({constant(key)})") for key, _, _ in node.facts)
            body += [
                f"        if {carried}:",
                f"            found.append((item, {constant(node.facts)}))",
                "    if found:",
                f"        _sight_all(groups, kind, sid, {same}, found)",
            ]
        elif node.facts or node.keyed:
            body.append("        places = []")
        for place in () if leaf else node.facts:
            body += [
                f"        if {_carries(f'get({constant(place[0])})')}:",
                f"            places.append({constant(place)})",
            ]
        for key, default, by_key in node.keyed:
            body += [
                f"        value = get({constant(key)})",
                "        if isinstance(value, dict):",
                f"            inner = _keyed_places(value, {constant(default)}, "
                f"{constant(by_key)})",
                "            if inner:",
                f"                _sight(groups, {whose}, value, inner, "
                "frozenset([p[1] for p in inner]))",
                "        elif carries(value):",
                f"            places.append(({constant(key)}, {constant(default)}, None))",
            ]
        if (node.facts or node.keyed) and not leaf:
            facts = same if same is not None else "frozenset([p[1] for p in places])"
            body += [
                "        if places:",
                f"            _sight(groups, {whose}, item, places, {facts})",
            ]
        for key, child in children:
            body += [
                f"        value = get({constant(key)})",
                "        if value is not None:",
                f"            {child}(value, {whose}, groups)",
            ]
        lines.extend(body)
        lines.append("")
        return fn

    root = emit(plan)
    exec(compile("\n".join(lines), f"<walker of {id(plan):x}>", "exec"), names)  # noqa: S102
    return names[root]


def echoes(plan: Plan) -> bool:
    """Whether any fact the plan finds may echo a request field (a SET_BY declaration)."""
    return any(set_by for _, _, set_by in plan.facts) or any(
        echoes(child) for _, child in plan.nested
    )
