"""The in-process stages of the benchmark: decode, write and naive, each on its own.

* ``decode``: :meth:`sink.decoder.Decoder.decode_message` and the table's flattener on messages
  read back from Kafka into memory beforehand (no database);
* ``write``: :meth:`sink.writer.Warehouse.write` (the daemon's idempotent path: COPY into staging,
  ``INSERT … ON CONFLICT DO NOTHING``, positions, commit) on pre-decoded events, batch by batch,
  into an empty PostgreSQL schema (no Kafka);
* ``naive``: what a per-message signal handler does: decode one message, build its rows, one
  ``INSERT … ON CONFLICT DO NOTHING`` per row, ``COMMIT``, next message.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import sqlalchemy as sa
from confluent_kafka import Consumer, TopicPartition
from sqlalchemy.dialects.postgresql import insert as pg_insert

from bench.write import batches, database, timed_inserts, timed_writes
from sink.decoder import DecodedEvent, registry_client
from sink.decoder import Decoder as SinkDecoder
from sink.flatten import flattener_for
from sink.pii import Pii
from sink.tables import table_for
from sink.writer import Warehouse
from sink.writer.rows import RowBuilder

GROUP = "bench-inprocess"


@attrs.frozen
class Rate:
    """A measured rate.

    Attributes:
        count: Events (or rows) handled.
        seconds: Time it took.
        rows: Rows written, when the stage writes.
    """

    count: int
    seconds: float
    rows: int = 0

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def read_sample(bootstrap_servers: str, ends: dict[tuple[str, int], int], sample: int) -> list[Any]:
    """About ``sample`` messages from the start of every partition, each partition contributing
    in proportion to its size (so the sample has the mix of the whole)."""
    total = sum(ends.values())
    fraction = min(1.0, sample / total) if total else 0.0
    wanted = {tp: round(end * fraction) for tp, end in ends.items()}
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": GROUP,
            "enable.auto.commit": False,
            "fetch.max.bytes": 64 * 1024 * 1024,
        }
    )
    consumer.assign([TopicPartition(t, p, 0) for (t, p), count in wanted.items() if count])
    taken: dict[tuple[str, int], int] = dict.fromkeys(wanted, 0)
    messages: list[Any] = []
    deadline = time.monotonic() + 120
    try:
        while any(taken[tp] < wanted[tp] for tp in wanted) and time.monotonic() < deadline:
            for message in consumer.consume(10_000, timeout=1.0):
                if message.error() is not None:
                    continue
                # Typed optional, but set on every consumed message (as in sink.daemon).
                tp = (str(message.topic()), int(message.partition() or 0))
                if taken[tp] < wanted[tp]:
                    taken[tp] += 1
                    messages.append(message)
                    if taken[tp] == wanted[tp]:
                        consumer.incremental_unassign([TopicPartition(*tp)])
    finally:
        consumer.close()
    if len(messages) < sum(wanted.values()):
        raise RuntimeError(f"read {len(messages)} of {sum(wanted.values())} sample messages")
    return messages


def decoder(registry_url: str) -> SinkDecoder:
    """A decoder fetching writer schemas from the registry, as the daemon's does."""
    return SinkDecoder(registry_client(registry_url))


def measure_decode(
    registry_url: str, messages: Sequence[Any], pii: Pii, repeat: int = 2
) -> tuple[dict[str, Rate], list[DecodedEvent]]:
    """Rates of decoding alone, decode + flatten and decode + rows; the decoded events.

    Each is the best of ``repeat`` passes; the first pass of a fresh decoder fetches the writer
    schemas from the registry, so one untimed warm-up pass runs first.
    """
    sink_decoder = decoder(registry_url)
    events = [sink_decoder.decode_message(message) for message in messages]  # warm-up
    builder = RowBuilder(pii)

    def decode_only() -> None:
        decode = sink_decoder.decode_message
        for message in messages:
            decode(message)

    def decode_flatten() -> None:
        decode = sink_decoder.decode_message
        for message in messages:
            event = decode(message)
            flattener_for(event.spec)(event.data, event.event_id)

    def decode_rows() -> None:
        decode, build, now = sink_decoder.decode_message, builder.build, datetime.now(UTC)
        for message in messages:
            build(decode(message), now)

    rates = {}
    for name, run in (
        ("decode", decode_only),
        ("decode+flatten", decode_flatten),
        ("decode+rows", decode_rows),
    ):
        best = float("inf")
        for _ in range(repeat):
            started = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - started)
        rates[name] = Rate(len(messages), best)
    return rates, events


def measure_write(
    database_url: str, events: Sequence[DecodedEvent], pii: Pii, batch: int
) -> dict[str, Rate]:
    """:meth:`Warehouse.write` on ``events`` in batches of ``batch`` into an empty schema, and
    the database's share alone (rows pre-built, the dialect's COPY + INSERT + commit)."""
    work = batches(events, batch)
    rates = {}
    for name, timed in (("write", timed_writes), ("write, DB only", timed_inserts)):
        with database("postgresql", Path(), database_url) as url:
            warehouse = Warehouse(url, pii)
            try:
                seconds, stored, rows = timed(warehouse, work)
            finally:
                warehouse.close()
        if stored != len(events):
            raise RuntimeError(f"{name}: stored {stored} of {len(events)} events")
        rates[name] = Rate(stored, seconds, rows)
    return rates


def measure_naive(database_url: str, registry_url: str, messages: Sequence[Any], pii: Pii) -> Rate:
    """One message at a time: decode, rows, an ``INSERT … ON CONFLICT DO NOTHING`` per row,
    ``COMMIT`` (SQLAlchemy Core, as an ORM-based handler would)."""
    sink_decoder, builder = decoder(registry_url), RowBuilder(pii)
    for message in messages:  # warm-up: writer schemas fetched before timing
        sink_decoder.decode_message(message)
    inserts: dict[str, Any] = {}

    def statement(table: str) -> Any:
        if table not in inserts:
            inserts[table] = pg_insert(table_for(table)).on_conflict_do_nothing()
        return inserts[table]

    with database("postgresql", Path(), database_url) as url:
        engine = sa.create_engine(url)
        try:
            with engine.connect():
                pass  # connect before timing, as a running web process would be
            stored, rows = 0, 0
            started = time.perf_counter()
            for message in messages:
                event_rows = builder.build(sink_decoder.decode_message(message), datetime.now(UTC))
                with engine.begin() as connection:
                    connection.execute(statement(event_rows.table), event_rows.row)
                    for child, child_rows in event_rows.children.items():
                        connection.execute(statement(child), child_rows)
                        rows += len(child_rows)
                stored += 1
                rows += 1
            seconds = time.perf_counter() - started
        finally:
            engine.dispose()
    return Rate(stored, seconds, rows)
