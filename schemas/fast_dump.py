"""A schema's dump compiled once into a plan: the same answer as marshmallow's, quicker.

marshmallow pays, for every value of every object, a field lookup, an accessor call and a
`_serialize` call, even where the value is already what the field would write (text in a
string field, an int in an integer field). A sync answer has thousands of such values. The
compiled plan walks the schema's own `dump_fields` (so a field the schema does not name
still never leaves) and copies a value only when marshmallow would return it unchanged;
anything else goes through the field's own `_serialize`, and anything the plan does not
model (hooks, dotted attributes, custom accessors, objects that are not plain dicts) goes
through marshmallow itself. tests/api/test_fast_dump.py holds both to the same output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from marshmallow import Schema, fields, missing
from marshmallow.decorators import POST_DUMP, PRE_DUMP

Dumper = Callable[[Any], Any]

_STR, _INT, _FLOAT, _RAW, _DICT, _NESTED, _LIST, _OTHER = range(8)


def _kind(field: fields.Field) -> int:
    """How a value of this field is written (exact classes only: a subclass may differ)."""
    cls = type(field)
    if cls is fields.String:
        return _STR
    if cls is fields.Integer and not field.as_string:
        return _INT
    if cls is fields.Float and not field.as_string:
        return _FLOAT
    if cls._serialize is fields.Field._serialize and cls.serialize is fields.Field.serialize:
        return _RAW  # Boolean, Raw: the value as it is
    if cls is fields.Dict and field.key_field is None and field.value_field is None:
        return _DICT
    if isinstance(field, fields.Nested) and type(field)._serialize is fields.Nested._serialize:
        return _NESTED
    if cls is fields.List:
        return _LIST
    return _OTHER


# The types a value writer returns unchanged, by kind (None: the writer's own null).
_NONE = type(None)
_COPIED: dict[int, tuple[type, ...]] = {
    _STR: (str, _NONE),
    _INT: (int, _NONE),
    _FLOAT: (float, _NONE),
    _RAW: (str, int, float, bool, _NONE),
    _DICT: (_NONE,),
    _NESTED: (_NONE,),
    _LIST: (_NONE,),
    _OTHER: (),
}


def _value_writer(field: fields.Field) -> Callable[[Any, str, Any], Any]:
    """value, attr, obj -> what field._serialize(value, attr, obj) returns."""
    kind = _kind(field)
    serialize = field._serialize
    if kind == _STR:
        return lambda v, a, o: v if v is None or type(v) is str else serialize(v, a, o)
    if kind == _INT:
        return lambda v, a, o: v if v is None or type(v) is int else serialize(v, a, o)
    if kind == _FLOAT:
        return lambda v, a, o: v if v is None or type(v) is float else serialize(v, a, o)
    if kind == _RAW:
        return lambda v, a, o: v
    if kind == _DICT:
        return lambda v, a, o: None if v is None else dict(v)
    if kind == _NESTED:
        compiled: list[Dumper] = []  # on first use: a schema may nest itself

        def write_nested(v: Any, a: str, o: Any) -> Any:
            if v is None:
                return None
            if not compiled:
                compiled.append(_compiled(field.schema))
            dump = compiled[0]
            if field.schema.many or field.many:
                return [dump(item) for item in v]
            return dump(v)

        return write_nested
    if kind == _LIST:
        inner = _value_writer(field.inner)
        return lambda v, a, o: None if v is None else [inner(item, a, o) for item in v]
    return lambda v, a, o: serialize(v, a, o)


def _plain(schema: Schema) -> bool:
    cls = type(schema)
    return (
        not schema._hooks[PRE_DUMP]
        and not schema._hooks[POST_DUMP]
        and cls.get_attribute is Schema.get_attribute
        and cls._serialize is Schema._serialize
        and schema.dict_class is dict
    )


def _compiled(schema: Schema) -> Dumper:
    """One object (never many) as Schema.dump(schema, obj, many=False) writes it."""
    if not _plain(schema):
        return lambda obj: Schema.dump(schema, obj, many=False)
    # (attr, key, copied, write, field, default): a value whose type is in `copied` (text
    # in a string field, an int in an integer field, None where the writer returns None) is
    # copied without a call; `field` is set only for a field read through marshmallow's
    # own accessor (then attr is the field's name).
    plan: list[tuple[str, str, tuple[type, ...], Callable[[Any, str, Any], Any] | None, Any, Any]]
    plan = []
    for name, field in schema.dump_fields.items():
        key = field.data_key if field.data_key is not None else name
        attr = field.attribute if field.attribute is not None else name
        own_access = (
            type(field).get_value is fields.Field.get_value
            and field._CHECK_ATTRIBUTE
            and "." not in attr
            and not hasattr(dict, attr)  # a missing key would read dict's attribute
        )
        if own_access:
            writer = _value_writer(field)
            plan.append((attr, key, _COPIED[_kind(field)], writer, None, field.dump_default))
        else:
            plan.append((name, key, (), None, field, missing))
    accessor = schema.get_attribute
    # Objects already written by this schema's class in its own shape (dumped()): handed on.
    done = written_type(type(schema)) if _whole(schema) else None

    def dump(obj: Any) -> Any:
        if type(obj) is not dict:
            if type(obj) is done:
                return obj
            return Schema._serialize(schema, obj, many=False)
        out = {}
        get = obj.get
        for attr, key, copied, write, field, default in plan:
            if field is not None:
                value = field.serialize(attr, obj, accessor=accessor)
                if value is not missing:
                    out[key] = value
                continue
            value = get(attr, missing)
            if type(value) in copied:
                out[key] = value
                continue
            if value is missing:
                value = default() if callable(default) else default
                if value is missing:
                    continue
            out[key] = write(value, attr, obj)  # type: ignore[misc]
        return out

    return dump


# A dict type per schema class, whose objects are that class's dump of something (made only
# by dumped(), from the schema's own compiled plan): a plan of the class meets one inside a
# larger answer and hands it on instead of writing it a second time. A pull answers the same
# stored outcomes pull after pull; they are dumped once and kept in this form.
_WRITTEN: dict[type, type[dict]] = {}


def written_type(cls: type) -> type[dict]:
    """The dict type of what `cls` already wrote (dumped())."""
    kind = _WRITTEN.get(cls)
    if kind is None:
        kind = _WRITTEN[cls] = type(f"Written{cls.__name__}", (dict,), {"__slots__": ()})
    return kind


def _whole(schema: Schema) -> bool:
    """The schema dumps the fields its class does (no only=, exclude=, load_only= of its
    own), so what the class wrote is what it would write."""
    try:
        fresh = type(schema)()
    except TypeError:  # a schema class that needs arguments: never taken for its class's
        return False
    return list(schema.dump_fields) == list(fresh.dump_fields)


_PLANS: dict[type, Dumper | None] = {}


def dumped(cls: type[Schema], obj: dict[str, Any]) -> dict[str, Any]:
    """cls().dump(obj), as that schema's written type, which a compiled plan of `cls`
    (nested in an answer) copies as it is; `obj` itself for a schema whose dump is not
    compiled (hooks, accessors), which would dump it again. Nothing may change what this
    returns afterwards but as the schema could have written it (the ledger removing a fact
    is such a change: a value left out)."""
    if cls not in _PLANS:
        schema = cls()
        _PLANS[cls] = _compiled(schema) if _plain(schema) else None
    dump = _PLANS[cls]
    if dump is None or type(obj) is not dict:
        return obj
    return written_type(cls)(dump(obj))


class FastDump:
    """Mixin for a response schema whose answers are large: dump through a compiled plan."""

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        # A cast, not an isinstance check: Schema's metaclass makes that check cost more
        # than dumping a small answer.
        schema = cast(Schema, self)
        many = schema.many if many is None else bool(many)
        dump = self.__dict__.get("_fast_dump")
        if dump is None:
            dump = self.__dict__["_fast_dump"] = _compiled(schema)
        if many:
            if obj is None:
                return Schema.dump(schema, obj, many=True)
            return [dump(item) for item in obj]
        return dump(obj)
