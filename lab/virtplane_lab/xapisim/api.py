"""Messages and their dispatch: one registry of hand-written messages plus the accessors XAPI generates for every
class (the XenAPI reference, "Wire Protocol" and each class page; https://xapi-project.github.io/xen-api/).

Generated per class: ``get_all``, ``get_all_records``, ``get_all_records_where(expr)``, ``get_record``,
``get_by_uuid`` (UUID_INVALID [class, uuid]), ``get_by_name_label`` (classes with a name), ``get_<field>``,
``set_<field>`` for read-write fields, ``add_to_<map>``/``remove_from_<map>`` (MAP_DUPLICATE_KEY [class, field,
uuid, key] on a key already there) and ``add_<set>``/``remove_<set>`` for read-write sets. A hand-written
message of the same name wins (``VM.set_memory_limits`` and friends, which check power states).

Every call but ``session.login_with_password`` takes a session first (SESSION_INVALID [handle] otherwise). The
number of parameters is checked (MESSAGE_PARAMETER_COUNT_MISMATCH [method, expected, received]), and each
parameter's type: an ``int`` is a string of decimal digits, never XML-RPC's ``<i4>`` (FIELD_TYPE_ERROR [param]),
refs must name a live object of their class (HANDLE_INVALID [class, ref]). ``Async.<class>.<message>`` runs a
message as a task and returns the task's ref at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import XapiError
from .schema import CLASSES, NULL, required
from .where import compile_where

if TYPE_CHECKING:
    from .pool import XapiPool


@dataclass
class Context:
    pool: XapiPool
    session: str | None


@dataclass(frozen=True)
class Message:
    name: str
    params: tuple[tuple[str, str], ...]  # (type, name), the session excluded
    handler: Callable[..., Any]
    session: bool = True


REGISTRY: dict[str, Message] = {}


def message(name: str, *params: tuple[str, str], session: bool = True) -> Callable[[Callable[..., Any]], Any]:
    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        REGISTRY[name] = Message(name, tuple(params), handler, session)
        return handler

    return register


def find(method: str) -> Message:
    if method in REGISTRY:
        return REGISTRY[method]
    generic = _generic(method)
    if generic is None:
        raise XapiError("MESSAGE_METHOD_UNKNOWN", method)
    return generic


def call(context: Context, method: str, args: tuple[Any, ...]) -> Any:
    """Run ``method`` with its wire arguments (the session first, unless it takes none)."""
    found = find(method)
    expected = len(found.params) + (1 if found.session else 0)
    if len(args) != expected:
        raise XapiError("MESSAGE_PARAMETER_COUNT_MISMATCH", method, expected, len(args))
    with context.pool.db.lock:  # one call at a time changes the pool: XAPI serialises each object's operations
        if found.session:
            context.session = context.pool.check_session(args[0])
            args = args[1:]
        values = [convert(context, kind, name, value)
                  for (kind, name), value in zip(found.params, args, strict=True)]
        return found.handler(context, *values)


# ---- parameter types ---------------------------------------------------------------------------------

_INT = re.compile(r"^-?\d+$")


def convert(context: Context, kind: str, name: str, value: Any) -> Any:
    if kind == "raw":  # checked by the handler against the field's own type
        return value
    if kind == "s":
        _check(isinstance(value, str), name)
        return value
    if kind == "i":
        _check(isinstance(value, str) and bool(_INT.match(value)), name)
        return int(value)
    if kind == "b":
        _check(isinstance(value, bool), name)
        return value
    if kind == "f":
        _check(isinstance(value, float | int) and not isinstance(value, bool), name)
        return float(value)
    if kind == "M":
        _check(isinstance(value, dict) and all(isinstance(v, str) for v in value.values()), name)
        return dict(value)
    if kind == "S":
        _check(isinstance(value, list) and all(isinstance(v, str) for v in value), name)
        return list(value)
    if kind.startswith("r:") or kind.startswith("r?:"):
        cls = kind.split(":", 1)[1]
        _check(isinstance(value, str), name)
        if kind.startswith("r?:") and value == NULL:
            return value
        context.pool.db.get(cls, value)  # HANDLE_INVALID [class, ref]
        return value
    if kind.startswith("rec:"):
        return create_record(context, kind[4:], value)
    raise AssertionError(kind)


def _check(ok: bool, name: str) -> None:
    if not ok:
        raise XapiError("FIELD_TYPE_ERROR", name)


def create_record(context: Context, cls: str, value: Any) -> dict[str, Any]:
    """A ``<class> record`` argument of a create: the constructor fields, each of its type; those without a
    default are required (a missing one is FIELD_TYPE_ERROR [field]: the simulator's choice of code)."""
    _check(isinstance(value, dict), "args")
    fields = CLASSES[cls]
    record: dict[str, Any] = {}
    for name in required(cls):
        if name not in value:
            raise XapiError("FIELD_TYPE_ERROR", name)
    for name, given in value.items():
        spec = fields.get(name)
        if spec is None or spec.access not in ("rw", "ctor"):
            continue  # XAPI ignores struct members that are not constructor fields
        record[name] = _wire(context, spec.type, name, given)
    return record


def _wire(context: Context, kind: str, name: str, value: Any) -> Any:
    """A field value checked against its type, kept in wire form (ints as digit strings)."""
    if kind == "i":
        _check(isinstance(value, str) and bool(_INT.match(value)), name)
        return value
    if kind.startswith("e:"):
        _check(isinstance(value, str), name)
        if value not in kind[2:].split("|"):
            raise XapiError("INVALID_VALUE", name, value)
        return value
    if kind.startswith("r:"):
        _check(isinstance(value, str), name)
        if value != NULL:
            context.pool.db.get(kind[2:], value)
        return value
    if kind in ("s", "b", "f", "M", "S"):
        return convert(context, kind, name, value)
    _check(isinstance(value, list), name)
    return list(value)


# ---- generated accessors -----------------------------------------------------------------------------


def _generic(method: str) -> Message | None:
    cls, _, verb = method.partition(".")
    if cls not in CLASSES or not verb:
        return None
    fields = CLASSES[cls]
    ref = (f"r:{cls}", "self")
    if verb == "get_all":
        return Message(method, (), lambda c: c.pool.db.refs(cls))
    if verb == "get_all_records":
        return Message(method, (), lambda c: c.pool.db.records(cls))
    if verb == "get_all_records_where":
        return Message(method, (("s", "expr"),), lambda c, expr: _where(c, cls, expr))
    if verb == "get_record":
        return Message(method, (ref,), lambda c, self: c.pool.db.record(cls, self))
    if verb == "get_by_uuid":
        return Message(method, (("s", "uuid"),), lambda c, uuid: _by_uuid(c, cls, uuid))
    if verb == "get_by_name_label" and "name_label" in fields:
        return Message(method, (("s", "label"),),
                       lambda c, label: c.pool.db.where(cls, name_label=label))
    for prefix in ("get_", "set_", "add_to_", "remove_from_", "add_", "remove_"):
        if verb.startswith(prefix):
            field_name = verb[len(prefix):]
            if field_name in fields or (prefix == "get_" and _has_view(cls, field_name)):
                return _accessor(method, cls, prefix, field_name)
    return None


def _has_view(cls: str, field_name: str) -> bool:
    return field_name in CLASSES[cls]


def _accessor(method: str, cls: str, prefix: str, field_name: str) -> Message | None:
    spec = CLASSES[cls][field_name]
    ref = (f"r:{cls}", "self")
    if prefix == "get_":
        return Message(method, (ref,), lambda c, self: c.pool.db.record(cls, self)[field_name])
    if spec.access != "rw":
        return None
    if prefix == "set_":
        def setter(c: Context, self: str, value: Any) -> str:
            c.pool.db.set(cls, self, **{field_name: _wire(c, spec.type, "value", value)})
            return ""

        return Message(method, (ref, ("raw", "value")), setter)
    if prefix == "add_to_" and spec.type == "M":
        return Message(method, (ref, ("s", "key"), ("s", "value")),
                       lambda c, self, key, value: _add_to(c, cls, self, field_name, key, value))
    if prefix == "remove_from_" and spec.type == "M":
        return Message(method, (ref, ("s", "key")), lambda c, self, key: _remove_from(c, cls, self, field_name, key))
    if prefix == "add_" and spec.type == "S":
        return Message(method, (ref, ("s", "value")), lambda c, self, value: _add(c, cls, self, field_name, value))
    if prefix == "remove_" and spec.type == "S":
        return Message(method, (ref, ("s", "value")),
                       lambda c, self, value: _remove(c, cls, self, field_name, value))
    return None


def _where(context: Context, cls: str, expr: str) -> dict[str, dict[str, Any]]:
    predicate = compile_where(expr)
    db = context.pool.db
    return {ref: db.record(cls, ref) for ref, stored in list(db.objects[cls].items()) if predicate(stored)}


def _by_uuid(context: Context, cls: str, uuid: str) -> str:
    found = context.pool.db.one(cls, uuid=uuid)
    if found is None:
        raise XapiError("UUID_INVALID", cls, uuid)
    return found


def _add_to(context: Context, cls: str, ref: str, field_name: str, key: str, value: str) -> str:
    record = context.pool.db.get(cls, ref)
    if key in record[field_name]:
        raise XapiError("MAP_DUPLICATE_KEY", cls, field_name, record["uuid"], key)
    updated = dict(record[field_name], **{key: value})
    context.pool.db.set(cls, ref, **{field_name: updated})
    return ""


def _remove_from(context: Context, cls: str, ref: str, field_name: str, key: str) -> str:
    record = context.pool.db.get(cls, ref)
    updated = {k: v for k, v in record[field_name].items() if k != key}
    context.pool.db.set(cls, ref, **{field_name: updated})
    return ""


def _add(context: Context, cls: str, ref: str, field_name: str, value: str) -> str:
    record = context.pool.db.get(cls, ref)
    if value not in record[field_name]:
        context.pool.db.set(cls, ref, **{field_name: [*record[field_name], value]})
    return ""


def _remove(context: Context, cls: str, ref: str, field_name: str, value: str) -> str:
    record = context.pool.db.get(cls, ref)
    context.pool.db.set(cls, ref, **{field_name: [v for v in record[field_name] if v != value]})
    return ""
