"""Decoding Kafka messages into events: framing, writer schemas, values as sent, every error."""

from __future__ import annotations

import base64
import contextlib
import copy
import http.server
import io
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar, cast
from uuid import UUID

import attrs
import fastavro
import openedx_events
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from hypothesis import given, settings
from hypothesis import strategies as st
from opaque_keys.edx.keys import CourseKey, UsageKey

from sink import catalog, events
from sink.avro_schema import canonical_schema
from sink.config import Settings
from sink.decoder import NO_REGISTRY_WARNING, DecodedEvent, Decoder, registry_client
from sink.errors import (
    BadHeaderError,
    ConfigError,
    CorruptPayloadError,
    DecodeError,
    DuplicateHeaderError,
    FramingError,
    InvalidValueError,
    MessageLocation,
    MissingHeaderError,
    RegistryAccessError,
    RegistryUnavailableError,
    SchemaMismatchError,
    UnknownEventTypeError,
    UnknownSchemaIdError,
)
from tests import producer

ENROLLMENT = "org.openedx.learning.course.enrollment.created.v1"
DISCUSSIONS = "org.openedx.learning.discussions.configuration.changed.v1"
LEDGER = "org.openedx.enterprise.subsidy_ledger_transaction.created.v1"
CCX_PASSING = "org.openedx.learning.ccx.course.passing.status.updated.v1"
TRACKING = "org.openedx.analytics.tracking.event.emitted.v1"
HERE = MessageLocation("openedx-events", 3, 1234)


# --- helpers -----------------------------------------------------------------------------------


def _user(user_id: int = 7, *, active: bool = True) -> dict[str, Any]:
    return {
        "id": user_id,
        "is_active": active,
        "pii": {"username": "ada", "email": "ada@example.org", "name": "Ada"},
    }


def _enrollment(**overrides: Any) -> dict[str, Any]:
    record = {
        "user": _user(),
        "course": {
            "course_key": "course-v1:edX+DemoX+2026",
            "display_name": "Demo",
            "start": "2026-01-05T00:00:00+00:00",
            "end": None,
        },
        "mode": "verified",
        "is_active": True,
        "creation_date": "2026-11-27T04:04:00.367997+00:00",
        "created_by": None,
    }
    record.update(overrides)
    return record


def _discussions(**overrides: Any) -> dict[str, Any]:
    record = {
        "course_key": "course-v1:edX+DemoX+2026",
        "provider_type": "openedx",
        "enabled": True,
        "enable_in_context": True,
        "enable_graded_units": False,
        "unit_level_visibility": False,
        "plugin_configuration": {},
        "contexts": [],
    }
    record.update(overrides)
    return record


def _avro(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(copy.deepcopy(schema)), record)
    return out.getvalue()


def _value(event_type: str, payload: dict[str, Any], schema_id: int = 1) -> bytes:
    """A framed value of ``payload`` written with the canonical schema of ``event_type``."""
    spec = catalog.spec_for(event_type)
    return producer.frame(schema_id, _avro(canonical_schema(spec), {spec.data_key: payload}))


def _headers(event_type: str = ENROLLMENT) -> list[tuple[str, bytes | None]]:
    return list(producer.headers(event_type, host="lms-1"))


@pytest.fixture
def local() -> Decoder:
    """A decoder without registry (it decodes with the local schemas)."""
    return Decoder()


def _decode(event_type: str, payload: dict[str, Any]) -> Any:
    return Decoder().decode(_value(event_type, payload), _headers(event_type), HERE).data


def _registry() -> Any:
    return SchemaRegistryClient.new_client({"url": "mock://decoder-tests"})


def _register(registry: Any, schema: dict[str, Any] | str, subject: str = "s") -> int:
    text = schema if isinstance(schema, str) else json.dumps(schema)
    return int(registry.register_schema(subject, Schema(text, "AVRO")))


class _Registry:
    """A schema source that answers with a fixed schema or failure, counting the calls."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls = 0

    def get_schema(self, schema_id: int) -> Any:
        self.calls += 1
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


# --- the happy path ----------------------------------------------------------------------------


def test_decodes_a_real_message(local: Decoder) -> None:
    user = producer.class_strategy(producer.upstream_class(ENROLLMENT))
    original = producer.samples(user, 1)[0]
    sent = producer.message(ENROLLMENT, original, schema_id=42)
    event = local.decode(sent.value, sent.headers, HERE)
    assert isinstance(event, DecodedEvent)
    assert isinstance(event.data, events.CourseEnrollmentData)
    assert event.spec == catalog.spec_for(ENROLLMENT)
    assert event.schema_id == 42
    assert event.location == HERE
    assert event.event_id == sent.event_id
    assert event.event_type == ENROLLMENT
    assert event.metadata.sourcelib == openedx_events.__version__
    producer.assert_same(original, event.data)


def test_decode_message_reads_a_kafka_message(local: Decoder) -> None:
    value, headers = _value(ENROLLMENT, _enrollment()), _headers()

    class KafkaMessage:
        def key(self) -> bytes:
            return b"course-key"

        def value(self) -> bytes:
            return value

        def headers(self) -> list[tuple[str, bytes | None]]:
            return headers

        def topic(self) -> str:
            return HERE.topic

        def partition(self) -> int:
            return HERE.partition

        def offset(self) -> int:
            return HERE.offset

    event = local.decode_message(KafkaMessage())
    assert event.location == HERE
    assert event.raw is not None
    assert event.raw.key == b"course-key"
    # The raw message is referenced, not copied: it costs no memory beyond the message's own.
    assert event.raw.value is value
    assert event.raw.headers is headers


def test_the_raw_message_is_kept_but_not_compared_or_shown(local: Decoder) -> None:
    value = _value(ENROLLMENT, _enrollment())
    event = local.decode(value, _headers(), HERE)
    assert event.raw is not None
    assert (event.raw.key, event.raw.value) == (None, value)
    assert event == attrs.evolve(event, raw=None)
    assert "ada@example.org" not in repr(event.raw)
    assert "raw=" not in repr(event)


def test_values_are_parsed_into_their_types() -> None:
    data = _decode(
        ENROLLMENT,
        _enrollment(created_by=_user(9)),
    )
    assert data.course.course_key == CourseKey.from_string("course-v1:edX+DemoX+2026")
    assert data.course.start == datetime(2026, 1, 5, tzinfo=UTC)
    assert data.creation_date == datetime(2026, 11, 27, 4, 4, 0, 367997, tzinfo=UTC)
    assert data.created_by == events.UserData(
        id=9, is_active=True, pii=events.UserPersonalData("ada", "ada@example.org", "Ada")
    )


def test_ledger_uuids_and_nested_nullable_record() -> None:
    reversal_uuid = "0b9d2a40-6e2f-4b83-9f4c-2f6c1a9b8e11"
    reversal = {
        "uuid": reversal_uuid,
        "created": "2026-01-01T00:00:00",
        "modified": "2026-01-01T00:00:00",
        "idempotency_key": "",
        "quantity": 0,
        "state": "created",
    }
    ledger = {
        **reversal,
        "uuid": "7f1c4a0e-5a8d-4c1e-9d4e-1f2a3b4c5d6e",
        "ledger_uuid": "00000000-0000-0000-0000-000000000000",
        "subsidy_access_policy_uuid": "ffffffff-ffff-ffff-ffff-ffffffffffff",
        "lms_user_id": 0,
        "content_key": "course-v1:edX+DemoX+2026",
        "parent_content_key": None,
        "fulfillment_identifier": "",
        "reversal": reversal,
    }
    data = _decode(LEDGER, ledger)
    assert data.uuid == UUID("7f1c4a0e-5a8d-4c1e-9d4e-1f2a3b4c5d6e")
    assert data.reversal.uuid == UUID(reversal_uuid)
    assert data.reversal.created == datetime(2026, 1, 1, tzinfo=UTC)
    assert (data.lms_user_id, data.quantity, data.fulfillment_identifier) == (0, 0, "")
    assert data.parent_content_key is None
    assert _decode(LEDGER, {**ledger, "reversal": None}).reversal is None


def test_tracking_log_json_stays_text() -> None:
    payload = {
        "name": "problem_check",
        "timestamp": "2026-11-27T04:04:00Z",
        "data": '{"a": 1}',
        "context": "not even json",
    }
    data = _decode(TRACKING, payload)
    assert (data.data, data.context) == ('{"a": 1}', "not even json")


def test_ccx_course_dates_stay_strings() -> None:
    ccx = {
        "ccx_course_key": "ccx-v1:edX+DemoX+2026+ccx@3",
        "master_course_key": "course-v1:edX+DemoX+2026",
        "display_name": "",
        "coach_email": "",
        "start": "next monday",
        "end": "",
        "max_students_allowed": 0,
    }
    data = _decode(CCX_PASSING, {"is_passing": False, "user": _user(), "course": ccx})
    assert data.is_passing is False
    assert (data.course.start, data.course.end, data.course.max_students_allowed) == (
        "next monday",
        "",
        0,
    )
    assert str(data.course.ccx_course_key) == "ccx-v1:edX+DemoX+2026+ccx@3"


# --- values exactly as sent ---------------------------------------------------------------------


def test_falsy_values_are_kept_as_sent() -> None:
    contexts: list[dict[str, Any]] = [
        {
            "title": "",
            "usage_key": None,
            "group_id": 0,
            "external_id": "",
            "ordering": 0,
            "context": {},
        }
    ]
    data = _decode(
        DISCUSSIONS,
        _discussions(
            provider_type="",
            enabled=False,
            enable_in_context=False,
            plugin_configuration={"x": False},
            contexts=contexts,
        ),
    )
    assert data.enabled is False
    assert data.enable_in_context is False
    assert data.provider_type == ""
    assert data.plugin_configuration == {"x": False}
    assert data.contexts == [
        events.DiscussionTopicContext(
            title="", usage_key=None, group_id=0, external_id="", ordering=0, context={}
        )
    ]


def test_falsy_values_survive_the_upstream_serializer(local: Decoder) -> None:
    data_module = pytest.importorskip("openedx_events.learning.data")
    original = data_module.CourseDiscussionConfigurationData(
        course_key=CourseKey.from_string("course-v1:edX+DemoX+2026"),
        provider_type="",
        enabled=False,
        enable_in_context=False,
        plugin_configuration={},
        contexts=[data_module.DiscussionTopicContext(title="", group_id=0, ordering=0)],
    )
    sent = producer.message(DISCUSSIONS, original)
    data = local.decode(sent.value, sent.headers, HERE).data
    assert (data.enabled, data.enable_in_context, data.provider_type) == (False, False, "")
    assert (data.contexts[0].group_id, data.contexts[0].ordering) == (0, 0)


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ("2026-11-27T04:04:00+00:00", datetime(2026, 11, 27, 4, 4, tzinfo=UTC)),
        ("2026-11-27T04:04:00Z", datetime(2026, 11, 27, 4, 4, tzinfo=UTC)),
        ("2026-11-27T04:04:00", datetime(2026, 11, 27, 4, 4, tzinfo=UTC)),
        ("2026-11-27T04:04:00.000001", datetime(2026, 11, 27, 4, 4, 0, 1, tzinfo=UTC)),
        ("2026-11-27T09:34:00+05:30", datetime(2026, 11, 27, 4, 4, tzinfo=UTC)),
        ("2026-11-26T18:04:00-10:00", datetime(2026, 11, 27, 4, 4, tzinfo=UTC)),
        ("2026-11-27", datetime(2026, 11, 27, tzinfo=UTC)),
    ],
)
def test_datetimes_become_utc_instants(sent: str, expected: datetime) -> None:
    creation_date = _decode(ENROLLMENT, _enrollment(creation_date=sent)).creation_date
    assert creation_date == expected
    assert creation_date.tzinfo is UTC


def test_old_discussions_writer_without_enabled_decodes_as_enabled() -> None:
    """A 10.6-11.0 producer's schema lacks ``enabled``; the reader default fills it in."""
    spec = catalog.spec_for(DISCUSSIONS)
    old_schema = copy.deepcopy(canonical_schema(spec))
    record_fields = old_schema["fields"][0]["type"]["fields"]
    old_schema["fields"][0]["type"]["fields"] = [f for f in record_fields if f["name"] != "enabled"]
    old_record = _discussions(enable_in_context=False)
    del old_record["enabled"]
    registry = _registry()
    schema_id = _register(registry, old_schema)
    value = producer.frame(schema_id, _avro(old_schema, {"configuration": old_record}))
    data = Decoder(registry).decode(value, _headers(DISCUSSIONS), HERE).data
    assert data.enabled is True
    assert data.enable_in_context is False


# --- writer schemas from the registry -----------------------------------------------------------


def test_registry_schema_decodes_with_its_id() -> None:
    registry = _registry()
    schema_id = _register(registry, producer.schema_string(ENROLLMENT))
    value = _value(ENROLLMENT, _enrollment(), schema_id)
    event = Decoder(registry).decode(value, _headers(), HERE)
    assert event.schema_id == schema_id
    assert event.data.mode == "verified"


def test_writer_schema_is_fetched_once_per_id() -> None:
    registered = Schema(producer.schema_string(ENROLLMENT), "AVRO")
    registry = _Registry(registered)
    decoder = Decoder(registry)
    for _ in range(3):
        decoder.decode(_value(ENROLLMENT, _enrollment()), _headers(), HERE)
    assert registry.calls == 1


def test_same_schema_id_under_two_event_types_gets_two_plans() -> None:
    """A schema id is resolved against the reader schema of each event type separately."""
    registry = _Registry(Schema(producer.schema_string(ENROLLMENT), "AVRO"))
    decoder = Decoder(registry)
    decoder.decode(_value(ENROLLMENT, _enrollment()), _headers(), HERE)
    changed = "org.openedx.learning.course.enrollment.changed.v1"
    event = decoder.decode(_value(ENROLLMENT, _enrollment()), _headers(changed), HERE)
    assert event.event_type == changed
    assert registry.calls == 2


def test_unknown_schema_id_in_a_real_registry_answer() -> None:
    failure = SchemaRegistryError(404, 40403, "Schema 77 not found.")
    with pytest.raises(UnknownSchemaIdError, match="no schema 1"):
        Decoder(_Registry(failure)).decode(_value(ENROLLMENT, _enrollment()), _headers(), HERE)


def test_unknown_schema_id() -> None:
    with pytest.raises(UnknownSchemaIdError, match="no schema 77") as caught:
        Decoder(_registry()).decode(_value(ENROLLMENT, _enrollment(), 77), _headers(), HERE)
    assert caught.value.location == HERE


@pytest.mark.parametrize(
    "failure",
    [
        SchemaRegistryError(500, 50001, "boom"),
        SchemaRegistryError(503, -1, "unavailable"),
        SchemaRegistryError(429, 42901, "slow down"),
        TimeoutError("timed out"),
        ConnectionError("refused"),
    ],
)
def test_registry_failures_are_transient(failure: Exception) -> None:
    with pytest.raises(RegistryUnavailableError, match=re.escape(str(HERE))) as caught:
        Decoder(_Registry(failure)).decode(_value(ENROLLMENT, _enrollment()), _headers(), HERE)
    assert caught.value.transient
    assert not caught.value.poison


def test_unreachable_registry_is_transient() -> None:
    registry = SchemaRegistryClient({"url": "http://127.0.0.1:9", "timeout": 2, "max.retries": 0})
    with pytest.raises(RegistryUnavailableError):
        Decoder(registry).decode(_value(ENROLLMENT, _enrollment()), _headers(), HERE)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """An HTTP address that accepts connections and never answers (a hung registry)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    for connection in accepted:
        connection.close()


def test_registry_that_never_answers_is_transient_not_a_hang(silent_server: str) -> None:
    """The sink's client gives up on a request after its timeout, so the message is retried."""
    settings = Settings(schema_registry_url=silent_server, schema_registry_timeout_s=0.2)
    started = time.monotonic()
    with pytest.raises(RegistryUnavailableError, match=re.escape(str(HERE))):
        Decoder.from_settings(settings).decode(_value(ENROLLMENT, _enrollment()), _headers(), HERE)
    # Four attempts of 0.2 s plus the client's randomized back-off (at most 1 + 2 + 4 s).
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("status", "code"), [(401, 40101), (403, 40301), (404, -1), (404, None), (404, 40401)]
)
def test_refused_credentials_or_wrong_url_are_fatal(status: int, code: int | None) -> None:
    """A wrong URL must not turn every message into an "unknown schema id" dead letter."""
    # Typed `int`, but the client passes the body's error_code as is: None when the body has none.
    failure = SchemaRegistryError(status, cast(int, code), "no")
    with pytest.raises(RegistryAccessError) as caught:
        Decoder(_Registry(failure)).decode(_value(ENROLLMENT, _enrollment()), _headers(), HERE)
    assert not caught.value.transient
    assert not caught.value.poison


def test_registry_failure_is_not_cached() -> None:
    registry = _Registry(SchemaRegistryError(503, -1, "later"))
    decoder = Decoder(registry)
    value = _value(ENROLLMENT, _enrollment())
    with pytest.raises(RegistryUnavailableError):
        decoder.decode(value, _headers(), HERE)
    registry.answer = Schema(producer.schema_string(ENROLLMENT), "AVRO")
    assert decoder.decode(value, _headers(), HERE).data.mode == "verified"


@pytest.mark.parametrize(
    "registered",
    [
        Schema('{"type": "object"}', "JSON"),
        Schema("not json", "AVRO"),
        Schema('{"type": "record", "name": "X", "fields": [{"name": "a", "type": "Nope"}]}'),
    ],
)
def test_unusable_writer_schema(registered: Any) -> None:
    with pytest.raises(SchemaMismatchError, match="schema 1 is"):
        Decoder(_Registry(registered)).decode(_value(ENROLLMENT, _enrollment()), _headers(), HERE)


def test_writer_schema_that_does_not_resolve() -> None:
    spec = catalog.spec_for(ENROLLMENT)
    writer = copy.deepcopy(canonical_schema(spec))
    for field in writer["fields"][0]["type"]["fields"]:
        if field["name"] == "mode":
            field["type"] = "long"
    registry = _registry()
    schema_id = _register(registry, writer)
    record = {"enrollment": _enrollment(mode=3)}
    value = producer.frame(schema_id, _avro(writer, record))
    with pytest.raises(SchemaMismatchError, match="does not resolve") as caught:
        Decoder(registry).decode(value, _headers(), HERE)
    assert caught.value.location == HERE


def test_writer_of_another_event_type_does_not_resolve() -> None:
    registry = _registry()
    schema_id = _register(registry, producer.schema_string(TRACKING))
    value = _value(ENROLLMENT, _enrollment(), schema_id)
    with pytest.raises((SchemaMismatchError, CorruptPayloadError)):
        Decoder(registry).decode(value, _headers(), HERE)


# --- no registry --------------------------------------------------------------------------------


def test_no_registry_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sink.decoder"):
        decoder = Decoder()
        for _ in range(3):
            decoder.decode(_value(ENROLLMENT, _enrollment()), _headers(), HERE)
    assert [record.message for record in caplog.records] == [NO_REGISTRY_WARNING]
    assert NO_REGISTRY_WARNING.startswith("no schema registry configured: decoding with local")


def test_registry_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sink.decoder"):
        Decoder(_registry())
    assert not caplog.records


# --- bad messages -------------------------------------------------------------------------------


def _expect(error: type[DecodeError], value: bytes | None, headers: Any, match: str) -> None:
    with pytest.raises(error, match=match) as caught:
        Decoder().decode(value, headers, HERE)
    assert caught.value.location == HERE
    assert str(caught.value).startswith(f"{HERE}: ")
    assert caught.value.poison


def _headers_without(name: str) -> list[tuple[str, bytes | None]]:
    return [(key, value) for key, value in _headers() if key != name]


@pytest.mark.parametrize("name", ["ce_id", "ce_type"])
def test_missing_header(name: str) -> None:
    _expect(MissingHeaderError, _value(ENROLLMENT, _enrollment()), _headers_without(name), name)


@pytest.mark.parametrize("name", ["ce_id", "ce_type", "ce_source"])
def test_duplicate_header(name: str) -> None:
    headers = [*_headers(), (name, b"x")]
    _expect(DuplicateHeaderError, _value(ENROLLMENT, _enrollment()), headers, name)


def test_bad_header() -> None:
    headers = [*_headers_without("ce_time"), ("ce_time", b"\xff")]
    _expect(BadHeaderError, _value(ENROLLMENT, _enrollment()), headers, "ce_time is not UTF-8")


def test_unknown_event_type() -> None:
    headers = producer.headers("org.openedx.learning.nope.v1")
    value = _value(ENROLLMENT, _enrollment())
    _expect(UnknownEventTypeError, value, headers, "org.openedx.learning.nope.v1")


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (None, "no value"),
        (b"", "too short"),
        (b"\x00\x00\x00\x01", "too short"),
        (b"\x01" + bytes(20), "magic byte is 0x01"),
        (b"{" + bytes(20), "magic byte is 0x7b"),
    ],
)
def test_framing_errors(value: bytes | None, match: str) -> None:
    _expect(FramingError, value, _headers(), match)


def test_truncated_payload() -> None:
    value = _value(ENROLLMENT, _enrollment())
    for end in range(5, len(value)):
        _expect(CorruptPayloadError, value[:end], _headers(), "corrupt Avro payload")


def test_trailing_bytes_after_the_record() -> None:
    value = _value(ENROLLMENT, _enrollment()) + b"\x00\x02"
    _expect(CorruptPayloadError, value, _headers(), "2 trailing bytes")


def test_empty_payload() -> None:
    _expect(CorruptPayloadError, producer.frame(1, b""), _headers(), "corrupt Avro payload")


def _tracking_value(avro_after_name: bytes) -> bytes:
    """A tracking-log value: name "n", then the given bytes for the remaining fields."""
    return producer.frame(1, b"\x02n" + avro_after_name)


@pytest.mark.parametrize(
    ("avro", "why"),
    [
        (b"\x03", "negative string length"),
        (b"\x7f", "string longer than the payload"),
        (b"\x04\xff\xfe\x00\x00\x00\x00", "invalid UTF-8"),
    ],
)
def test_corrupt_strings(avro: bytes, why: str) -> None:
    _expect(CorruptPayloadError, _tracking_value(avro), _headers(TRACKING), "corrupt Avro")
    assert why


def test_bad_union_index() -> None:
    value = bytearray(_value(ENROLLMENT, _enrollment()))
    assert value[-1] == 0  # created_by: union branch 0 (null) is the last byte
    value[-1] = 0x08  # branch 4 of a two-branch union
    _expect(CorruptPayloadError, bytes(value), _headers(), "corrupt Avro payload")


@pytest.mark.parametrize(
    ("event_type", "payload", "message"),
    [
        (
            ENROLLMENT,
            _enrollment(course={**_enrollment()["course"], "course_key": "xyz"}),
            "enrollment.course.course_key: invalid CourseKey 'xyz'",
        ),
        (
            ENROLLMENT,
            _enrollment(creation_date="27/11/2026"),
            "enrollment.creation_date: invalid datetime '27/11/2026'",
        ),
        (
            ENROLLMENT,
            _enrollment(course={**_enrollment()["course"], "end": "soon"}),
            "enrollment.course.end: invalid datetime 'soon'",
        ),
        (
            DISCUSSIONS,
            _discussions(contexts=[{"title": "a"}, {"title": "b", "usage_key": "block-v1:nope"}]),
            "configuration.contexts[1].usage_key: invalid UsageKey 'block-v1:nope'",
        ),
        (
            "org.openedx.enterprise.enterprise_group.deleted.v1",
            {"uuid": "not-a-uuid"},
            "enterprise_group.uuid: invalid UUID 'not-a-uuid'",
        ),
        (
            CCX_PASSING,
            {
                "is_passing": True,
                "user": _user(),
                "course": {
                    "ccx_course_key": "course-v1:edX+DemoX+2026",
                    "master_course_key": "course-v1:edX+DemoX+2026",
                    "display_name": "",
                    "coach_email": "",
                },
            },
            "course_passing_status.course.ccx_course_key: invalid CCXLocator",
        ),
        (
            ENROLLMENT,
            _enrollment(creation_date="0001-01-01T00:00:00+01:00"),
            "enrollment.creation_date: invalid datetime",
        ),
    ],
)
def test_invalid_values_name_their_field(event_type: str, payload: Any, message: str) -> None:
    spec = catalog.spec_for(event_type)
    full = _with_defaults(spec, payload)
    _expect(InvalidValueError, _value(event_type, full), _headers(event_type), re.escape(message))


def _with_defaults(spec: catalog.EventSpec, payload: Any) -> Any:
    """``payload`` with every missing nullable or defaulted field filled in (for brevity above)."""
    if spec.data_class is events.CourseDiscussionConfigurationData:
        contexts = [
            {"usage_key": None, "group_id": None, "external_id": None, "ordering": None}
            | {"context": {}}
            | context
            for context in payload["contexts"]
        ]
        return {**payload, "contexts": contexts}
    if spec.data_class is events.CcxCoursePassingStatusData:
        course = {"start": None, "end": None, "max_students_allowed": None} | payload["course"]
        return {**payload, "course": course}
    return payload


def test_usage_keys_are_parsed() -> None:
    key = "block-v1:edX+DemoX+2026+type@problem+block@p1"
    contexts = [{"title": "t", "usage_key": key}]
    spec = catalog.spec_for(DISCUSSIONS)
    data = _decode(DISCUSSIONS, _with_defaults(spec, _discussions(contexts=contexts)))
    assert data.contexts[0].usage_key == UsageKey.from_string(key)


# --- fuzzing: nothing but SinkErrors, ever ------------------------------------------------------


def _valid_messages() -> list[producer.Message]:
    if not _VALID:
        for event_type in producer.serializable_event_types():
            for data in producer.samples(producer.upstream_data(event_type), 2):
                _VALID.append(producer.message(event_type, data, schema_id=1))
    return _VALID


_VALID: list[producer.Message] = []


@pytest.fixture(scope="module")
def valid_messages() -> list[producer.Message]:
    return _valid_messages()


@pytest.fixture(scope="module")
def fuzz_decoders() -> list[Decoder]:
    """A local decoder, and one with a registry holding the schemas the messages use."""
    registry = _registry()
    for event_type in producer.serializable_event_types():
        _register(registry, producer.schema_string(event_type), event_type)
    return [Decoder(), Decoder(registry)]


def _mutate(value: bytes, draw: st.DrawFn) -> bytes:
    data = bytearray(value)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "extend"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[position] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete":
            del data[position : position + draw(st.integers(1, 4))]
        elif kind == "truncate":
            del data[position:]
        else:
            data += draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@st.composite
def _mutated_messages(draw: st.DrawFn, messages: list[producer.Message]) -> Any:
    message = draw(st.sampled_from(messages))
    value = _mutate(message.value, draw) if draw(st.booleans()) else message.value
    headers = list(message.headers)
    if draw(st.booleans()):
        index = draw(st.integers(0, len(headers) - 1))
        name, _ = headers[index]
        headers[index] = (name, _mutate(headers[index][1], draw))
    if draw(st.integers(0, 9)) == 0:
        headers.append(draw(st.sampled_from(headers)))
    return value, headers


def _decode_or_sink_error(decoder: Decoder, value: bytes | None, headers: Any) -> None:
    """Decode; a failure must be a located DecodeError (no registry here is ever down)."""
    location: MessageLocation | None = HERE
    try:
        decoder.decode(value, headers, HERE)
    except DecodeError as error:
        location = error.location
    assert location == HERE


@settings(max_examples=1000, deadline=None)
@given(data=st.data())
def test_fuzz_mutated_messages_raise_only_decode_errors(
    data: st.DataObject, valid_messages: list[producer.Message], fuzz_decoders: list[Decoder]
) -> None:
    value, headers = data.draw(_mutated_messages(valid_messages))
    for decoder in fuzz_decoders:
        _decode_or_sink_error(decoder, value, headers)


@settings(max_examples=500, deadline=None)
@given(
    value=st.binary(max_size=200) | st.binary(max_size=200).map(lambda b: b"\x00" + b),
    event_type=st.sampled_from(catalog.event_types()),
)
def test_fuzz_random_bytes_raise_only_decode_errors(
    value: bytes, event_type: str, fuzz_decoders: list[Decoder]
) -> None:
    for decoder in fuzz_decoders:
        _decode_or_sink_error(decoder, value, producer.headers(event_type))


@settings(max_examples=300, deadline=None)
@given(
    headers=st.lists(
        st.tuples(
            st.sampled_from(["ce_id", "ce_type", "ce_time", "ce_minorversion", "x"]),
            st.none() | st.binary(max_size=40),
        ),
        max_size=6,
    )
)
def test_fuzz_random_headers_raise_only_decode_errors(
    headers: list[tuple[str, bytes | None]], valid_messages: list[producer.Message]
) -> None:
    _decode_or_sink_error(Decoder(), valid_messages[0].value, headers)


# --- round trip through the upstream serializer --------------------------------------------------


@pytest.mark.parametrize("event_type", producer.serializable_event_types())
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_round_trip_through_openedx_events(
    event_type: str, data: st.DataObject, fuzz_decoders: list[Decoder]
) -> None:
    original = data.draw(producer.upstream_data(event_type))
    sent = producer.message(event_type, original)
    event = fuzz_decoders[0].decode(sent.value, sent.headers, HERE)
    assert event.event_type == event_type
    producer.assert_same(original, event.data)


def test_every_catalog_event_type_is_serializable_upstream() -> None:
    assert producer.serializable_event_types() == catalog.event_types()


# --- registry client settings ---------------------------------------------------------------------


class _RecordingRegistry(http.server.BaseHTTPRequestHandler):
    """Serves the enrollment schema under every id and remembers the Authorization headers."""

    authorizations: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        type(self).authorizations.append(self.headers.get("Authorization"))
        body = json.dumps({"schema": producer.schema_string(ENROLLMENT)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def recording_registry() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _RecordingRegistry)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    _RecordingRegistry.authorizations.clear()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_registry_client_sends_basic_auth(recording_registry: str) -> None:
    client = registry_client(recording_registry, basic_auth_user_info="sink:s3cret")
    event = Decoder(client).decode(_value(ENROLLMENT, _enrollment(), 5), _headers(), HERE)
    assert event.data.mode == "verified"
    expected = "Basic " + base64.b64encode(b"sink:s3cret").decode()
    assert _RecordingRegistry.authorizations == [expected]


def test_registry_client_without_auth(recording_registry: str) -> None:
    Decoder(registry_client(recording_registry)).decode(
        _value(ENROLLMENT, _enrollment(), 5), _headers(), HERE
    )
    assert _RecordingRegistry.authorizations == [None]


@pytest.mark.parametrize(
    ("url", "user_info"),
    [("http://127.0.0.1:9", "no-colon"), ("not a url", None), ("http://u:p@127.0.0.1:9", "a:b")],
)
def test_registry_client_rejects_bad_settings(url: str, user_info: str | None) -> None:
    with pytest.raises(ConfigError, match="schema registry settings"):
        registry_client(url, basic_auth_user_info=user_info)


def test_registry_client_mock_url() -> None:
    client = registry_client("mock://settings-test")
    schema_id = _register(client, producer.schema_string(ENROLLMENT))
    assert Decoder(client).decode(_value(ENROLLMENT, _enrollment(), schema_id), _headers(), HERE)
