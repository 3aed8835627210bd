"""Real Open edX event-bus messages for tests, byte for byte as edx-event-bus-kafka sends them.

The payload classes, the schema and the Avro bytes come from openedx-events itself
(``serialize_event_data_to_bytes`` and ``AvroSignalSerializer``); this module adds what
edx-event-bus-kafka adds around them: the Confluent framing with the id the Schema Registry gives
the schema under ``<topic>-<event_type>.CloudEvent``, and the CloudEvents headers.

It also offers Hypothesis strategies of random *upstream* payload objects for every event type,
derived from the attrs fields of the openedx-events classes, and :func:`comparable`, which turns
an upstream object and the sink's decoded object into the same plain structure when they carry
the same values.

openedx-events imports Django but needs no Django settings for any of this.
"""

from __future__ import annotations

import functools
import importlib
import socket
import string
import struct
import types
import typing
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final
from uuid import UUID

import attrs
import openedx_events
from ccx_keys.locator import CCXLocator
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from opaque_keys import OpaqueKey
from opaque_keys.edx.keys import CourseKey, UsageKey
from openedx_events.event_bus.avro.serializer import (
    AvroSignalSerializer,
    serialize_event_data_to_bytes,
)
from openedx_events.tooling import OpenEdxPublicSignal

from sink import catalog

SIGNAL_MODULES: Final = ("learning", "analytics", "enterprise")
AVRO_CONTENT_TYPE: Final = b"application/avro"

# --- the upstream signals ----------------------------------------------------------------------


@functools.cache
def _load_signals() -> None:
    for subdomain in SIGNAL_MODULES:
        importlib.import_module(f"openedx_events.{subdomain}.signals")


def upstream_signal(event_type: str) -> Any:
    """The ``OpenEdxPublicSignal`` of ``event_type``."""
    _load_signals()
    return OpenEdxPublicSignal.get_signal_by_type(event_type)


@functools.cache
def serializable_event_types() -> tuple[str, ...]:
    """The catalog's event types that openedx-events can serialize for the event bus."""
    serializable = []
    for event_type in catalog.event_types():
        try:
            AvroSignalSerializer(upstream_signal(event_type))
        except Exception:  # noqa: BLE001, S112 - upstream raises plain Exception/TypeError
            continue
        serializable.append(event_type)
    return tuple(serializable)


def data_key(event_type: str) -> str:
    """The single key of the event's data dict, e.g. ``enrollment``."""
    (key,) = upstream_signal(event_type).init_data
    return str(key)


def upstream_class(event_type: str) -> type:
    """The openedx-events payload class of ``event_type``."""
    (cls,) = upstream_signal(event_type).init_data.values()
    return typing.cast(type, cls)


# --- messages ----------------------------------------------------------------------------------


def schema_string(event_type: str) -> str:
    """The schema text the producer registers for ``event_type``."""
    return str(AvroSignalSerializer(upstream_signal(event_type)).schema_string())


def subject(topic: str, event_type: str) -> str:
    """The registry subject of the value schema (TopicRecordNameStrategy)."""
    return f"{topic}-{event_type}.CloudEvent"


def register(registry: SchemaRegistryClient, topic: str, event_type: str) -> int:
    """Register the event type's schema as the producer does; return its schema id."""
    schema = Schema(schema_string(event_type), "AVRO")
    return int(registry.register_schema(subject(topic, event_type), schema))


def payload(event_type: str, data: Any) -> bytes:
    """The schemaless Avro bytes openedx-events makes of ``data``."""
    signal = upstream_signal(event_type)
    return bytes(serialize_event_data_to_bytes({data_key(event_type): data}, signal))


def frame(schema_id: int, avro: bytes) -> bytes:
    """Confluent framing: magic byte 0, the 4-byte big-endian schema id, the Avro bytes."""
    return b"\x00" + struct.pack(">I", schema_id) + avro


def headers(
    event_type: str,
    *,
    event_id: UUID | None = None,
    time: datetime | None = None,
    source: str = "openedx/lms/web",
    host: str | None = None,
) -> list[tuple[str, bytes]]:
    """The headers edx-event-bus-kafka sends with an event."""
    values = {
        "ce_id": str(event_id or uuid.uuid1()),
        "ce_type": event_type,
        "ce_source": source,
        "ce_specversion": "1.0",
        "ce_time": (time or datetime.now(UTC)).isoformat(),
        "ce_minorversion": "0",
        "content-type": "application/avro",
        "ce_datacontenttype": "application/avro",
        "sourcehost": host or socket.gethostname(),
        "sourcelib": openedx_events.__version__,
    }
    return [(name, value.encode()) for name, value in values.items()]


def kafka_headers(headers: Sequence[tuple[str, bytes]]) -> list[tuple[str, str | bytes | None]]:
    """``headers`` as a list of the type ``Producer.produce`` takes (a list is invariant)."""
    return list(headers)


@attrs.frozen
class Message:
    """One produced message and the upstream object it carries.

    Attributes:
        event_type: The ``ce_type``.
        data: The upstream payload object.
        value: The framed message value.
        headers: The message headers.
    """

    event_type: str
    data: Any
    value: bytes
    headers: list[tuple[str, bytes]]

    @property
    def event_id(self) -> str:
        """The ``ce_id`` header."""
        return dict(self.headers)["ce_id"].decode()


def message(event_type: str, data: Any, schema_id: int = 1) -> Message:
    """A message as edx-event-bus-kafka would send it, without sending it."""
    value = frame(schema_id, payload(event_type, data))
    return Message(event_type, data, value, headers(event_type))


class OpenEdxProducer:
    """Sends events to Kafka the way edx-event-bus-kafka does, registering schemas as needed.

    Args:
        bootstrap_servers: Kafka bootstrap servers.
        registry: Client of the real Schema Registry.
    """

    def __init__(self, bootstrap_servers: str, registry: SchemaRegistryClient) -> None:
        self._producer = Producer({"bootstrap.servers": bootstrap_servers, "linger.ms": 5})
        self._registry = registry
        self._schema_ids: dict[tuple[str, str], int] = {}

    def send(self, topic: str, event_type: str, data: Any, key: str | None = None) -> Message:
        """Produce one event; ``key`` (e.g. the course key) is framed as an Avro string."""
        produced = message(event_type, data, self.schema_id(topic, event_type))
        framed_key = None if key is None else self._framed_key(topic, key)
        self._producer.produce(
            topic, produced.value, framed_key, headers=kafka_headers(produced.headers)
        )
        self._producer.poll(0)
        return produced

    def schema_id(self, topic: str, event_type: str) -> int:
        """The registry id of the event type's schema on ``topic`` (registered on first use)."""
        if (topic, event_type) not in self._schema_ids:
            self._schema_ids[topic, event_type] = register(self._registry, topic, event_type)
        return self._schema_ids[topic, event_type]

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every message is delivered."""
        if remaining := self._producer.flush(timeout):
            raise RuntimeError(f"{remaining} messages not delivered after {timeout} s")

    def _framed_key(self, topic: str, key: str) -> bytes:
        # Confluent's serializer registers '"string"'; Apicurio cannot tell the type of that bare
        # JSON string, so the equivalent object form is registered.
        key_schema = Schema('{"type": "string"}', "AVRO")
        key_id = self._registry.register_schema(f"{topic}-string", key_schema)
        encoded = key.encode()
        return frame(key_id, _avro_long(len(encoded)) + encoded)


def _avro_long(number: int) -> bytes:
    """Avro's zig-zag varint encoding of a long."""
    zigzag = (number << 1) ^ (number >> 63)
    out = bytearray()
    while zigzag > 0x7F:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)
    return bytes(out)


# --- Hypothesis strategies of upstream payload objects ------------------------------------------

_ID_CHARS: Final = string.ascii_letters + string.digits + "_-.~"
_ids = st.text(_ID_CHARS, min_size=1, max_size=8)
_block_types = st.text(string.ascii_lowercase + "_", min_size=1, max_size=10)
_ccx_ids = st.integers(1, 10**6).map(str)

_OFFSETS: Final = (
    UTC,
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=-8)),
    timezone(timedelta(hours=14)),
)


def _course_key(org: str, course: str, run: str) -> CourseKey:
    return CourseKey.from_string(f"course-v1:{org}+{course}+{run}")


def _ccx_key(org: str, course: str, run: str, ccx: str) -> CCXLocator:
    return CCXLocator.from_string(f"ccx-v1:{org}+{course}+{run}+ccx@{ccx}")


def _old_course_key(org: str, course: str, run: str) -> CourseKey:
    return CourseKey.from_string(f"{org}/{course}/{run}")


_dotless_ids = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=8)
ccx_keys = st.builds(_ccx_key, _ids, _ids, _ids, _ccx_ids)
course_keys = st.one_of(
    st.builds(_course_key, _ids, _ids, _ids),
    ccx_keys,
    st.builds(_old_course_key, _dotless_ids, _dotless_ids, _dotless_ids),
)


def _usage_key(course: CourseKey, block_type: str, block_id: str) -> UsageKey:
    return course.make_usage_key(block_type, block_id)


usage_keys = st.builds(_usage_key, course_keys, _block_types, _ids)

# Hypothesis takes naive bounds, also for aware datetimes.
_EARLIEST: Final = datetime(1970, 1, 1)  # noqa: DTZ001
_LATEST: Final = datetime(2100, 1, 1)  # noqa: DTZ001
datetimes = st.one_of(
    st.datetimes(_EARLIEST, _LATEST),  # naive: UTC by convention
    st.datetimes(_EARLIEST, _LATEST, timezones=st.sampled_from(_OFFSETS)),
)

texts = st.text(max_size=12)

_LEAVES: Final[dict[Any, st.SearchStrategy[Any]]] = {
    str: texts,
    int: st.integers(-(2**63), 2**63 - 1),
    bool: st.booleans(),
    float: st.floats(allow_nan=False),
    datetime: datetimes,
    UUID: st.uuids(),
    CourseKey: course_keys,
    UsageKey: usage_keys,
    CCXLocator: ccx_keys,
}

#: Fields whose strategy cannot be derived from the upstream annotation alone.
_FIELD_OVERRIDES: Final[dict[tuple[str, str], st.SearchStrategy[Any]]] = {
    # Upstream's default is the class `dict` itself: always pass a real mapping.
    ("CourseDiscussionConfigurationData", "plugin_configuration"): st.dictionaries(
        texts, st.booleans(), max_size=3
    ),
}


def strategy_for(python_type: Any) -> st.SearchStrategy[Any]:
    """A strategy of values of an upstream field type (attrs classes included)."""
    if (leaf := _LEAVES.get(python_type)) is not None:
        return leaf
    origin = typing.get_origin(python_type)
    if origin is list:
        return st.lists(strategy_for(typing.get_args(python_type)[0]), max_size=3)
    if origin is dict:
        value_type = typing.get_args(python_type)[1]
        return st.dictionaries(texts, strategy_for(value_type), max_size=3)
    if origin in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(python_type) if arg is not type(None)]
        return st.none() | strategy_for(members[0])
    if isinstance(python_type, type) and attrs.has(python_type):
        return class_strategy(python_type)
    raise TypeError(f"no strategy for {python_type!r}")


# Classes are `type`, not `type[Any]`, here and in what is passed here: mypy does not see that a
# `type[Any]` is hashable, as the cache's arguments must be (python/mypy#11470).
@functools.cache
def class_strategy(cls: type) -> st.SearchStrategy[Any]:
    """Random instances of an upstream attrs class, every field given explicitly."""
    fields = {}
    for field in attrs.fields(cls):
        override = _FIELD_OVERRIDES.get((cls.__name__, field.name))
        strategy = strategy_for(field.type) if override is None else override
        fields[field.name] = st.none() | strategy if field.default is None else strategy
    return st.builds(cls, **fields)


def upstream_data(event_type: str) -> st.SearchStrategy[Any]:
    """Random upstream payload objects of ``event_type``."""
    return class_strategy(upstream_class(event_type))


def samples(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """Up to ``count`` examples of ``strategy``, for tests that need data outside ``@given``."""
    found: list[Any] = []

    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Any) -> None:
        found.append(value)

    collect()
    return found


# --- comparing upstream and decoded objects ------------------------------------------------------


def comparable(value: Any) -> Any:
    """Plain data with the same value for an upstream object and the sink's decoded one.

    attrs objects become dicts by field name (the class itself is not compared), keys and UUIDs
    their text, datetimes aware UTC instants (naive ones are UTC).
    """
    if attrs.has(type(value)):
        return {
            field.name: comparable(getattr(value, field.name))
            for field in attrs.fields(type(value))
        }
    return _comparable_leaf(value)


def _comparable_leaf(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    if isinstance(value, OpaqueKey | UUID):
        return str(value)
    if isinstance(value, list):
        return [comparable(item) for item in value]
    if isinstance(value, dict):
        return {key: comparable(item) for key, item in value.items()}
    return value


def assert_same(original: Any, decoded: Any) -> None:
    """Assert an upstream object and a decoded one carry the same values, field by field."""
    expected, actual = comparable(original), comparable(decoded)
    assert actual == expected, first_difference(expected, actual)


def first_difference(expected: Any, actual: Any, path: str = "") -> str:
    """Where two plain structures (see :func:`comparable`) first differ, for assertion messages."""
    if isinstance(expected, dict) and isinstance(actual, dict) and expected.keys() == actual.keys():
        for key in expected:
            if expected[key] != actual[key]:
                return first_difference(expected[key], actual[key], f"{path}.{key}")
    return f"{path or '<root>'}: expected {expected!r}, decoded {actual!r}"
