"""Smoke tests proving the local services are real: broker, registry and database round trips."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.schema_registry import (
    Schema,
    SchemaRegistryClient,
    topic_record_subject_name_strategy,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from sink.avro_schema import canonical_schema
from sink.catalog import spec_for

from .conftest import Services

ENROLLMENT_CREATED = "org.openedx.learning.course.enrollment.created.v1"


def consume(
    services: Services, topic: str, group: str, expected: int, timeout_s: float = 30.0
) -> tuple[Consumer, list[Message]]:
    """Read `expected` messages from `topic` as a member of `group` (manual commits)."""
    consumer = Consumer(
        {
            "bootstrap.servers": services.bootstrap_servers,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages: list[Message] = []
    for _ in range(int(timeout_s * 10)):
        message = consumer.poll(0.1)
        if message is None:
            if len(messages) >= expected:
                break
            continue
        if message.error():
            raise KafkaException(message.error())
        messages.append(message)
    return consumer, messages


def produce(services: Services, topic: str, values: list[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": services.bootstrap_servers, "acks": "all"})
    for key, value in values:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


def value_of(message: Message) -> bytes:
    value = message.value()
    assert value is not None
    return value


def test_consumer_group_commits_offsets_and_resumes(
    services: Services, make_topic: Callable[..., str], group_id: str
) -> None:
    topic = make_topic("smoke", partitions=3)
    first = [(f"k{i}".encode(), f"v{i}".encode()) for i in range(30)]
    produce(services, topic, first)

    consumer, messages = consume(services, topic, group_id, expected=len(first))
    assert sorted(value_of(m) for m in messages) == sorted(v for _, v in first)
    consumer.commit(asynchronous=False)
    committed = consumer.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
    consumer.close()
    assert sum(tp.offset for tp in committed) == len(first)

    second = [(b"late", f"late{i}".encode()) for i in range(5)]
    produce(services, topic, second)
    consumer, messages = consume(services, topic, group_id, expected=len(second))
    consumer.close()
    assert sorted(value_of(m) for m in messages) == sorted(v for _, v in second)


def enrollment_record() -> dict[str, Any]:
    return {
        "enrollment": {
            "user": {
                "id": 42,
                "is_active": True,
                "pii": {"username": "learner", "email": "l@example.com", "name": "L"},
            },
            "course": {
                "course_key": "course-v1:edX+DemoX+Demo_Course",
                "display_name": "Demo",
                "start": None,
                "end": None,
            },
            "mode": "audit",
            "is_active": True,
            "creation_date": "2026-11-27T04:04:00.367997+00:00",
            "created_by": None,
        }
    }


def test_avro_round_trip_with_open_edx_serializer_settings(
    services: Services, registry_client: SchemaRegistryClient, make_topic: Callable[..., str]
) -> None:
    """Serialize as edx-event-bus-kafka does: TopicRecordNameStrategy, auto-registration on."""
    topic = make_topic("learning-course-lifecycle")
    schema = json.dumps(canonical_schema(spec_for(ENROLLMENT_CREATED)))
    serializer = AvroSerializer(
        registry_client,
        schema,
        conf={
            "subject.name.strategy": topic_record_subject_name_strategy,
            "auto.register.schemas": True,
        },
    )
    context = SerializationContext(topic, MessageField.VALUE)
    value = serializer(enrollment_record(), context)
    assert value is not None
    assert value[0] == 0  # Confluent framing: magic byte, then a 4-byte schema id

    subject = f"{topic}-{ENROLLMENT_CREATED}.CloudEvent"
    registered = registry_client.get_latest_version(subject)
    assert int.from_bytes(value[1:5], "big") == registered.schema_id

    produce(services, topic, [(b"key", value)])
    consumer, messages = consume(services, topic, f"g-{uuid.uuid4().hex}", expected=1)
    consumer.close()
    # The schema id in the framing is all a reader needs. Without a naming strategy,
    # confluent-kafka (2.16 here) first asks the registry for the topic's "associations", an
    # endpoint Confluent's registry has and Apicurio lacks: it answers 404, now and then never.
    deserializer = AvroDeserializer(
        registry_client, conf={"subject.name.strategy": topic_record_subject_name_strategy}
    )
    assert deserializer(messages[0].value(), context) == enrollment_record()


def test_registry_enforces_backward_compatibility(
    registry_client: SchemaRegistryClient, unique: Callable[[str], str]
) -> None:
    subject = unique("compat") + "-value"
    v1 = {"type": "record", "name": "R", "fields": [{"name": "a", "type": "string"}]}
    compatible = {
        "type": "record",
        "name": "R",
        "fields": [
            {"name": "a", "type": "string"},
            {"name": "b", "type": ["null", "long"], "default": None},
        ],
    }
    incompatible = {
        "type": "record",
        "name": "R",
        "fields": [{"name": "a", "type": "string"}, {"name": "b", "type": "long"}],
    }
    registry_client.register_schema(subject, Schema(json.dumps(v1), "AVRO"))
    registry_client.register_schema(subject, Schema(json.dumps(compatible), "AVRO"))
    with pytest.raises(SchemaRegistryError) as rejected:
        registry_client.register_schema(subject, Schema(json.dumps(incompatible), "AVRO"))
    assert rejected.value.http_status_code == 409
    assert len(registry_client.get_versions(subject)) == 2


def test_postgres_writes_and_reads_a_row(pg_engine: sa.Engine, pg_schema: str) -> None:
    with pg_engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE smoke (id uuid PRIMARY KEY, payload jsonb)"))
        row_id = uuid.uuid4()
        connection.execute(
            sa.text("INSERT INTO smoke VALUES (:id, CAST(:payload AS jsonb))"),
            {"id": row_id, "payload": json.dumps({"hello": "world"})},
        )
    with pg_engine.connect() as connection:
        schema = connection.execute(sa.text("SELECT current_schema()")).scalar_one()
        row = connection.execute(sa.text("SELECT id, payload FROM smoke")).one()
    assert schema == pg_schema
    assert row == (row_id, {"hello": "world"})


def test_services_script_reports_every_service_ready() -> None:
    script = Path(__file__).resolve().parents[2] / "scripts" / "services"
    result = subprocess.run([str(script), "status"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["kafka", "ready"],
        ["registry", "ready"],
        ["postgres", "ready"],
    ]
