"""Turning decoded Avro records (plain dicts) into the sink's attrs payload classes.

One converter function is built per payload class, once, from its ``attrs`` fields; decoding a
message then costs a few plain function calls per record and no reflection. Values stay exactly as
sent: no default replaces a falsy value (``False`` stays ``False``, ``0`` stays ``0``, ``""`` stays
``""``); only the types Avro carries as text are parsed:

* datetimes with :meth:`datetime.fromisoformat`, then made UTC (a naive value *is* UTC; any other
  offset is converted);
* ``UUID`` with :class:`uuid.UUID`;
* ``CourseKey``, ``UsageKey`` and ``CCXLocator`` with their ``from_string``.

Keys and datetimes are memoised (both are immutable): parsing a key costs about 10 µs, and the same
keys, course start and end dates recur in message after message.

A value that does not parse raises :class:`~sink.errors.InvalidValueError` naming its path, for
example ``enrollment.course.course_key: invalid CourseKey 'xyz'``.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

import attrs
from ccx_keys.locator import CCXLocator
from opaque_keys import InvalidKeyError
from opaque_keys.edx.keys import CourseKey, UsageKey

from sink.errors import InvalidValueError
from sink.typehints import optional_member

#: Converts one decoded Avro value into its Python value; raises :class:`_BadValue`.
Converter = Callable[[Any], Any]

#: How many parsed values (opaque keys of each kind, datetimes) are remembered at most.
MEMO_SIZE: Final = 16384


class _BadValue(Exception):  # noqa: N818 - internal signal, never escapes this module
    """A value does not fit its field; ``path`` collects the field path while unwinding."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path: list[str] = []  # innermost segment first


def to_utc(text: str) -> datetime:
    """Parse an ISO 8601 timestamp into an aware UTC datetime (naive means UTC).

    Raises:
        ValueError: ``text`` is not an ISO 8601 timestamp, or falls outside the datetime range.
    """
    try:
        return _as_utc(datetime.fromisoformat(text))
    except OverflowError as error:
        raise ValueError(f"{text!r} is out of range in UTC") from error


def _as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive one is taken to be UTC. May raise ``OverflowError``."""
    if moment.tzinfo is UTC:
        return moment
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _memoised(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse`` remembering its results (immutable values only); emptied when full."""
    known: dict[str, Any] = {}

    def parse_memoised(text: str) -> Any:
        value = known.get(text)
        if value is None:
            value = parse(text)
            if len(known) >= MEMO_SIZE:
                known.clear()
            known[text] = value
        return value

    return parse_memoised


def _datetime(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
        return moment if moment.tzinfo is UTC else _as_utc(moment)
    except (ValueError, OverflowError):
        raise _BadValue(f"invalid datetime {text!r}") from None


def _uuid(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise _BadValue(f"invalid UUID {text!r}") from None


def _key_parser(key_class: Any) -> Converter:
    """``key_class.from_string`` raising :class:`_BadValue` on invalid text."""
    name = key_class.__name__

    def parse_key(text: str) -> Any:
        try:
            return key_class.from_string(text)
        except InvalidKeyError:
            raise _BadValue(f"invalid {name} {text!r}") from None

    return parse_key


_LEAF_CONVERTERS: Final[dict[Any, Converter]] = {
    datetime: _memoised(_datetime),
    UUID: _uuid,
    CourseKey: _memoised(_key_parser(CourseKey)),
    UsageKey: _memoised(_key_parser(UsageKey)),
    CCXLocator: _memoised(_key_parser(CCXLocator)),
}

_PLAIN_TYPES: Final = frozenset({str, int, bool, float, bytes})

_RECORD_CONVERTERS: Final[dict[type[Any], Converter]] = {}
_STRUCTURERS: Final[dict[tuple[type[Any], str], Callable[[dict[str, Any]], Any]]] = {}


def _converter(python_type: Any) -> Converter | None:
    """The converter of ``python_type``, or ``None`` when Avro's value is already right."""
    if python_type in _PLAIN_TYPES:
        return None
    if (leaf := _LEAF_CONVERTERS.get(python_type)) is not None:
        return leaf
    origin = typing.get_origin(python_type)
    if origin is list:
        return _list_converter(typing.get_args(python_type)[0])
    if origin is dict:
        return _dict_converter(typing.get_args(python_type)[1])
    if origin in (typing.Union, types.UnionType):
        return _optional_converter(python_type)
    if isinstance(python_type, type) and attrs.has(python_type):
        return record_converter(python_type)
    raise TypeError(f"no conversion from Avro for {python_type!r}")


def _optional_converter(union_type: Any) -> Converter | None:
    """``None`` passes; anything else goes to the converter of the non-``None`` member."""
    member, _ = optional_member(union_type)
    inner = _converter(member)
    if inner is None:
        return None

    def convert_optional(value: Any) -> Any:
        return None if value is None else inner(value)

    return convert_optional


def _list_converter(item_type: Any) -> Converter | None:
    item = _converter(item_type)
    if item is None:
        return None

    def convert_list(values: list[Any]) -> list[Any]:
        converted = []
        for index, value in enumerate(values):
            try:
                converted.append(item(value))
            except _BadValue as bad:
                bad.path.append(f"[{index}]")
                raise
        return converted

    return convert_list


def _dict_converter(value_type: Any) -> Converter | None:
    convert_value = _converter(value_type)
    if convert_value is None:
        return None

    def convert_dict(values: dict[str, Any]) -> dict[str, Any]:
        converted = {}
        for key, value in values.items():
            try:
                converted[key] = convert_value(value)
            except _BadValue as bad:
                bad.path.append(f"[{key!r}]")
                raise
        return converted

    return convert_dict


def record_converter(cls: type[Any]) -> Converter:
    """The converter of a decoded record (a dict with one key per field) into ``cls``.

    The converter is Python source generated from the class's fields and compiled once (the way
    attrs builds ``__init__``): one statement per field that needs parsing, then one call of the
    class. Plain fields pass as decoded.
    """
    if (known := _RECORD_CONVERTERS.get(cls)) is not None:
        return known
    namespace: dict[str, Any] = {"cls": cls, "_BadValue": _BadValue}
    body: list[str] = []
    positional: list[str] = []  # attrs' __init__ takes fields in order; positional is faster
    keywords: list[str] = []
    for index, field in enumerate(attrs.fields(attrs.resolve_types(cls))):
        if not field.init:
            raise TypeError(f"{cls.__name__}.{field.name} is not an __init__ argument")
        value = _field_source(field, index, namespace, body)
        if field.kw_only:
            keywords.append(f"{field.alias}={value}")
        else:
            positional.append(value)
    call = f"cls({', '.join([*positional, *keywords])})"
    source = "\n".join(["def convert_record(record):", *body, f"    return {call}"])
    # The source is built from attrs field names (identifiers) and repr() of their names only.
    exec(compile(source, f"<record converter of {cls.__qualname__}>", "exec"), namespace)  # noqa: S102
    convert_record: Converter = namespace["convert_record"]
    _RECORD_CONVERTERS[cls] = convert_record
    return convert_record


def _field_source(
    field: attrs.Attribute[Any], index: int, namespace: dict[str, Any], body: list[str]
) -> str:
    """Append the statements converting one field to ``body``; return the expression of its value.

    A nullable field tests for ``None`` inline rather than through a wrapper function.
    """
    read = f"record[{field.name!r}]"
    python_type, nullable = optional_member(field.type)
    convert = _converter(python_type)
    if convert is None:
        return read
    namespace[f"convert_{index}"] = convert
    call = f"convert_{index}(raw)"
    value = f"None if raw is None else {call}" if nullable else call
    body += [
        "    try:",
        f"        raw = {read}",
        f"        value_{index} = {value}",
        "    except _BadValue as bad:",
        f"        bad.path.append({'.' + field.name!r})",
        "        raise",
    ]
    return f"value_{index}"


def structurer(cls: type[Any], root: str) -> Callable[[dict[str, Any]], Any]:
    """A function building a ``cls`` instance from its decoded Avro record.

    Args:
        cls: The attrs payload class.
        root: Name of the record in error messages (the event's data key).

    The function consumes the record (updates it in place) and raises
    :class:`~sink.errors.InvalidValueError` naming the field path when a value does not fit.
    """
    if (known := _STRUCTURERS.get((cls, root))) is not None:
        return known
    convert = record_converter(cls)

    def structure(record: dict[str, Any]) -> Any:
        try:
            return convert(record)
        except _BadValue as bad:
            path = root + "".join(reversed(bad.path))
            raise InvalidValueError(f"{path}: {bad.problem}") from None
        except (TypeError, KeyError) as error:
            raise InvalidValueError(f"{root}: not a {cls.__name__} record: {error}") from None

    _STRUCTURERS[cls, root] = structure
    return structure
