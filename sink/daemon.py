"""The sink daemon: consume → decode → write (rows + offsets, one transaction) → Kafka commit.

Two stages overlap: while one batch is stored (a single writer thread owns every database call,
and mostly waits for the database), the main thread polls Kafka, decodes the next batch and builds
its rows (:meth:`Store.prepare`), then hands it over once the stored one is settled. At most one
batch is in flight; it is settled (result counted, offsets committed to Kafka) before the next one
is handed over, before partitions are revoked, and before the daemon exits, so batches commit in
order.

Delivery: the database is the source of truth for positions. Each batch is stored together with
the next offset of every partition it read (``sink_offset``) in one transaction; on partition
assignment the consumer seeks to those stored positions. A crash anywhere re-reads at most the
batch that was not committed, and re-reading is harmless because writes are idempotent by
``event_id``. Offsets are also committed to Kafka after each batch, only so standard lag tools work.

Failures by kind:
* poison messages (:attr:`SinkError.poison`) become dead letters in the same transaction;
* transient failures (:attr:`SinkError.transient`: registry or database unreachable) pause the
  assigned partitions, back off with jitter and retry the same work, keeping group membership alive;
  more than ``failure_budget`` consecutive failures exit non-zero;
* anything else is fatal and propagates.
"""

from __future__ import annotations

import functools
import gc
import logging
import re
import signal
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from types import FrameType
from typing import Any, Protocol, TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from sink.batch import Batch, DeadLetter, WriteResult
from sink.config import Settings
from sink.decoder import Decoder
from sink.errors import ConfigError, DatabaseUnavailableError, MessageLocation, SinkError
from sink.kafka_errors import raise_if_refused
from sink.metrics import HealthServer, Metrics
from sink.retry import Backoff
from sink.writer import Warehouse

log = logging.getLogger(__name__)

T = TypeVar("T")
Partition = tuple[str, int]

POLL_TIMEOUT_S = 0.2
GROUP_CHECK_INTERVAL_S = 1.0


class SchemaCheck(Protocol):
    """What the start-up needs of the warehouse (:class:`~sink.writer.Warehouse` fits)."""

    def check_schema(self) -> None:
        """Return when the database answers and is migrated."""


class Prepared(Protocol):
    """A batch with its rows built, as :meth:`Store.prepare` makes it."""

    batch: Batch

    def without(self, partitions: set[Partition]) -> None:
        """Drop everything of ``partitions``."""


class Store(Protocol):
    """The warehouse as the daemon sees it."""

    def prepare(self, batch: Batch) -> Prepared:
        """Build the batch's rows (CPU only: no database)."""

    def store(self, prepared: Any, group_id: str) -> WriteResult:
        """Store a prepared batch and its positions in one transaction (idempotent)."""

    def positions(self, group_id: str, partitions: Iterable[Partition]) -> dict[Partition, int]:
        """Stored next offsets of these partitions (absent when never stored)."""


class InFlight:
    """The batch the writer thread is storing, and the attempt's outcome."""

    def __init__(self, prepared: Prepared, future: Future[WriteResult]) -> None:
        self.prepared = prepared
        self.future = future
        self.started = time.monotonic()


class BudgetExhaustedError(SinkError):
    """Too many consecutive transient failures: exit so that a supervisor restarts the sink."""


def refuse_wrong_settings(error: KafkaError) -> None:
    """Handle an error a consumed message carries: wrong settings end the process, else log it.

    Raises:
        ConfigError: Kafka refused the settings (credentials, authorization, options).
    """
    raise_if_refused(error)
    log.warning("Kafka: %s (librdkafka retries by itself)", error.str())


def _client_error(error: KafkaError) -> None:
    """librdkafka's ``error_cb``, called from ``consume()``: wrong settings end the process.

    A refused login (wrong SASL password, bad certificate) reaches the sink only here; librdkafka
    would retry it forever. The other client errors (a broker away) are in librdkafka's own log.
    """
    raise_if_refused(error)
    log.debug("Kafka: %s", error.str())


def consumer_config(settings: Settings) -> dict[str, Any]:
    """librdkafka settings: ours, then the operator's pass-through options."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "group.id": settings.group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
        "partition.assignment.strategy": "cooperative-sticky",
        # librdkafka prefetches up to 64 MB per partition by default; 16 MB keeps a backlog's RSS
        # near 220 MB instead of 340 MB at the same rate (bench: 1M-event backlog).
        "queued.max.messages.kbytes": 16384,
        **settings.kafka_options,
        # Not options: the sink's own handling of client errors, and librdkafka's log lines
        # through the sink's logging (same format, JSON included) instead of straight to stderr.
        "error_cb": _client_error,
        "logger": logging.getLogger("sink.kafka"),
    }


class Daemon:
    """One sink process: a consumer-group member that stores every message exactly once."""

    def __init__(
        self,
        settings: Settings,
        decoder: Decoder,
        store: Store,
        metrics: Metrics | None = None,
        *,
        stop_at_end: bool = False,
        consumer_factory: Callable[[dict[str, Any]], Consumer] = Consumer,
    ) -> None:
        if not settings.topics:
            raise ConfigError("SINK_TOPICS is empty: name at least one topic (or ^pattern)")
        self.settings = settings
        self.decoder = decoder
        self.store = store
        self.metrics = metrics or Metrics()
        self.stop_at_end = stop_at_end
        self.consumer = consumer_factory(consumer_config(settings))
        self.backoff = Backoff(settings.failure_budget)
        self.batch = Batch()
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sink-writer")
        self.inflight: InFlight | None = None
        self.retrying: Prepared | None = None  # a stored batch being retried after a failure
        self.prepared: Prepared | None = None  # the next batch, while the one in flight settles
        self.assigned: set[Partition] = set()
        self.at_end: set[Partition] = set()
        self.stopping = False
        self.heartbeat = time.monotonic()
        self.batch_started = time.monotonic()
        self.last_group_check = 0.0
        self.drained = False

    # --- lifecycle ---------------------------------------------------------------------------

    def run(self) -> None:
        """Consume until stopped (signal, :meth:`stop`, or caught up with ``stop_at_end``)."""
        self.consumer.subscribe(
            list(self.settings.resolved_topics()),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        log.info("consuming %s as group %s", ", ".join(self.settings.resolved_topics()),
                 self.settings.group_id)  # fmt: skip
        try:
            while not self.stopping:
                self._collect()
                if self._batch_due():
                    self._flush()
                elif self.inflight and (self.inflight.future.done() or self.drained):
                    self._settle()  # count it and tell Kafka now, not when the next batch is due
                if self.stop_at_end and self._finished():
                    log.info("every partition of the topics is caught up; stopping")
                    break
            self._flush()
            self._settle()
        finally:
            self.consumer.close()
            self.writer.shutdown(wait=True, cancel_futures=True)
            log.info("left the consumer group")

    def stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        """Finish the current batch, commit and leave the group (also a signal handler)."""
        if signum is not None:
            log.info("received %s: finishing the current batch", signal.Signals(signum).name)
        self.stopping = True

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def alive(self) -> bool:
        return time.monotonic() - self.heartbeat < 60

    def ready(self) -> bool:
        return bool(self.assigned) and self.backoff.failures == 0

    # --- the loop ----------------------------------------------------------------------------

    def _collect(self) -> None:
        """Poll once and add what arrived to the batch."""
        self.heartbeat = time.monotonic()
        room = max(self.settings.batch_max_messages - len(self.batch), 1)
        messages = self.consumer.consume(num_messages=room, timeout=POLL_TIMEOUT_S)
        # A short poll means the sink has read all there is: write now rather than wait for the
        # batch timer (lower latency when caught up; under a backlog polls come back full).
        self.drained = len(messages) < room
        for message in messages:
            error = message.error()
            if error is None:
                self._retry("decode", functools.partial(self._add, message))
            elif error.code() == KafkaError._PARTITION_EOF:
                self.at_end.add((str(message.topic()), int(message.partition() or 0)))
            else:
                refuse_wrong_settings(error)

    def _add(self, message: Any) -> None:
        location = MessageLocation(message.topic(), message.partition(), message.offset())
        if _key(location) not in self.assigned:
            return  # revoked while this poll's messages were handled: the next owner reads it
        self.at_end.discard(_key(location))
        try:
            self.batch.events.append(self.decoder.decode_message(message))
        except SinkError as error:
            if not error.poison:
                raise
            self._dead_letter(error, location, message)
        self.batch.advance(location)

    def _dead_letter(self, error: SinkError, location: MessageLocation, message: Any) -> None:
        headers = tuple(message.headers() or ())
        letter = DeadLetter.from_error(error, location, message.key(), message.value(), headers)
        self.batch.dead_letters.append(letter)
        log.warning(
            "dead letter: %s",
            error,
            extra={"topic": location.topic, "partition": location.partition,
                   "offset": location.offset, "error_class": letter.error_class},
        )  # fmt: skip

    def _batch_due(self) -> bool:
        if not self.batch.positions:
            return False
        full = len(self.batch) >= self.settings.batch_max_messages
        old = time.monotonic() - self.batch_started >= self.settings.batch_max_seconds
        return full or old or self.drained

    def _flush(self) -> None:
        """Build the batch's rows while the previous batch is stored, then, once that one is
        settled, hand this one to the writer thread."""
        if self.batch.positions:
            batch, self.batch = self.batch, Batch()
            self.prepared = self.store.prepare(batch)
        self._settle()
        prepared, self.prepared = self.prepared, None
        if prepared is not None and prepared.batch.positions:
            self.inflight = InFlight(prepared, self._in_writer(self._store, prepared))
        self.batch_started = time.monotonic()

    def _settle(self, *, in_callback: bool = False) -> None:
        """Wait for the batch in flight (retrying it on transient failures), then commit its
        offsets to Kafka. Its rows and positions are in the database before Kafka hears of them."""
        inflight, self.inflight = self.inflight, None
        if inflight is None:
            return
        attempts = iter([inflight.future])

        def attempt() -> WriteResult:
            future = next(attempts, None) or self._in_writer(self._store, inflight.prepared)
            return future.result()

        self.retrying = inflight.prepared  # a revoke while it is retried drops its partitions
        try:
            result = self._retry("write", attempt, in_callback=in_callback)
        finally:
            self.retrying = None
        self.metrics.batch_seconds.observe(time.monotonic() - inflight.started)
        batch = inflight.prepared.batch
        self._count(batch, result)
        self._commit_to_kafka(batch.positions)
        self.metrics.committed()
        self._measure_lag(batch)

    def _store(self, prepared: Prepared) -> WriteResult:
        return self.store.store(prepared, self.settings.group_id)

    def _in_writer(self, operation: Callable[..., T], *args: Any) -> Future[T]:
        """Run a database operation on the writer thread (the only thread that uses the store)."""
        return self.writer.submit(operation, *args)

    def _positions(self, keys: Iterable[Partition]) -> dict[Partition, int]:
        return self._in_writer(self.store.positions, self.settings.group_id, keys).result()

    def _count(self, batch: Batch, result: WriteResult) -> None:
        self.metrics.messages.labels("stored").inc(result.stored)
        self.metrics.messages.labels("duplicate").inc(result.duplicates)
        self.metrics.messages.labels("dead_letter").inc(result.dead_letters)
        for letter in (*batch.dead_letters, *result.rejected):
            self.metrics.dead_letters.labels(letter.error_class).inc()
        for table, rows in result.rows.items():
            self.metrics.rows.labels(table).inc(rows)

    def _measure_lag(self, batch: Batch) -> None:
        for (topic, partition), position in batch.positions.items():
            _low, high = self.consumer.get_watermark_offsets(
                TopicPartition(topic, partition), cached=True
            )
            if high >= 0:
                self.metrics.lag.labels(topic, str(partition)).set(max(high - position, 0))

    def _commit_to_kafka(self, positions: dict[Partition, int]) -> None:
        offsets = [TopicPartition(t, p, offset) for (t, p), offset in positions.items()]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as error:  # the database holds the truth; Kafka's copy may lag
            log.warning("Kafka offset commit failed (positions are safe in the database): %s",
                        error)  # fmt: skip

    def _assigned_at_end(self) -> bool:
        return bool(self.assigned) and self.assigned <= self.at_end

    def _finished(self) -> bool:
        """``--stop-at-end``: this member is caught up, and so is the rest of the group.

        Partitions assigned elsewhere count as done when their stored position has reached their
        end; until then (another replica working, or a dead member's partitions not yet handed
        over) this member keeps polling, so that backfills never end early.
        """
        if self.batch.positions or self.inflight or not self.assigned <= self.at_end:
            return False  # work in hand (with no partition yet, the group check below decides)
        now = time.monotonic()
        if now - self.last_group_check < GROUP_CHECK_INTERVAL_S:
            return False
        self.last_group_check = now
        try:
            elsewhere = self._subscribed_partitions() - self.assigned
            ends = {key: self._end_offset(key) for key in elsewhere}
        except KafkaException as error:  # the broker is away: not finished, ask again later
            log.warning("Kafka: %s (checking whether the group is caught up)", error)
            return False
        if not elsewhere:
            return True
        stored = self._retry("positions", lambda: self._positions(elsewhere))
        return all(stored.get(key, 0) >= end for key, end in ends.items())

    def _end_offset(self, key: Partition) -> int:
        _low, high = self.consumer.get_watermark_offsets(TopicPartition(*key), timeout=10)
        return int(high)

    def _subscribed_partitions(self) -> set[Partition]:
        topics = self.consumer.list_topics(timeout=10).topics
        wanted = self.settings.resolved_topics()
        names = {t for t in wanted if not t.startswith("^")}
        patterns = [re.compile(t) for t in wanted if t.startswith("^")]
        return {
            (name, partition)
            for name, metadata in topics.items()
            if name in names or any(pattern.match(name) for pattern in patterns)
            for partition in metadata.partitions
        }

    # --- transient failures --------------------------------------------------------------------

    def _retry(self, stage: str, operation: Callable[[], T], *, in_callback: bool = False) -> T:
        """Run `operation`; on a transient failure pause, back off and try again.

        Inside a rebalance callback the consumer must not be polled, so there it only sleeps.
        """
        while True:
            try:
                outcome = operation()
            except SinkError as error:
                if not error.transient:
                    raise
                self._wait_after_failure(stage, error, in_callback=in_callback)
                continue
            if self.backoff.failures:
                log.info("%s recovered after %d failed attempts", stage, self.backoff.failures)
                if not in_callback:
                    self.consumer.resume(self._partitions(self.assigned))
            self.backoff.succeeded()
            return outcome

    def _wait_after_failure(self, stage: str, error: SinkError, *, in_callback: bool) -> None:
        delay = self.backoff.failed()
        self.metrics.transient_failures.labels(stage).inc()
        if self.backoff.exhausted:
            raise BudgetExhaustedError(
                f"{stage} failed {self.backoff.failures} times in a row (budget "
                f"SINK_FAILURE_BUDGET={self.backoff.budget}); last error: {error}"
            ) from error
        log.warning("%s failed (%s); retry %d in %.1fs", stage, error, self.backoff.failures, delay)
        if in_callback:
            time.sleep(delay)
            return
        self.consumer.pause(self._partitions(self.assigned))
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and not self.stopping:
            # Paused partitions return no messages; polling keeps the group membership alive.
            self.heartbeat = time.monotonic()
            self.consumer.poll(min(POLL_TIMEOUT_S, max(deadline - time.monotonic(), 0)))

    # --- rebalances ------------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [(tp.topic, tp.partition) for tp in partitions]
        stored = self._retry("positions", lambda: self._positions(keys), in_callback=True)
        for tp in partitions:
            tp.offset = stored.get((tp.topic, tp.partition), OFFSET_BEGINNING)
        consumer.incremental_assign(partitions)
        self.assigned.update(keys)
        log.info("assigned %s", ", ".join(f"{t}[{p}]@{stored.get((t, p), 'beginning')}"
                                           for t, p in keys))  # fmt: skip

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Finish the batch in flight, then drop what was collected since from revoked partitions
        (also from a batch whose write is being retried, and from the next, prepared batch):
        their next owner re-reads it from the stored positions. Writing it here could race that
        owner; dropping it never loses it."""
        keys = {(tp.topic, tp.partition) for tp in partitions}
        self._settle(in_callback=True)  # written before the next owner reads its position
        self._forget(keys)
        consumer.incremental_unassign(partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._on_revoke(consumer, partitions)

    def _forget(self, keys: set[Partition]) -> None:
        batch = self.batch
        batch.events = [e for e in batch.events if _key(e.location) not in keys]
        batch.dead_letters = [d for d in batch.dead_letters if _key(d.location) not in keys]
        batch.positions = {k: v for k, v in batch.positions.items() if k not in keys}
        for prepared in (self.retrying, self.prepared):
            if prepared is not None:
                prepared.without(keys)
        self.assigned -= keys
        self.at_end -= keys

    @staticmethod
    def _partitions(keys: Iterable[Partition]) -> list[TopicPartition]:
        return [TopicPartition(topic, partition) for topic, partition in keys]


def _key(location: MessageLocation) -> Partition:
    return (location.topic, location.partition)


def run_daemon(settings: Settings, *, stop_at_end: bool = False) -> None:
    """Build the sink from its settings and run it until stopped.

    Raises:
        SchemaOutOfDateError: The warehouse is not migrated to head (run ``sink migrate``).
        SinkError: Any other fatal error, already described for the operator.
    """
    warehouse = Warehouse.from_settings(settings)
    try:
        wait_for_warehouse(warehouse, Backoff(settings.failure_budget))
        decoder = Decoder.from_settings(settings)
        daemon = Daemon(settings, decoder, warehouse, stop_at_end=stop_at_end)
        server = None
        if settings.metrics_port:
            server = HealthServer(settings.metrics_port, daemon.metrics, daemon.alive, daemon.ready)
            server.start()
        daemon.install_signal_handlers()
        tune_garbage_collector()
        try:
            daemon.run()
        finally:
            if server is not None:
                server.stop()
    finally:
        warehouse.close()


def wait_for_warehouse(warehouse: SchemaCheck, backoff: Backoff) -> None:
    """Return once the warehouse answers and is migrated; retry while it cannot be reached.

    Raises:
        BudgetExhaustedError: It could not be reached ``backoff.budget`` + 1 times in a row.
        SchemaOutOfDateError: It is not migrated (run ``sink migrate``).
        DatabaseAccessError: It refuses the sink's login or database (fix SINK_DATABASE_URL).
    """
    while True:
        try:
            warehouse.check_schema()
        except DatabaseUnavailableError as error:
            delay = backoff.failed()
            if backoff.exhausted:
                raise BudgetExhaustedError(
                    f"the warehouse could not be reached {backoff.failures} times in a row"
                    f" (budget SINK_FAILURE_BUDGET={backoff.budget}); last error: {error}"
                ) from error
            log.warning("start: %s; retry %d in %.1fs", error, backoff.failures, delay)
            time.sleep(delay)
        else:
            return


def tune_garbage_collector() -> None:
    """Make the cyclic garbage collector cheap for a loop that allocates many short-lived objects.

    Messages, decoded events and rows are freed by reference counting; they form no cycles. With
    the default threshold the collector still ran every 700 allocations and took 21% of the loop
    (py-spy, bench e2e). Objects alive at start-up (modules, schemas, compiled converters) are
    frozen out of its scans, and young collections run every 100k allocations instead.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
