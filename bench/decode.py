"""Decode rate of :class:`sink.decoder.Decoder`, one core: ``python -m bench.decode``.

Messages are built and serialized by openedx-events beforehand, so only decoding is timed:

* CourseEnrollmentData events (``course.enrollment.created``): 2,000 messages over 50 courses,
  with distinct users and times, as a busy LMS sends them;
* a mix of every event type openedx-events can serialize (random Hypothesis payloads);
* the same enrollments with a course key never seen before in every message (cold key cache).

Each set is decoded by a decoder without registry (local schemas) and by one with an in-memory
``mock://`` registry (writer schemas fetched once, then cached), next to ``fastavro`` alone as the
baseline: ``schemaless_reader`` with the writer schema only, and with writer and reader schemas
(schema resolution).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import random
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from opaque_keys.edx.keys import CourseKey
from openedx_events.learning.data import (
    CourseData,
    CourseEnrollmentData,
    UserData,
    UserPersonalData,
)

from sink import catalog
from sink.avro_schema import canonical_schema, reader_schema
from sink.decoder import Decoder
from sink.errors import MessageLocation
from tests import producer

ENROLLMENT = "org.openedx.learning.course.enrollment.created.v1"
LOCATION = MessageLocation("bench", 0, 0)
SCHEMA_ID = 1

Messages = list[tuple[bytes, list[tuple[str, bytes]], str]]


def _enrollment(rng: random.Random, course_key: str) -> CourseEnrollmentData:
    user_id = rng.randrange(1, 10_000_000)
    user = UserData(
        id=user_id,
        is_active=rng.random() < 0.95,
        pii=UserPersonalData(
            username=f"learner{user_id}", email=f"learner{user_id}@example.org", name="A Learner"
        ),
    )
    start = datetime(2026, 1, 5, tzinfo=UTC)
    course = CourseData(
        course_key=CourseKey.from_string(course_key),
        display_name=f"Course {course_key}",
        start=start,
        end=start + timedelta(days=90),
    )
    return CourseEnrollmentData(
        user=user,
        course=course,
        mode=rng.choice(["audit", "verified", "honor"]),
        is_active=True,
        creation_date=start + timedelta(seconds=rng.randrange(10_000_000), microseconds=1),
        created_by=None if rng.random() < 0.9 else user,
    )


def enrollment_messages(count: int, courses: int, seed: int = 1) -> Messages:
    """``count`` enrollment messages over ``courses`` distinct course keys (0: all distinct)."""
    rng = random.Random(seed)  # noqa: S311 - benchmark data
    messages: Messages = []
    for index in range(count):
        course = index if courses == 0 else rng.randrange(courses)
        key = f"course-v1:Org{course % 7}+C{course}+{2026 + course % 3}"
        sent = producer.message(ENROLLMENT, _enrollment(rng, key), SCHEMA_ID)
        messages.append((sent.value, sent.headers, ENROLLMENT))
    return messages


def mixed_messages(per_type: int) -> Messages:
    """``per_type`` random messages of every serializable event type, interleaved."""
    by_type = [
        [
            (producer.message(event_type, data, SCHEMA_ID), event_type)
            for data in producer.samples(producer.upstream_data(event_type), per_type)
        ]
        for event_type in producer.serializable_event_types()
    ]
    rng = random.Random(2)  # noqa: S311 - benchmark data
    mixed = [
        (sent.value, sent.headers, event_type) for group in by_type for sent, event_type in group
    ]
    rng.shuffle(mixed)
    return mixed


def _mock_registry(event_types: Sequence[str]) -> tuple[Any, dict[str, int]]:
    registry = SchemaRegistryClient.new_client({"url": "mock://bench"})
    ids = {
        event_type: registry.register_schema(
            producer.subject("bench", event_type),
            Schema(producer.schema_string(event_type), "AVRO"),
        )
        for event_type in event_types
    }
    return registry, ids


def _reframed(messages: Messages, ids: dict[str, int]) -> Messages:
    """The messages with the schema id the mock registry gave their event type."""
    return [
        (producer.frame(ids[event_type], value[5:]), headers, event_type)
        for value, headers, event_type in messages
    ]


def _rate(run: Callable[[], None], count: int, repeat: int) -> float:
    """Best messages per second over ``repeat`` runs of ``run`` (which handles ``count``)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return count / best


def _decoding(decoder: Decoder, messages: Messages) -> Callable[[], None]:
    def run() -> None:
        decode = decoder.decode
        for value, headers, _ in messages:
            decode(value, headers, LOCATION)

    return run


def _fastavro_alone(messages: Messages, *, resolve: bool) -> Callable[[], None]:
    schemas = {}
    for event_type in {event_type for _, _, event_type in messages}:
        spec = catalog.spec_for(event_type)
        writer = fastavro.parse_schema(json.loads(json.dumps(canonical_schema(spec))))
        reader = fastavro.parse_schema(json.loads(json.dumps(reader_schema(spec))))
        schemas[event_type] = (writer, reader if resolve else None)
    prepared = [(value, *schemas[event_type]) for value, _, event_type in messages]

    def run() -> None:
        read = fastavro.schemaless_reader
        for value, writer, reader in prepared:
            buffer = io.BytesIO(value)
            buffer.seek(5)
            read(buffer, writer, reader)

    return run


def _report(name: str, messages: Messages, repeat: int) -> None:
    event_types = sorted({event_type for _, _, event_type in messages})
    registry, ids = _mock_registry(event_types)
    registered = _reframed(messages, ids)
    local, with_registry = Decoder(), Decoder(registry)
    rows = [
        ("fastavro.schemaless_reader, writer only", _fastavro_alone(messages, resolve=False)),
        ("fastavro.schemaless_reader, writer+reader", _fastavro_alone(messages, resolve=True)),
        ("Decoder, local schemas", _decoding(local, messages)),
        ("Decoder, mock registry (cached writer)", _decoding(with_registry, registered)),
    ]
    _write(f"\n{name}: {len(messages)} messages, {len(event_types)} event types\n")
    for label, run in rows:
        _write(f"  {label:<44} {_rate(run, len(messages), repeat):>10,.0f} msgs/s\n")


def _report_cold_keys(count: int) -> None:
    messages = enrollment_messages(count, courses=0, seed=3)
    decoder = Decoder()
    # warm the schema plan only: the first message's key is the only one parsed beforehand
    decoder.decode(*messages[0][:2], LOCATION)
    rate = _rate(_decoding(decoder, messages[1:]), count - 1, 1)
    _write(f"\nenrollments, every course key new (cold key cache): {rate:>10,.0f} msgs/s\n")


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> None:
    """Print decode rates."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (best kept)")
    parser.add_argument("--enrollments", type=int, default=2000, help="enrollment messages")
    parser.add_argument("--per-type", type=int, default=20, help="messages per type in the mix")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the local decoders' warning is expected here
    _write(f"python {sys.version.split()[0]}, fastavro {fastavro.__version__}, one core\n")
    _report(
        "CourseEnrollmentData (50 courses)", enrollment_messages(args.enrollments, 50), args.repeat
    )
    _report("mix of every event type", mixed_messages(args.per_type), args.repeat)
    _report_cold_keys(args.enrollments)


if __name__ == "__main__":
    main()
