"""Publishing demo events to Kafka, the way an Open edX deployment does.

:func:`produce` creates the demo's topics when missing (:data:`DEFAULT_PARTITIONS` partitions,
the broker's replication factor), registers each schema in the Schema Registry under the subjects
edx-event-bus-kafka uses, encodes every event with :class:`sink.demo.wire.Encoder`, and sends it,
paced to ``rate`` events per second if asked. It waits for every delivery report and fails when a
message was not delivered. Connection settings are the sink's own (:class:`sink.config.Settings`):
bootstrap servers and librdkafka options, registry URL and credentials, topic prefix.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Final

import attrs
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from confluent_kafka.schema_registry import Schema

from sink.config import Settings, env_name
from sink.decoder import registry_client_for
from sink.demo.traffic import DemoEvent
from sink.demo.wire import TOPICS, Encoder, WireMessage, full_topic
from sink.errors import ConfigError, RegistryAccessError, ServiceUnavailableError, SinkError
from sink.kafka_errors import raise_if_refused

DEFAULT_PARTITIONS: Final = 3
METADATA_TIMEOUT_S: Final = 10.0
FLUSH_TIMEOUT_S: Final = 120.0
#: Producer settings of our own; the operator's ``SINK_KAFKA_*`` options win.
PRODUCER_DEFAULTS: Final = {"linger.ms": "20"}


class DeliveryError(SinkError):
    """Kafka did not take every message: the message says how many and the first reason."""


class RegistryRefusedError(ConfigError):
    """The Schema Registry refused a schema (incompatible with what a subject holds)."""


@attrs.frozen
class Summary:
    """What :func:`produce` sent.

    Attributes:
        events: Messages delivered.
        seconds: Time from the first send to the last delivery report.
        per_topic: Messages per topic.
        per_type: Messages per event type.
        first: Time of the first event, if any.
        last: Time of the last event, if any.
    """

    events: int
    seconds: float
    per_topic: Mapping[str, int]
    per_type: Mapping[str, int]
    first: datetime | None
    last: datetime | None

    def line(self) -> str:
        """One line: totals, rate, the timeline covered, then counts per topic and per type."""
        rate = self.events / self.seconds if self.seconds > 0 else 0.0
        span = "" if self.first is None or self.last is None else (
            f" from {self.first:%Y-%m-%d %H:%M} to {self.last:%Y-%m-%d %H:%M} UTC"
        )  # fmt: skip
        topics = ", ".join(f"{topic} {count}" for topic, count in _by_count(self.per_topic))
        types = ", ".join(f"{_short(name)} {count}" for name, count in _by_count(self.per_type))
        return (
            f"produced {self.events} events in {self.seconds:.1f} s ({rate:,.0f}/s){span};"
            f" topics: {topics}; types: {types}"
        )


def _by_count(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _short(event_type: str) -> str:
    """The event type without ``org.openedx.<subdomain>.`` and the version."""
    return event_type.split(".", 3)[3].rsplit(".", 1)[0]


class RegistrySchemaIds:
    """Schema ids from the Schema Registry, registering each schema once (as producers do).

    Args:
        client: A ``SchemaRegistryClient`` (see :func:`sink.decoder.registry_client`).
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._ids: dict[tuple[str, str], int] = {}
        self.subjects: list[str] = []

    def schema_id(self, subject: str, schema: str) -> int:
        """The id of ``schema`` under ``subject``, registered on first use.

        Raises:
            RegistryAccessError: The registry refuses the credentials, or the URL is not one.
            RegistryRefusedError: The subject holds an incompatible schema.
            ServiceUnavailableError: The registry cannot be reached.
        """
        if (known := self._ids.get((subject, schema))) is None:
            known = self._ids[subject, schema] = self._register(subject, schema)
            if subject not in self.subjects:
                self.subjects.append(subject)
        return known

    def _register(self, subject: str, schema: str) -> int:
        try:
            return int(self._client.register_schema(subject, Schema(schema, "AVRO")))
        except Exception as error:  # sorted into the sink's errors below
            raise _registry_error(subject, error) from error


def _registry_error(subject: str, error: Exception) -> SinkError:
    status = getattr(error, "http_status_code", None)
    setting = env_name("schema_registry_url")
    if status in (401, 403):
        auth = env_name("schema_registry_basic_auth")
        return RegistryAccessError(f"schema registry refused access (HTTP {status}); check {auth}")
    if status == 404:
        return RegistryAccessError(f"schema registry URL answers 404: check {setting}: {error}")
    if status in (409, 422):
        return RegistryRefusedError(
            f"schema registry refused the schema of subject {subject}: {error}; the topic holds"
            f" other data: choose another topic prefix ({env_name('topic_prefix')})"
        )
    return ServiceUnavailableError(f"schema registry unavailable ({setting}): {error}")


def kafka_config(settings: Settings) -> dict[str, Any]:
    """Producer settings: bootstrap servers, our defaults, then the operator's options."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        **PRODUCER_DEFAULTS,
        **settings.kafka_options,
        # As the sink's consumer: refused settings raise (from poll), logs go through logging.
        "error_cb": raise_if_refused,
        "logger": logging.getLogger("sink.kafka"),
    }


def ensure_topics(admin: AdminClient, topics: Iterable[str], partitions: int) -> list[str]:
    """Create the ``topics`` that do not exist yet; return those created.

    Raises:
        ConfigError: Kafka refused the settings (when ``admin`` has :func:`raise_if_refused` as
            its ``error_cb``, as :func:`kafka_config` sets).
        ServiceUnavailableError: The broker did not answer.
        SinkError: The broker refused to create a topic.
    """
    try:
        existing = admin.list_topics(timeout=METADATA_TIMEOUT_S).topics
    except KafkaException as error:
        admin.poll(0)  # serves the client's errors: a refused login raises here
        servers = env_name("kafka_bootstrap_servers")
        raise ServiceUnavailableError(f"Kafka did not answer ({servers}): {error}") from None
    missing = [topic for topic in topics if topic not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(topic, partitions, -1) for topic in missing], operation_timeout=30
    )
    for topic, future in futures.items():
        try:
            future.result(timeout=60)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise SinkError(f"cannot create topic {topic}: {error}") from None
    return missing


class Pacer:
    """Holds sending back to ``rate`` messages per second (no limit when ``rate`` is None).

    Args:
        rate: Messages per second, or None.
        wait: Waits up to the given seconds (the producer's ``poll``, which serves delivery
            reports meanwhile).
        clock: Monotonic clock, in seconds.
    """

    def __init__(
        self,
        rate: float | None,
        wait: Callable[[float], object],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self._rate = rate
        self._wait = wait
        self._clock = clock
        self._start: float | None = None

    def pace(self, sent: int) -> None:
        """Return once the message after ``sent`` others is due."""
        if self._rate is None:
            return
        if self._start is None:
            self._start = self._clock()
        due = self._start + sent / self._rate
        while (delay := due - self._clock()) > 0:
            self._wait(delay)


@attrs.define
class _Deliveries:
    """Counts delivery reports; keeps the first error (never a payload)."""

    delivered: int = 0
    failed: int = 0
    first_error: str | None = None

    def report(self, error: Any, _message: Any) -> None:
        if error is None:
            self.delivered += 1
            return
        self.failed += 1
        if self.first_error is None:
            self.first_error = str(error)


def produce(
    settings: Settings,
    events: Iterable[DemoEvent],
    *,
    rate: float | None = None,
    partitions: int = DEFAULT_PARTITIONS,
) -> Summary:
    """Publish ``events`` to Kafka in the Open edX wire format; return what was sent.

    Raises:
        ConfigError: No schema registry is configured, or it refuses the settings.
        ServiceUnavailableError: Kafka or the registry cannot be reached.
        DeliveryError: Some messages were not delivered.
    """
    encoder = Encoder(RegistrySchemaIds(_registry(settings)), settings.topic_prefix)
    config = kafka_config(settings)
    ensure_topics(
        AdminClient(config), [full_topic(t, settings.topic_prefix) for t in TOPICS], partitions
    )
    producer = Producer(config)
    deliveries = _Deliveries()
    pacer = Pacer(rate, producer.poll)
    per_topic: Counter[str] = Counter()
    per_type: Counter[str] = Counter()
    first = last = None
    started = time.monotonic()
    try:
        for sent, event in enumerate(events):
            pacer.pace(sent)
            message = encoder.encode(event)
            _send(producer, message, deliveries.report)
            per_topic[message.topic] += 1
            per_type[message.event_type] += 1
            first, last = first or event.time, event.time
    finally:  # what was queued goes out, even when a later event cannot be encoded
        undelivered = producer.flush(FLUSH_TIMEOUT_S)
    _check(deliveries, undelivered, sum(per_topic.values()))
    seconds = time.monotonic() - started
    return Summary(deliveries.delivered, seconds, per_topic, per_type, first, last)


def _registry(settings: Settings) -> Any:
    if not settings.schema_registry_url:
        raise ConfigError(
            f"sink demo produce needs a schema registry: set {env_name('schema_registry_url')}"
            " (Open edX producers register every schema they write)"
        )
    return registry_client_for(settings)


def _send(producer: Producer, message: WireMessage, report: Callable[[Any, Any], None]) -> None:
    """Queue one message, waiting for room when librdkafka's queue is full."""
    headers: list[tuple[str, str | bytes | None]] = list(message.headers)
    while True:
        try:
            producer.produce(
                message.topic,
                value=message.value,
                key=message.key,
                headers=headers,
                on_delivery=report,
            )
        except BufferError:
            producer.poll(0.1)
            continue
        producer.poll(0)
        return


def _check(deliveries: _Deliveries, undelivered: int, sent: int) -> None:
    """Fail when a message is missing (after the producer was flushed)."""
    if deliveries.failed or undelivered:
        missing = deliveries.failed + undelivered
        reason = deliveries.first_error or f"no delivery report within {FLUSH_TIMEOUT_S:.0f} s"
        raise DeliveryError(f"{missing} of {sent} messages not delivered: {reason}")
