"""The daemon's loop logic with an in-memory consumer and store (no Kafka, no database).

The end-to-end behaviour is tested against the real services in
``tests/integration/test_daemon_e2e.py``; these tests pin down orderings that a real cluster
produces only by chance: a rebalance in the middle of a write's retry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, TopicPartition

from sink.batch import Batch, DeadLetter, WriteResult
from sink.config import Settings
from sink.daemon import Daemon, consumer_config, refuse_wrong_settings
from sink.errors import ConfigError, DatabaseUnavailableError, MessageLocation
from sink.writer.rows import EventRows
from sink.writer.warehouse import Prepared

T0, T1 = ("t", 0), ("t", 1)


class FakeConsumer:
    """Records commits; calls ``on_poll`` (a rebalance, say) on each poll."""

    def __init__(self) -> None:
        self.commits: list[dict[tuple[str, int], int]] = []
        self.on_poll: Callable[[], None] = lambda: None

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self.commits.append({(tp.topic, tp.partition): tp.offset for tp in offsets})

    def poll(self, timeout: float) -> None:
        self.on_poll()

    def pause(self, partitions: list[TopicPartition]) -> None: ...

    def resume(self, partitions: list[TopicPartition]) -> None: ...

    def incremental_unassign(self, partitions: list[TopicPartition]) -> None: ...

    def get_watermark_offsets(self, partition: TopicPartition, cached: bool) -> tuple[int, int]:
        return (0, -1)


class FlakyStore:
    """Fails the first write with a transient error; records what every attempt was given."""

    def __init__(self) -> None:
        self.attempts: list[dict[tuple[str, int], int]] = []

    def prepare(self, batch: Batch) -> Prepared:
        return Prepared(batch, rows=[], rejected=[])

    def store(self, prepared: Prepared, group_id: str) -> WriteResult:
        batch = prepared.batch
        self.attempts.append(dict(batch.positions))
        if len(self.attempts) == 1:
            raise DatabaseUnavailableError("connection refused (test)")
        return WriteResult(stored=len(batch.events), duplicates=0, dead_letters=0, rows={})

    def positions(self, group_id: str, partitions: Iterable[tuple[str, int]]) -> dict[Any, int]:
        return {}


def batch_of(*locations: MessageLocation) -> Batch:
    batch = Batch()
    for location in locations:
        batch.events.append(SimpleNamespace(location=location))  # type: ignore[arg-type]
        batch.advance(location)
    return batch


def daemon_with(consumer: FakeConsumer, store: FlakyStore) -> Daemon:
    """A daemon on the in-memory consumer and store (no decoder: batches are made by hand)."""
    return Daemon(
        Settings(topics=("t",)), decoder=None, store=store,  # type: ignore[arg-type]
        consumer_factory=lambda _config: consumer,  # type: ignore[arg-type,return-value]
    )  # fmt: skip


def test_a_partition_revoked_while_its_write_is_retried_is_not_written_by_the_old_owner() -> None:
    consumer, store = FakeConsumer(), FlakyStore()
    daemon = daemon_with(consumer, store)
    daemon.assigned = {T0, T1}
    daemon.batch = batch_of(MessageLocation("t", 0, 4), MessageLocation("t", 1, 6))

    def revoke_t1() -> None:
        consumer.on_poll = lambda: None
        daemon._on_revoke(consumer, [TopicPartition("t", 1)])  # type: ignore[arg-type]

    consumer.on_poll = revoke_t1  # the rebalance happens while the failed write waits to retry
    daemon._flush()
    daemon._settle()
    daemon.writer.shutdown()

    assert store.attempts == [{T0: 5, T1: 7}, {T0: 5}]
    assert consumer.commits == [{T0: 5}]
    assert daemon.assigned == {T0}


def test_a_prepared_batch_without_revoked_partitions_keeps_only_the_others() -> None:
    here, gone = MessageLocation("t", 0, 1), MessageLocation("t", 1, 2)
    batch = batch_of(here, gone)
    rows = [EventRows(event, "table", {}, {}) for event in batch.events]
    letter = DeadLetter(gone, None, b"x", (), None, "FramingError", "bad")
    prepared = Prepared(batch, rows=rows, rejected=[letter])
    prepared.without({T1})
    assert [event.location for event in prepared.batch.events] == [here]
    assert [r.event.location for r in prepared.rows] == [here]
    assert prepared.rejected == []
    assert prepared.batch.positions == {T0: 2}


def test_a_revoke_during_a_retry_also_drops_the_partition_from_the_next_prepared_batch() -> None:
    consumer, store = FakeConsumer(), FlakyStore()
    daemon = daemon_with(consumer, store)
    daemon.assigned = {T0, T1}
    daemon.batch = batch_of(MessageLocation("t", 0, 4), MessageLocation("t", 1, 6))
    daemon._flush()  # first batch in flight (its write fails once)
    daemon.batch = batch_of(MessageLocation("t", 0, 5), MessageLocation("t", 1, 7))

    def revoke_t1() -> None:
        consumer.on_poll = lambda: None
        daemon._on_revoke(consumer, [TopicPartition("t", 1)])  # type: ignore[arg-type]

    consumer.on_poll = revoke_t1
    daemon._flush()  # prepares the second batch, settles the first (retry, revoke), sends
    daemon._settle()
    daemon.writer.shutdown()

    assert store.attempts == [{T0: 5, T1: 7}, {T0: 5}, {T0: 6}]
    assert consumer.commits == [{T0: 5}, {T0: 6}]


@pytest.mark.parametrize(
    "code",
    [
        KafkaError._AUTHENTICATION,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError._SSL,
    ],
)
def test_kafka_refusing_the_settings_is_fatal(code: int) -> None:
    config = consumer_config(Settings(topics=("t",)))
    for handle in (refuse_wrong_settings, config["error_cb"]):
        with pytest.raises(ConfigError, match=r"check the SINK_KAFKA_\* settings"):
            handle(KafkaError(code, "refused"))


def test_kafka_being_away_is_only_logged(caplog: pytest.LogCaptureFixture) -> None:
    refuse_wrong_settings(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    assert "1/1 brokers are down" in caplog.text


def test_the_sink_handles_client_errors_and_logs_itself() -> None:
    """librdkafka reports a refused login to ``error_cb`` only, never in a consumed message."""
    options = {"error_cb": "ignored", "logger": "ignored"}
    config = consumer_config(Settings(topics=("t",), kafka_options=options))
    assert callable(config["error_cb"])
    assert config["logger"] is logging.getLogger("sink.kafka")
