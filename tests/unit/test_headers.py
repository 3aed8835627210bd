"""Reading the CloudEvents metadata of an event from its Kafka headers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sink.errors import BadHeaderError, DuplicateHeaderError, MissingHeaderError
from sink.headers import EventMetadata, parse_headers
from tests import producer

ENROLLMENT = "org.openedx.learning.course.enrollment.created.v1"
EVENT_ID = "c0ffee00-1111-11ef-8000-0242ac120002"


def _headers(**overrides: bytes | None) -> list[tuple[str, bytes | None]]:
    values: dict[str, bytes | None] = {
        "ce_id": EVENT_ID.encode(),
        "ce_type": ENROLLMENT.encode(),
        "ce_source": b"openedx/lms/web",
        "ce_specversion": b"1.0",
        "ce_time": b"2026-11-27T04:04:00.367997+00:00",
        "ce_minorversion": b"0",
        "content-type": b"application/avro",
        "ce_datacontenttype": b"application/avro",
        "sourcehost": b"lms-1",
        "sourcelib": b"11.2.0",
    }
    values.update(overrides)
    return list(values.items())


def _without(name: str) -> list[tuple[str, bytes | None]]:
    return [(key, value) for key, value in _headers() if key != name]


def test_every_header_is_read() -> None:
    assert parse_headers(_headers()) == EventMetadata(
        id=EVENT_ID,
        type=ENROLLMENT,
        time=datetime(2026, 11, 27, 4, 4, 0, 367997, tzinfo=UTC),
        source="openedx/lms/web",
        specversion="1.0",
        minorversion=0,
        sourcehost="lms-1",
        sourcelib="11.2.0",
    )


def test_headers_of_the_test_producer_are_read() -> None:
    metadata = parse_headers(producer.headers(ENROLLMENT, host="lms-2"))
    assert metadata.type == ENROLLMENT
    assert metadata.sourcehost == "lms-2"
    assert metadata.time is not None
    assert metadata.time.tzinfo is UTC


def test_only_id_and_type_are_required() -> None:
    headers = [("ce_id", EVENT_ID.encode()), ("ce_type", ENROLLMENT.encode())]
    assert parse_headers(headers) == EventMetadata(id=EVENT_ID, type=ENROLLMENT)


def test_ce_id_need_not_be_a_uuid() -> None:
    assert parse_headers(_headers(ce_id=b"event-42")).id == "event-42"


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (b"2026-11-27T04:04:00+00:00", datetime(2026, 11, 27, 4, 4, tzinfo=UTC)),
        (b"2026-11-27T04:04:00Z", datetime(2026, 11, 27, 4, 4, tzinfo=UTC)),
        (b"2026-11-27T04:04:00", datetime(2026, 11, 27, 4, 4, tzinfo=UTC)),
        (b"2026-11-27T09:34:00.5+05:30", datetime(2026, 11, 27, 4, 4, 0, 500000, tzinfo=UTC)),
        (b"2026-11-26T20:04:00-08:00", datetime(2026, 11, 27, 4, 4, tzinfo=UTC)),
    ],
)
def test_ce_time_becomes_utc(sent: bytes, expected: datetime) -> None:
    time = parse_headers(_headers(ce_time=sent)).time
    assert time == expected
    assert time is not None
    assert time.utcoffset() is not None
    assert time.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["ce_id", "ce_type"])
def test_missing_required_header(name: str) -> None:
    with pytest.raises(MissingHeaderError, match=name):
        parse_headers(_without(name))


@pytest.mark.parametrize("headers", [None, []])
def test_no_headers_at_all(headers: list[tuple[str, bytes | None]] | None) -> None:
    with pytest.raises(MissingHeaderError, match="ce_id"):
        parse_headers(headers)


@pytest.mark.parametrize("name", ["ce_id", "ce_type", "ce_time", "ce_subject", "sourcelib"])
def test_duplicated_header_is_rejected(name: str) -> None:
    headers = [(name, b"first"), *_headers(), (name, b"again")]
    with pytest.raises(DuplicateHeaderError, match=name):
        parse_headers(headers)


def test_duplicated_identical_header_is_rejected_too() -> None:
    headers = [*_headers(), ("ce_id", EVENT_ID.encode())]
    with pytest.raises(DuplicateHeaderError, match="ce_id"):
        parse_headers(headers)


def test_other_headers_may_repeat_and_hold_anything() -> None:
    headers = [*_headers(), ("traceparent", b"\xff\xfe"), ("traceparent", None)]
    assert parse_headers(headers).id == EVENT_ID


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("ce_id", b"", "ce_id is empty"),
        ("ce_id", None, "ce_id is empty"),
        ("ce_type", b"", "ce_type is empty"),
        ("ce_type", b"org.\xff", "ce_type is not UTF-8"),
        ("ce_source", b"\xc3", "ce_source is not UTF-8"),
        ("ce_time", b"yesterday", "ce_time is not an ISO 8601 timestamp"),
        ("ce_time", b"", "ce_time is not an ISO 8601 timestamp"),
        ("ce_minorversion", b"one", "ce_minorversion is not a non-negative integer"),
        ("ce_minorversion", b"-1", "ce_minorversion is not a non-negative integer"),
        ("ce_minorversion", b"\xd9\xa3", "ce_minorversion is not a non-negative integer"),
    ],
)
def test_bad_header_value(name: str, value: bytes | None, complaint: str) -> None:
    with pytest.raises(BadHeaderError, match=complaint):
        parse_headers(_headers(**{name: value}))


def test_null_optional_headers_are_absent() -> None:
    metadata = parse_headers(_headers(ce_time=None, sourcehost=None, ce_minorversion=None))
    assert (metadata.time, metadata.sourcehost, metadata.minorversion) == (None, None, None)


def test_minorversion_is_an_int() -> None:
    assert parse_headers(_headers(ce_minorversion=b"12")).minorversion == 12
