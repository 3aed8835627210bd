"""Demo events as Kafka messages, byte for byte as edx-event-bus-kafka 6.x produces them.

* **Topic**: :data:`ROUTES` says where each event type goes (the deployment's
  ``EVENT_BUS_PRODUCER_CONFIG``), prefixed as ``<prefix>-<topic>`` like ``EVENT_BUS_TOPIC_PREFIX``:

  ====================================  ===================================================
  topic                                 event types
  ====================================  ===================================================
  ``learning-auth``                     registration, login
  ``learning-course-lifecycle``         enrollment created/changed, unenrollment, cohort
                                        membership, course access roles, grades, passing status
  ``learning-certificate-lifecycle``    certificate created/changed/revoked
  ``learning-discussions``              forum thread, response, comment created
  ``learning-exam-attempt-lifecycle``   exam attempt submitted/verified/rejected/errored/reset
  ``analytics``                         tracking logs
  ``enterprise-subsidy``                subsidy redeemed, ledger transactions
  ====================================  ===================================================

* **Value**: byte ``0x00``, the 4-byte big-endian schema id, then the schemaless Avro record of
  the canonical schema (:func:`sink.avro_schema.canonical_schema`, which is openedx-events' own),
  with values converted as openedx-events does (datetimes ``isoformat()``, keys and UUIDs
  ``str()``, map entries sorted by key). The schema's subject is
  ``<topic>-<event_type>.CloudEvent``.
* **Key**: the event's ``event_key_field`` (e.g. ``enrollment.course.course_key``) as an Avro
  string, framed the same way. Its schema is the key field's sub-schema, as edx-event-bus-kafka
  extracts it (``{"name": "course_key", "type": "string"}``), under the subject
  ``<topic>-string``.
* **Headers**: the CloudEvents headers in edx-event-bus-kafka's order (``ce_specversion``,
  ``content-type``, ``ce_datacontenttype``, ``ce_type``, ``ce_id``, ``ce_source``, ``ce_time``,
  ``ce_minorversion``, ``sourcehost``, ``sourcelib``).

Schema ids come from a :class:`SchemaIds`: the registry when producing, or
:class:`LocalSchemaIds` to encode offline (decode those with a registry-less
:class:`sink.decoder.Decoder`).
"""

from __future__ import annotations

import io
import json
import struct
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, Protocol
from uuid import UUID

import attrs
import fastavro
from ccx_keys.locator import CCXLocator
from opaque_keys.edx.keys import CourseKey, UsageKey

from sink.avro_schema import canonical_schema
from sink.catalog import spec_for
from sink.demo import payloads as p
from sink.demo.traffic import DemoEvent
from sink.typehints import optional_member

#: The openedx-events release whose classes the sink mirrors (the ``sourcelib`` header).
SOURCELIB: Final = "11.2.0"
CONTENT_TYPE: Final = b"application/avro"


@attrs.frozen
class Route:
    """Where an event type is published.

    Attributes:
        topic: Topic name, before the deployment's prefix.
        key_field: Path of the message key in the event data, data key first
            (edx-event-bus-kafka's ``event_key_field``).
    """

    topic: str
    key_field: str


def _routes() -> dict[str, Route]:
    by_topic: dict[tuple[str, str], tuple[str, ...]] = {
        ("learning-auth", "user.pii.username"): (p.REGISTRATION, p.LOGIN),
        ("learning-course-lifecycle", "enrollment.course.course_key"): (
            p.ENROLLMENT_CREATED,
            p.ENROLLMENT_CHANGED,
            p.UNENROLLMENT,
        ),
        ("learning-course-lifecycle", "cohort.course.course_key"): (p.COHORT_CHANGED,),
        ("learning-course-lifecycle", "course_access_role_data.course_key"): (p.ACCESS_ROLE_ADDED,),
        ("learning-course-lifecycle", "grade.course.course_key"): (p.GRADE_CHANGED,),
        ("learning-course-lifecycle", "course_passing_status.course.course_key"): (
            p.PASSING_STATUS,
        ),
        ("learning-certificate-lifecycle", "certificate.course.course_key"): (
            p.CERTIFICATE_CREATED,
            p.CERTIFICATE_CHANGED,
            p.CERTIFICATE_REVOKED,
        ),
        ("learning-discussions", "thread.course_id"): (
            p.THREAD_CREATED,
            p.RESPONSE_CREATED,
            p.COMMENT_CREATED,
        ),
        ("learning-exam-attempt-lifecycle", "exam_attempt.course_key"): (
            p.EXAM_SUBMITTED,
            p.EXAM_VERIFIED,
            p.EXAM_REJECTED,
            p.EXAM_ERRORED,
            p.EXAM_RESET,
        ),
        ("analytics", "tracking_log.name"): (p.TRACKING,),
        ("enterprise-subsidy", "redemption.subsidy_identifier"): (p.REDEEMED,),
        ("enterprise-subsidy", "ledger_transaction.uuid"): (
            p.LEDGER_CREATED,
            p.LEDGER_COMMITTED,
            p.LEDGER_FAILED,
            p.LEDGER_REVERSED,
        ),
    }
    return {
        event_type: Route(topic, key_field)
        for (topic, key_field), event_types in by_topic.items()
        for event_type in event_types
    }


#: Topic and key field of every event type the demo emits.
ROUTES: Final[Mapping[str, Route]] = MappingProxyType(_routes())
#: The demo's topics, before the prefix.
TOPICS: Final = tuple(dict.fromkeys(route.topic for route in ROUTES.values()))


def full_topic(topic: str, prefix: str | None) -> str:
    """``topic`` with the deployment's topic prefix, as edx-event-bus-kafka names it."""
    return f"{prefix}-{topic}" if prefix else topic


def value_subject(topic: str, event_type: str) -> str:
    """Registry subject of the value schema (TopicRecordNameStrategy)."""
    return f"{topic}-{event_type}.CloudEvent"


def key_subject(topic: str) -> str:
    """Registry subject of the key schema: a primitive schema is named after its type."""
    return f"{topic}-string"


def value_schema(event_type: str) -> str:
    """The value schema text the producer registers (sorted keys, like openedx-events)."""
    return json.dumps(canonical_schema(spec_for(event_type)), sort_keys=True)


def key_schema(event_type: str) -> str:
    """The key schema text: the key field's entry of the value schema, as edx-event-bus-kafka
    extracts it."""
    schema: Any = canonical_schema(spec_for(event_type))
    for name in ROUTES[event_type].key_field.split("."):
        if "fields" not in schema:
            schema = schema["type"]
        schema = next(field for field in schema["fields"] if field["name"] == name)
    return json.dumps(schema, sort_keys=True)


class SchemaIds(Protocol):
    """Gives the registry id of a schema under a subject (registering it as needed)."""

    def schema_id(self, subject: str, schema: str) -> int:
        """The id of ``schema`` (Avro JSON text) under ``subject``."""


class LocalSchemaIds:
    """Schema ids without a registry: 1, 2, 3... in order of first use of each schema text."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def schema_id(self, subject: str, schema: str) -> int:
        """The id of ``schema``: the same text always gets the same id, like a registry's."""
        return self._ids.setdefault(schema, len(self._ids) + 1)


@attrs.frozen
class WireMessage:
    """One Kafka message of a demo event.

    Attributes:
        topic: Full topic name (prefix applied).
        key: Framed Avro key.
        value: Framed Avro value.
        headers: Message headers, in the producer's order.
        event_type: The ``ce_type`` (also in the headers).
    """

    topic: str
    key: bytes
    value: bytes = attrs.field(repr=lambda value: f"<{len(value)} bytes>")
    headers: tuple[tuple[str, bytes], ...]
    event_type: str


class Encoder:
    """Turns :class:`~sink.demo.traffic.DemoEvent` instances into :class:`WireMessage` instances.

    Args:
        schema_ids: Where schema ids come from; default :class:`LocalSchemaIds`.
        topic_prefix: The deployment's topic prefix (``SINK_TOPIC_PREFIX``), if any.
    """

    def __init__(self, schema_ids: SchemaIds | None = None, topic_prefix: str | None = None):
        self._schema_ids = LocalSchemaIds() if schema_ids is None else schema_ids
        self._prefix = topic_prefix
        self._frames: dict[str, tuple[str, bytes, bytes]] = {}

    def encode(self, event: DemoEvent) -> WireMessage:
        """The message of ``event``.

        Raises:
            KeyError: The demo does not route ``event.event_type`` (see :data:`ROUTES`).
        """
        topic, value_frame, key_frame = self._framing(event.event_type)
        return WireMessage(
            topic=topic,
            key=key_frame + avro_string(str(key_value(event))),
            value=value_frame + avro_payload(event.event_type, event.data),
            headers=headers(event),
            event_type=event.event_type,
        )

    def encode_all(self, events: Iterable[DemoEvent]) -> Iterator[WireMessage]:
        """The messages of ``events``, in order."""
        return (self.encode(event) for event in events)

    def _framing(self, event_type: str) -> tuple[str, bytes, bytes]:
        """Full topic, and the 5-byte value and key prefixes of ``event_type``'s messages."""
        if (known := self._frames.get(event_type)) is not None:
            return known
        route = ROUTES[event_type]
        topic = full_topic(route.topic, self._prefix)
        value_id = self._schema_ids.schema_id(
            value_subject(topic, event_type), value_schema(event_type)
        )
        key_id = self._schema_ids.schema_id(key_subject(topic), key_schema(event_type))
        self._frames[event_type] = (topic, frame(value_id), frame(key_id))
        return self._frames[event_type]


def frame(schema_id: int) -> bytes:
    """Confluent framing: magic byte 0 and the 4-byte big-endian schema id."""
    return b"\x00" + struct.pack(">I", schema_id)


def headers(event: DemoEvent) -> tuple[tuple[str, bytes], ...]:
    """The message headers of ``event``, as edx-event-bus-kafka sets them."""
    return (
        ("ce_specversion", b"1.0"),
        ("content-type", CONTENT_TYPE),
        ("ce_datacontenttype", CONTENT_TYPE),
        ("ce_type", event.event_type.encode()),
        ("ce_id", str(event.event_id).encode()),
        ("ce_source", f"openedx/{event.service}/web".encode()),
        ("ce_time", event.time.isoformat().encode()),
        ("ce_minorversion", b"0"),
        ("sourcehost", event.host.encode()),
        ("sourcelib", SOURCELIB.encode()),
    )


def key_value(event: DemoEvent) -> Any:
    """The value of the event's key field (a course key, a username, a UUID...)."""
    value = event.data
    for name in ROUTES[event.event_type].key_field.split(".")[1:]:
        value = getattr(value, name)
    return value


def avro_string(text: str) -> bytes:
    """Avro's binary encoding of a string: zig-zag varint length, then UTF-8."""
    encoded = text.encode()
    zigzag, out = len(encoded) << 1, bytearray()
    while zigzag > 0x7F:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)
    return bytes(out) + encoded


def avro_payload(event_type: str, data: Any) -> bytes:
    """The schemaless Avro bytes of ``data``, as openedx-events'
    ``serialize_event_data_to_bytes`` makes them."""
    spec = spec_for(event_type)
    buffer = io.BytesIO()
    record = {spec.data_key: _record_converter(spec.data_class)(data)}
    fastavro.schemaless_writer(buffer, _parsed_schema(event_type), record)
    return buffer.getvalue()


_PARSED: dict[str, Any] = {}


def _parsed_schema(event_type: str) -> Any:
    if (parsed := _PARSED.get(event_type)) is None:
        parsed = _PARSED[event_type] = fastavro.parse_schema(json.loads(value_schema(event_type)))
    return parsed


# --- attrs instances into Avro records, as openedx-events converts them -------------------------

Converter = Callable[[Any], Any]

_TEXT_TYPES: Final = (datetime, UUID, CourseKey, UsageKey, CCXLocator)
_PLAIN_TYPES: Final = (str, int, bool, float, bytes)
_RECORDS: dict[type[Any], Converter] = {}


def _record_converter(cls: type[Any]) -> Converter:
    """A function turning an instance of the attrs class ``cls`` into its Avro record dict."""
    if (known := _RECORDS.get(cls)) is not None:
        return known
    fields = [
        (field.name, _converter(field.type)) for field in attrs.fields(attrs.resolve_types(cls))
    ]

    def convert(instance: Any) -> dict[str, Any]:
        return {name: to_avro(getattr(instance, name)) for name, to_avro in fields}

    _RECORDS[cls] = convert
    return convert


def _converter(python_type: Any) -> Converter:
    value_type, nullable = optional_member(python_type)
    convert = _value_converter(value_type)
    if not nullable:
        return convert
    return lambda value: None if value is None else convert(value)


def _value_converter(python_type: Any) -> Converter:
    if python_type is datetime:
        return datetime.isoformat
    if python_type in _TEXT_TYPES:
        return str
    if python_type in _PLAIN_TYPES:
        return _same
    origin = typing.get_origin(python_type)
    if origin is list:
        item = _converter(typing.get_args(python_type)[0])
        return lambda values: [item(value) for value in values]
    if origin is dict:
        entry = _converter(typing.get_args(python_type)[1])
        # openedx-events goes through json.dumps(sort_keys=True): map entries come out sorted.
        return lambda mapping: {key: entry(mapping[key]) for key in sorted(mapping)}
    if attrs.has(python_type):
        return _record_converter(python_type)
    raise TypeError(f"no Avro conversion for {python_type!r}")


def _same(value: Any) -> Any:
    return value
