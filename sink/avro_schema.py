"""Avro schemas of the event types, derived from their payload classes.

The derivation follows openedx-events' own rules, so that :func:`canonical_schema` is exactly what
producers register in the Schema Registry:

* the top level is a record ``CloudEvent`` whose namespace is the event type, with one field named
  by the event's data key;
* an attrs class becomes a record named after the class, defined inline where it first appears
  and referenced by its bare name afterwards (Avro forbids defining a name twice);
* fields follow attrs field order (inherited first; a redefined field moves to the end);
* ``str``/``int``/``bool``/``float``/``bytes`` map to ``string``/``long``/``boolean``/``double``/
  ``bytes``; datetimes, UUIDs and opaque keys travel as ``string``; ``list[X]`` is an ``array``
  and ``dict[str, X]`` a ``map``;
* a field is nullable (``["null", T]`` with default ``null``) exactly when its attrs default is
  ``None``; any other default leaves the field required, with no Avro default.

:func:`reader_schema` is the same schema plus Avro defaults taken from the other attrs defaults,
so that messages from older producers that lack a newer field still decode.
"""

from __future__ import annotations

import functools
import typing
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import attrs
from ccx_keys.locator import CCXLocator
from opaque_keys.edx.keys import CourseKey, UsageKey

from sink.catalog import EventSpec
from sink.typehints import optional_member

#: A JSON-able Avro schema (what ``json.loads`` of an ``.avsc`` file gives).
AvroSchema = dict[str, Any]

CLOUD_EVENT_DOC: Final = "Avro Event Format for CloudEvents created with openedx_events/schema"

_SIMPLE_TYPES: Final[dict[Any, str]] = {
    str: "string",
    int: "long",
    bool: "boolean",
    float: "double",
    bytes: "bytes",
    datetime: "string",
    UUID: "string",
    CourseKey: "string",
    UsageKey: "string",
    CCXLocator: "string",
}

_NO_DEFAULT: Final = object()


@functools.cache
def canonical_schema(spec: EventSpec) -> AvroSchema:
    """The schema openedx-events 11.2.0 derives (and producers register) for ``spec``.

    The result is cached and shared between callers: do not mutate it.
    """
    return _event_schema(spec, with_defaults=False)


@functools.cache
def reader_schema(spec: EventSpec) -> AvroSchema:
    """The schema to decode ``spec``'s messages with: canonical plus attrs-derived defaults.

    Every non-``None`` attrs default that Avro can represent (booleans, numbers, strings, and lists
    or maps of those; factories are called) becomes the field's Avro default, so a writer schema
    without that field still resolves. The result is cached and shared: do not mutate it.
    """
    return _event_schema(spec, with_defaults=True)


def _event_schema(spec: EventSpec, *, with_defaults: bool) -> AvroSchema:
    payload_type = _SchemaBuilder(with_defaults=with_defaults).avro_type(spec.data_class)
    return {
        "name": "CloudEvent",
        "type": "record",
        "namespace": spec.event_type,
        "doc": CLOUD_EVENT_DOC,
        "fields": [{"name": spec.data_key, "type": payload_type}],
    }


@attrs.define
class _SchemaBuilder:
    """Turns Python types into Avro types for one schema, remembering the records defined."""

    with_defaults: bool
    defined_records: set[str] = attrs.field(factory=set)

    def avro_type(self, python_type: Any) -> Any:
        """The Avro type of ``python_type``: a name, or an array/map/record definition."""
        if (simple := _SIMPLE_TYPES.get(python_type)) is not None:
            return simple
        origin = typing.get_origin(python_type)
        if origin is list:
            (item_type,) = typing.get_args(python_type)
            return {"type": "array", "items": self.avro_type(item_type)}
        if origin is dict:
            return {"type": "map", "values": self.avro_type(_map_value_type(python_type))}
        if isinstance(python_type, type) and attrs.has(python_type):
            return self.record(python_type)
        raise TypeError(f"no Avro type for {python_type!r}")

    def record(self, cls: type[Any]) -> Any:
        """A record definition for ``cls``, or its bare name if this schema already defines it."""
        if cls.__name__ in self.defined_records:
            return cls.__name__
        self.defined_records.add(cls.__name__)
        fields = attrs.fields(attrs.resolve_types(cls))
        return {"name": cls.__name__, "type": "record", "fields": [self.field(a) for a in fields]}

    def field(self, attribute: attrs.Attribute[Any]) -> dict[str, Any]:
        """The Avro field of one attrs attribute."""
        if attribute.default is None:
            value_type = self.avro_type(optional_member(attribute.type)[0])
            return {"name": attribute.name, "type": ["null", value_type], "default": None}
        field: dict[str, Any] = {"name": attribute.name, "type": self.avro_type(attribute.type)}
        if self.with_defaults and (default := _avro_default(attribute.default)) is not _NO_DEFAULT:
            field["default"] = default
        return field


def _map_value_type(dict_type: Any) -> Any:
    key_type, value_type = typing.get_args(dict_type)
    if key_type is not str:
        raise TypeError(f"Avro maps need str keys, not {dict_type!r}")
    return value_type


def _avro_default(attrs_default: Any) -> Any:
    """The JSON value of an attrs default, or ``_NO_DEFAULT`` when Avro cannot carry it."""
    # attrs types Factory as a function in its stubs, though it is a class at run time.
    if isinstance(attrs_default, attrs.Factory):  # type: ignore[arg-type]
        if attrs_default.takes_self:
            return _NO_DEFAULT
        attrs_default = attrs_default.factory()
    return attrs_default if _is_json_value(attrs_default) else _NO_DEFAULT


def _is_json_value(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list):
        return all(_is_json_value(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json_value(v) for k, v in value.items())
    return False
