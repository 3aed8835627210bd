"""Round trip of events written by openedx-events 10.5.0: Kafka + Schema Registry → decoder.

10.5.0 is what pip installs on Python 3.11, so deployments on 3.11 send what it writes. Its
producer code runs in ``.venv-oe10`` (``make venv-oe10``): ``tests/legacy/produce.py`` writes
random payloads of every event type 10.5.0 can serialize with 10.5.0's own classes and
``serialize_event_data_to_bytes``, with the schema strings 10.5.0 registers and its headers. This
test registers those schemas under ``<topic>-<type>.CloudEvent``, frames the payloads with the
registry's ids, sends them through one real topic, and decodes them with a registry-backed
:class:`~sink.decoder.Decoder` built on our 11.2.0-shaped classes.

What differs between 10.5.0 and 11.x on the wire, and why nothing of it is decoded here:

- Seven event types are not serializable in 10.5.0 (``NOT_SERIALIZABLE_IN_10_5``): their classes
  have bare ``dict`` fields (or ORA's list of dicts), which its serializer refuses. 10.6.0 made
  them serializable. That includes the forum events' ``DiscussionThreadData``, whose 10.5.0 shape
  (``id: int``, no nullable fields) 10.6.0 changed: no 10.5.0 producer can send it.
- For the 39 others, 10.5.0's classes and schema strings equal 11.2.0's (the writer schema
  resolves to our reader schema as is).
"""

from __future__ import annotations

import base64
import functools
import json
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from sink import catalog
from sink.decoder import Decoder
from tests import producer
from tests.integration.conftest import REPO, Services, consume_all
from tests.legacy.produce import jsonable

LEGACY_VENV = REPO / ".venv-oe10"
LEGACY_PYTHON = LEGACY_VENV / "bin" / "python"
LEGACY_VERSION = "10.5.0"
EVENTS_PER_TYPE = 20
GENERATOR_TIMEOUT_S = 240.0

# Serializable from 10.6.0 on; 10.5.0 refuses to derive their schemas.
NOT_SERIALIZABLE_IN_10_5 = {
    "org.openedx.learning.discussions.configuration.changed.v1",
    "org.openedx.learning.user.notification.requested.v1",
    "org.openedx.learning.course.notification.requested.v1",
    "org.openedx.learning.forum.thread.created.v1",
    "org.openedx.learning.forum.thread.response.created.v1",
    "org.openedx.learning.forum.thread.response.comment.created.v1",
    "org.openedx.learning.ora.submission.created.v1",
}

# Its namespace (the event type) holds a "-", which is not a valid Avro name: registries parse
# schemas strictly and refuse it (HTTP 422), so edx-event-bus-kafka cannot send this event type.
UNREGISTRABLE = {"org.openedx.enterprise.subsidy.redemption-reversed.v1"}


@attrs.frozen
class LegacyOutput:
    """What ``tests/legacy/produce.py`` printed: its summary line and its event lines."""

    summary: dict[str, Any]
    events: list[dict[str, Any]]


def _run_generator(python: Path, count: int) -> LegacyOutput:
    if not python.exists():
        pytest.fail(
            f"{python} is missing: run `make venv-oe10` (Python 3.11 with openedx-events"
            f" {LEGACY_VERSION}, the second test producer; `make test` builds it)",
            pytrace=False,
        )
    command = [str(python), "-m", "tests.legacy.produce", "--count", str(count)]
    completed = subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=GENERATOR_TIMEOUT_S,
    )
    assert completed.returncode == 0, f"{' '.join(command)} failed:\n{completed.stderr}"
    summary, *events = (json.loads(line) for line in completed.stdout.splitlines())
    assert summary["kind"] == "summary"
    assert all(line["kind"] == "event" for line in events)
    return LegacyOutput(summary, events)


@functools.cache
def _legacy() -> LegacyOutput:
    """The 10.5.0 generator's output (run once; a missing venv fails each test that needs it)."""
    return _run_generator(LEGACY_PYTHON, EVENTS_PER_TYPE)


def test_missing_legacy_venv_fails_and_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"run `make venv-oe10`"):
        _run_generator(tmp_path / "bin" / "python", 1)


def test_the_legacy_producer_is_10_5_0_and_serializes_all_but_seven_types() -> None:
    legacy = _legacy()
    assert legacy.summary["openedx_events"] == LEGACY_VERSION
    assert legacy.summary["python"].startswith("3.11.")
    assert set(legacy.summary["unserializable"]) == NOT_SERIALIZABLE_IN_10_5
    expected = [t for t in catalog.event_types() if t not in NOT_SERIALIZABLE_IN_10_5]
    assert legacy.summary["serializable"] == expected
    per_type = Counter(line["event_type"] for line in legacy.events)
    assert per_type == dict.fromkeys(expected, EVENTS_PER_TYPE)
    for line in legacy.events:
        assert dict(line["headers"])["sourcelib"] == LEGACY_VERSION


def test_10_5_0_registers_the_schemas_the_main_producer_registers() -> None:
    """For the types both can serialize, 10.5.0's schema strings equal the main venv's 11.x ones."""
    schemas = {line["event_type"]: line["schema"] for line in _legacy().events}
    for event_type, schema in schemas.items():
        assert schema == producer.schema_string(event_type), event_type


def _register(registry: SchemaRegistryClient, topic: str, legacy: LegacyOutput) -> dict[str, int]:
    """Register the 10.5.0 schema strings; assert only the known ones are refused."""
    schema_ids: dict[str, int] = {}
    refused: dict[str, int] = {}
    schemas = {line["event_type"]: line["schema"] for line in legacy.events}
    for event_type, schema in schemas.items():
        subject = producer.subject(topic, event_type)
        try:
            schema_ids[event_type] = registry.register_schema(subject, Schema(schema, "AVRO"))
        except SchemaRegistryError as error:
            refused[event_type] = error.http_status_code
    assert refused == dict.fromkeys(UNREGISTRABLE, 422)
    return schema_ids


def _produce(
    services: Services, topic: str, legacy: LegacyOutput, schema_ids: dict[str, int]
) -> dict[str, dict[str, Any]]:
    """Send every registrable event as edx-event-bus-kafka would; return them by ``ce_id``."""
    sender = Producer({"bootstrap.servers": services.bootstrap_servers, "linger.ms": 5})
    sent: dict[str, dict[str, Any]] = {}
    for line in legacy.events:
        if (schema_id := schema_ids.get(line["event_type"])) is None:
            continue
        value = producer.frame(schema_id, base64.b64decode(line["payload"]))
        headers = [(name, text.encode()) for name, text in line["headers"]]
        sender.produce(topic, value, headers=headers)
        sender.poll(0)
        sent[dict(line["headers"])["ce_id"]] = line
    assert sender.flush(30) == 0, "messages not delivered"
    return sent


def _typed(plain: Any) -> str:
    return json.dumps(plain, sort_keys=True)


def test_10_5_0_events_round_trip_through_kafka_and_the_registry(
    services: Services,
    registry_client: SchemaRegistryClient,
    make_topic: Callable[..., str],
    group_id: str,
) -> None:
    legacy = _legacy()
    topic = make_topic("openedx-legacy-10-5")
    schema_ids = _register(registry_client, topic, legacy)
    sent = _produce(services, topic, legacy, schema_ids)
    assert len(sent) == len(legacy.events) - EVENTS_PER_TYPE * len(UNREGISTRABLE)
    received = consume_all(services, topic, group_id, len(sent))
    assert len(received) == len(sent)

    decoder = Decoder(registry_client)
    covered: set[str] = set()
    for message in received:
        event = decoder.decode_message(message)
        original = sent[event.event_id]
        assert event.event_type == original["event_type"]
        assert event.schema_id == schema_ids[event.event_type]
        assert event.metadata.sourcelib == LEGACY_VERSION
        expected, actual = original["comparable"], jsonable(producer.comparable(event.data))
        assert actual == expected, (
            f"{event.event_type}: {producer.first_difference(expected, actual)}"
        )
        # `==` takes True for 1 and 1.0 for 1: the JSON texts also tell the types apart.
        assert _typed(actual) == _typed(expected), event.event_type
        covered.add(event.event_type)
    assert covered == set(legacy.summary["serializable"]) - UNREGISTRABLE
    assert len(covered) == len(catalog.event_types()) - len(NOT_SERIALIZABLE_IN_10_5) - 1
