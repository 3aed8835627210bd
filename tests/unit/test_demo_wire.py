"""Demo events on the wire: byte for byte what openedx-events and edx-event-bus-kafka produce."""

from __future__ import annotations

import importlib
import io
import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import attrs
import fastavro
import openedx_events
import pytest

from sink import catalog
from sink.decoder import Decoder
from sink.demo import payloads as p
from sink.demo import traffic, wire
from sink.demo.traffic import DemoEvent
from sink.errors import MessageLocation
from sink.headers import parse_headers
from tests import producer

START = datetime(2026, 1, 5, tzinfo=UTC)
SAMPLES_PER_TYPE = 25
HEADER_ORDER = (
    "ce_specversion",
    "content-type",
    "ce_datacontenttype",
    "ce_type",
    "ce_id",
    "ce_source",
    "ce_time",
    "ce_minorversion",
    "sourcehost",
    "sourcelib",
)


@pytest.fixture(scope="module")
def samples() -> dict[str, list[DemoEvent]]:
    """Up to :data:`SAMPLES_PER_TYPE` events of every type the demo emits, from one run."""
    by_type: dict[str, list[DemoEvent]] = defaultdict(list)
    for event in traffic.generate(1, 20_000, START):
        if len(by_type[event.event_type]) < SAMPLES_PER_TYPE:
            by_type[event.event_type].append(event)
    assert set(by_type) == set(p.EVENT_TYPES)
    return dict(by_type)


def _upstream_classes() -> dict[str, type[Any]]:
    classes: dict[str, type[Any]] = {}
    for subdomain in producer.SIGNAL_MODULES:
        module = importlib.import_module(f"openedx_events.{subdomain}.data")
        classes |= {
            name: value
            for name, value in vars(module).items()
            if isinstance(value, type) and attrs.has(value)
        }
    return classes


UPSTREAM = _upstream_classes()


def to_upstream(value: Any) -> Any:
    """The openedx-events object carrying the same values as the sink's attrs ``value``."""
    if attrs.has(type(value)):
        upstream = UPSTREAM[type(value).__name__]
        fields = attrs.fields(type(value))
        return upstream(**{field.name: to_upstream(getattr(value, field.name)) for field in fields})
    if isinstance(value, list):
        return [to_upstream(item) for item in value]
    if isinstance(value, dict):
        return {key: to_upstream(item) for key, item in value.items()}
    return value


class RecordingIds:
    """Schema ids numbered by (subject, text), remembering what was asked."""

    def __init__(self) -> None:
        self.asked: dict[tuple[str, str], int] = {}

    def schema_id(self, subject: str, schema: str) -> int:
        return self.asked.setdefault((subject, schema), 100 + len(self.asked))


# --- the value ---------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", p.EVENT_TYPES)
def test_value_is_what_openedx_events_serializes(
    samples: dict[str, list[DemoEvent]], event_type: str
) -> None:
    encoder = wire.Encoder()
    for event in samples[event_type]:
        message = encoder.encode(event)
        expected = producer.payload(event_type, to_upstream(event.data))
        assert message.value[5:] == expected


@pytest.mark.parametrize("event_type", p.EVENT_TYPES)
def test_registered_value_schema_is_the_upstream_schema_text(event_type: str) -> None:
    assert wire.value_schema(event_type) == producer.schema_string(event_type)


def test_maps_are_written_in_key_order_like_openedx_events(
    samples: dict[str, list[DemoEvent]],
) -> None:
    thread = samples[p.THREAD_CREATED][0].data
    shuffled = attrs.evolve(thread, options={"zeta": True, "alpha": False, "mid": True})
    expected = producer.payload(p.THREAD_CREATED, to_upstream(shuffled))
    assert wire.avro_payload(p.THREAD_CREATED, shuffled) == expected


def test_value_framing_carries_the_schema_id_of_the_subject(
    samples: dict[str, list[DemoEvent]],
) -> None:
    ids = RecordingIds()
    encoder = wire.Encoder(ids, topic_prefix="acme")
    event = samples[p.ENROLLMENT_CREATED][0]
    message = encoder.encode(event)
    subject = f"acme-learning-course-lifecycle-{p.ENROLLMENT_CREATED}.CloudEvent"
    value_id = ids.asked[subject, wire.value_schema(p.ENROLLMENT_CREATED)]
    assert message.topic == "acme-learning-course-lifecycle"
    assert message.value[:5] == b"\x00" + value_id.to_bytes(4, "big")


# --- the key -----------------------------------------------------------------------------------


def test_key_is_the_key_field_as_an_avro_string(samples: dict[str, list[DemoEvent]]) -> None:
    ids = RecordingIds()
    encoder = wire.Encoder(ids)
    for event_type, events in samples.items():
        event = events[0]
        message = encoder.encode(event)
        topic = wire.ROUTES[event_type].topic
        key_id = ids.asked[f"{topic}-string", wire.key_schema(event_type)]
        assert message.key[:5] == b"\x00" + key_id.to_bytes(4, "big")
        schema = fastavro.parse_schema(json.loads(wire.key_schema(event_type)))
        key = fastavro.schemaless_reader(io.BytesIO(message.key[5:]), schema, None)
        assert key == str(wire.key_value(event))
        assert key  # course keys, usernames, UUIDs, tracking event names: never empty


def test_keys_are_course_keys_for_course_events(samples: dict[str, list[DemoEvent]]) -> None:
    for event_type in (p.ENROLLMENT_CREATED, p.GRADE_CHANGED, p.CERTIFICATE_CREATED):
        event = samples[event_type][0]
        assert wire.key_value(event) == event.data.course.course_key
    login = samples[p.LOGIN][0]
    assert wire.key_value(login) == login.data.pii.username


@pytest.mark.parametrize("event_type", p.EVENT_TYPES)
def test_key_schema_is_the_key_fields_entry_of_the_value_schema(event_type: str) -> None:
    """What edx-event-bus-kafka's ``extract_key_schema`` registers: a string field entry."""
    name = wire.ROUTES[event_type].key_field.rsplit(".", 1)[1]
    assert json.loads(wire.key_schema(event_type)) == {"name": name, "type": "string"}


@pytest.mark.parametrize("text", ["", "a", "x" * 63, "x" * 64, "é" * 200, "course-v1:A+B+C"])
def test_avro_string_matches_fastavro(text: str) -> None:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema("string"), text)
    assert wire.avro_string(text) == buffer.getvalue()


# --- headers -----------------------------------------------------------------------------------


def test_headers_are_edx_event_bus_kafkas(samples: dict[str, list[DemoEvent]]) -> None:
    for events in samples.values():
        event = events[0]
        headers = wire.headers(event)
        assert tuple(name for name, _ in headers) == HEADER_ORDER
        values = {name: value.decode() for name, value in headers}
        assert values["ce_type"] == event.event_type
        assert values["ce_id"] == str(event.event_id)
        assert values["ce_source"] == f"openedx/{event.service}/web"
        assert values["ce_time"] == event.time.isoformat()
        assert values["ce_time"].endswith("+00:00")
        assert values["ce_specversion"] == "1.0"
        assert values["ce_minorversion"] == "0"
        assert values["content-type"] == values["ce_datacontenttype"] == "application/avro"
        assert values["sourcehost"] == event.host
        assert values["sourcelib"] == openedx_events.__version__


def test_headers_parse_into_the_event_metadata(samples: dict[str, list[DemoEvent]]) -> None:
    event = samples[p.CERTIFICATE_CREATED][0]
    metadata = parse_headers(wire.headers(event))
    assert metadata.id == str(event.event_id)
    assert metadata.type == event.event_type
    assert metadata.time == event.time
    assert metadata.source == "openedx/lms/web"
    assert (metadata.sourcehost, metadata.sourcelib) == (event.host, wire.SOURCELIB)


# --- routes and decoding -------------------------------------------------------------------------


def test_every_demo_event_type_has_a_route_and_no_other() -> None:
    assert set(wire.ROUTES) == set(p.EVENT_TYPES)
    assert len(wire.TOPICS) == len(set(wire.TOPICS)) == 7
    assert wire.ROUTES[p.TRACKING].topic == "analytics"


def test_topic_prefix_is_joined_with_a_hyphen() -> None:
    assert wire.full_topic("analytics", "prod") == "prod-analytics"
    assert wire.full_topic("analytics", None) == "analytics"
    assert wire.full_topic("analytics", "") == "analytics"


def test_local_ids_follow_the_schema_text_like_a_registry() -> None:
    ids = wire.LocalSchemaIds()
    first = ids.schema_id("a-string", '{"name": "x", "type": "string"}')
    assert ids.schema_id("b-string", '{"name": "x", "type": "string"}') == first
    assert ids.schema_id("a-string", '{"name": "y", "type": "string"}') == first + 1


def test_the_sinks_decoder_reads_every_message_back(samples: dict[str, list[DemoEvent]]) -> None:
    encoder = wire.Encoder()
    decoder = Decoder()
    events = [event for events in samples.values() for event in events]
    for offset, (event, message) in enumerate(zip(events, encoder.encode_all(events), strict=True)):
        location = MessageLocation(message.topic, 0, offset)
        decoded = decoder.decode(message.value, message.headers, location, message.key)
        assert decoded.spec == catalog.spec_for(event.event_type)
        assert decoded.data == event.data
        assert decoded.event_id == str(event.event_id)
        assert decoded.metadata.time == event.time
