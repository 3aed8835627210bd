"""Round trip through the real services: openedx-events → Kafka + Schema Registry → decoder.

Random upstream payloads of every serializable event type are produced the way
edx-event-bus-kafka produces them (schemas auto-registered under ``<topic>-<type>.CloudEvent``,
real schema ids in the framing), all into one topic, consumed back with a plain consumer and
decoded with a :class:`~sink.decoder.Decoder` that fetches writer schemas from the registry.
"""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from sink.decoder import DecodedEvent, Decoder
from tests import producer
from tests.integration.conftest import Services, consume_all

EVENTS_PER_TYPE = 20

# Its namespace (the event type) holds a "-", which is not a valid Avro name: registries parse
# schemas strictly and refuse it (HTTP 422), so edx-event-bus-kafka cannot send this event type.
UNREGISTRABLE = {"org.openedx.enterprise.subsidy.redemption-reversed.v1"}


def _registrable_event_types(sender: producer.OpenEdxProducer, topic: str) -> list[str]:
    """Register every serializable event type's schema; assert only the known ones are refused."""
    accepted: list[str] = []
    refused: dict[str, int] = {}
    for event_type in producer.serializable_event_types():
        try:
            sender.schema_id(topic, event_type)
        except SchemaRegistryError as error:
            refused[event_type] = error.http_status_code
        else:
            accepted.append(event_type)
    assert refused == dict.fromkeys(UNREGISTRABLE, 422)
    return accepted


def _produce_all(
    services: Services, registry: SchemaRegistryClient, topic: str
) -> dict[str, producer.Message]:
    """Produce ``EVENTS_PER_TYPE`` random events of every type; return them by ``ce_id``."""
    sender = producer.OpenEdxProducer(services.bootstrap_servers, registry)
    sent: dict[str, producer.Message] = {}
    for event_type in _registrable_event_types(sender, topic):
        for data in producer.samples(producer.upstream_data(event_type), EVENTS_PER_TYPE):
            message = sender.send(topic, event_type, data, key=f"key-{len(sent)}")
            sent[message.event_id] = message
    sender.flush()
    return sent


def test_every_event_type_round_trips_through_kafka_and_the_registry(
    services: Services,
    registry_client: SchemaRegistryClient,
    make_topic: Callable[..., str],
    group_id: str,
) -> None:
    topic = make_topic("openedx-decoder")
    sent = _produce_all(services, registry_client, topic)
    received = consume_all(services, topic, group_id, len(sent))
    assert len(received) == len(sent)

    decoder = Decoder(registry_client)
    decoded: list[DecodedEvent] = [decoder.decode_message(message) for message in received]
    assert {event.event_id for event in decoded} == set(sent)
    assert (
        len({event.event_type for event in decoded}) == len(producer.serializable_event_types()) - 1
    )
    for event in decoded:
        original = sent[event.event_id]
        assert event.event_type == original.event_type
        assert event.schema_id == int.from_bytes(original.value[1:5], "big")
        assert event.location.topic == topic
        producer.assert_same(original.data, event.data)


def test_schema_ids_come_from_the_registry(
    registry_client: SchemaRegistryClient, make_topic: Callable[..., str]
) -> None:
    """The ids in the framing are the registry's, and the registry serves the producer's schema."""
    topic = make_topic("openedx-ids")
    event_type = producer.serializable_event_types()[0]
    schema_id = producer.register(registry_client, topic, event_type)
    assert producer.register(registry_client, topic, event_type) == schema_id
    registered = registry_client.get_schema(schema_id)
    assert registered.schema_type in (None, "AVRO")
    assert registered.schema_str is not None
    assert "CloudEvent" in registered.schema_str
