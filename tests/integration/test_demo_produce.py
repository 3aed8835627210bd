"""`sink demo produce` against the real Kafka and Schema Registry, then `sink run` into PostgreSQL.

The demo's messages must be what Open edX sends: the sink decodes every one with the schemas the
registry holds (0 errors), and stores every event once (0 dead letters).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from sink import catalog
from sink.config import Settings
from sink.decoder import Decoder
from sink.demo import traffic, wire
from sink.demo.produce import produce
from tests.integration.conftest import CONSUME_DEADLINE_S, Services
from tests.integration.sinkproc import SinkRunner, sasl_settings, stored_event_ids

EVENTS = 3000
SEED = 11
START = datetime(2026, 1, 5, tzinfo=UTC)


@pytest.fixture
def prefix(
    unique: Callable[[str], str], kafka_admin: AdminClient, registry_client: SchemaRegistryClient
) -> Iterator[str]:
    """A topic prefix of this test's own; its topics and registry subjects are dropped after."""
    name = unique("demo")
    yield name
    topics = [wire.full_topic(topic, name) for topic in wire.TOPICS]
    existing = kafka_admin.list_topics(timeout=10).topics
    if doomed := [topic for topic in topics if topic in existing]:
        for future in kafka_admin.delete_topics(doomed, operation_timeout=30).values():
            future.result(timeout=30)
    for subject in registry_client.get_subjects():
        if subject.startswith(f"{name}-"):
            registry_client.delete_subject(subject)
            registry_client.delete_subject(subject, permanent=True)


def _consume(services: Services, topics: list[str], count: int) -> list[Any]:
    """Every message of ``topics`` from the beginning (or what arrives before the deadline)."""
    consumer = Consumer(
        {
            "bootstrap.servers": services.bootstrap_servers,
            "group.id": f"probe-{topics[0]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(topics)
    received: list[Any] = []
    deadline = time.monotonic() + CONSUME_DEADLINE_S
    try:
        while len(received) < count and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=1.0):
                assert message.error() is None, message.error()
                received.append(message)
    finally:
        consumer.close()
    return received


def test_demo_events_decode_with_the_registry_and_land_once(
    services: Services,
    prefix: str,
    pg_schema: str,
    pg_engine: sa.Engine,
    group_id: str,
    registry_client: SchemaRegistryClient,
    kafka_admin: AdminClient,
    tmp_path: Path,
) -> None:
    topics = [wire.full_topic(topic, prefix) for topic in wire.TOPICS]
    sink = SinkRunner(services, pg_schema, group_id, tuple(topics), tmp_path)
    arguments = ("--events", str(EVENTS), "--seed", str(SEED), "--start", START.date().isoformat())
    output = sink.run("demo", "produce", *arguments, SINK_TOPIC_PREFIX=prefix)
    expected = {str(event.event_id): event for event in traffic.generate(SEED, EVENTS, START)}
    assert f"produced {EVENTS} events" in output
    metadata = kafka_admin.list_topics(timeout=10).topics
    assert all(len(metadata[topic].partitions) == 3 for topic in topics)

    messages = _consume(services, topics, EVENTS)
    decoder = Decoder(registry_client)
    decoded = [decoder.decode_message(message) for message in messages]  # raises on any error
    assert sorted(event.event_id for event in decoded) == sorted(expected)
    for event in decoded:
        original = expected[event.event_id]
        assert event.data == original.data
        assert event.location.topic == wire.full_topic(
            wire.ROUTES[original.event_type].topic, prefix
        )
    assert Counter(e.event_type for e in decoded) == Counter(
        e.event_type for e in expected.values()
    )
    partitions_of_key: dict[tuple[str, bytes], set[int]] = {}
    for message in messages:
        partitions_of_key.setdefault((message.topic(), message.key()), set()).add(
            message.partition()
        )
    assert all(len(partitions) == 1 for partitions in partitions_of_key.values())
    for event in decoded[:50]:
        registered = registry_client.get_schema(event.schema_id).schema_str
        assert registered is not None
        assert json.loads(registered) == json.loads(wire.value_schema(event.event_type))

    sink.run("migrate")
    sink.run("run", "--stop-at-end")
    tables = sorted({catalog.spec_for(event_type).table for event_type in wire.ROUTES})
    stored = stored_event_ids(pg_engine, tables)
    assert sorted(stored) == sorted(expected)
    with pg_engine.connect() as connection:
        letters = connection.execute(sa.text("SELECT count(*) FROM sink_dead_letter")).scalar()
    assert letters == 0


def test_rate_paces_the_publishing(services: Services, prefix: str) -> None:
    settings = Settings(
        kafka_bootstrap_servers=services.bootstrap_servers,
        schema_registry_url=services.registry_url,
        topic_prefix=prefix,
    )
    summary = produce(settings, traffic.generate(5, 200, START), rate=100.0)
    assert summary.events == 200
    assert 1.9 <= summary.seconds < 10
    assert sum(summary.per_topic.values()) == 200
    assert all(topic.startswith(f"{prefix}-") for topic in summary.per_topic)


def test_kafka_refusing_the_login_is_one_clear_line(
    services: Services,
    pg_schema: str,
    group_id: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    sink = SinkRunner(services, pg_schema, group_id, (), tmp_path)
    output = sink.refused(
        "demo", "produce", "--events", "10",
        SINK_TOPIC_PREFIX=prefix, **sasl_settings("not-the-password"),
    )  # fmt: skip
    last = output.strip().splitlines()[-1]
    assert last.startswith("error: Kafka refused the sink"), last
    assert "SASL authentication error" in last
    assert "check the SINK_KAFKA_* settings" in last
    assert "not-the-password" not in output
