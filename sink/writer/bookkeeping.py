"""The bookkeeping tables: dead letters and consumer positions, written with every batch.

Dead letters are idempotent by their message's (topic, partition, offset): a replayed batch does
not store its dead letters twice. Positions are upserted per (consumer group, topic, partition).

``sink_dead_letter.headers`` is a JSON list with one object per header, in message order:
``{"name": ..., "value": <UTF-8 text>}``, or ``{"name": ..., "base64": ...}`` for a value that is
not UTF-8 text (or holds a NUL, which PostgreSQL cannot store in JSON text).
:func:`decode_headers` turns it back into the raw headers, for replaying.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from sink.batch import DeadLetter
from sink.decoder import DecodedEvent, RawMessage
from sink.headers import EventMetadata
from sink.tables import sink_dead_letter, sink_offset

Partition = tuple[str, int]
#: ``INSERT`` with ``ON CONFLICT`` support for one dialect (PostgreSQL's or SQLite's).
InsertFactory = Callable[[sa.Table], Any]


def insert_factory(dialect_name: str) -> InsertFactory:
    """The ``INSERT … ON CONFLICT`` construct of a dialect (DuckDB speaks PostgreSQL's)."""
    return sqlite.insert if dialect_name == "sqlite" else postgresql.insert


# --- dead letters -------------------------------------------------------------------------------


def encode_headers(headers: Iterable[tuple[str, bytes | None]]) -> list[dict[str, str | None]]:
    """Message headers as JSON-ready objects (see the module docstring)."""
    return [_encode_header(name, value) for name, value in headers]


def _encode_header(name: str, value: bytes | None) -> dict[str, str | None]:
    clean_name = text(name)
    if value is None:
        return {"name": clean_name, "value": None}
    try:
        decoded = value.decode("utf-8")
    except UnicodeDecodeError:
        decoded = None
    if decoded is None or "\x00" in decoded:
        return {"name": clean_name, "base64": base64.b64encode(value).decode("ascii")}
    return {"name": clean_name, "value": decoded}


def decode_headers(stored: list[dict[str, str | None]]) -> list[tuple[str, bytes | None]]:
    """The raw headers of :func:`encode_headers`' output."""
    decoded: list[tuple[str, bytes | None]] = []
    for header in stored:
        name = str(header["name"])
        if (encoded := header.get("base64")) is not None:
            decoded.append((name, base64.b64decode(encoded)))
        else:
            value = header.get("value")
            decoded.append((name, None if value is None else value.encode("utf-8")))
    return decoded


def text(value: str) -> str:
    """``value`` storable as text everywhere: NUL characters spelled ``\\x00``."""
    return value.replace("\x00", "\\x00")


def event_headers(metadata: EventMetadata) -> tuple[tuple[str, bytes], ...]:
    """The CloudEvents headers of an event, rebuilt from its metadata (for its dead letter)."""
    values = {
        "ce_id": metadata.id,
        "ce_type": metadata.type,
        "ce_source": metadata.source,
        "ce_specversion": metadata.specversion,
        "ce_time": None if metadata.time is None else metadata.time.isoformat(),
        "ce_minorversion": None if metadata.minorversion is None else str(metadata.minorversion),
        "sourcehost": metadata.sourcehost,
        "sourcelib": metadata.sourcelib,
    }
    return tuple((name, value.encode()) for name, value in values.items() if value is not None)


def rejected_event(event: DecodedEvent, error_class: str, message: str) -> DeadLetter:
    """The dead letter of a decoded event whose rows cannot be stored.

    It keeps the raw message the event was decoded from (key, value and headers as received), so
    that ``sink dlq replay`` can decode and store it again after a fix. An event without its raw
    message (built otherwise than by the decoder) gets ``value`` None and headers rebuilt from
    its metadata. The error message names the table.
    """
    raw = event.raw
    return DeadLetter(
        location=event.location,
        key=None if raw is None else raw.key,
        value=None if raw is None else raw.value,
        headers=event_headers(event.metadata) if raw is None else _header_pairs(raw),
        event_type=event.event_type,
        error_class=error_class,
        error_message=f"{event.spec.table}: {message}",
    )


def _header_pairs(raw: RawMessage) -> tuple[tuple[str, bytes], ...]:
    """The raw headers, all of them: like the daemon's own dead letters, a header may be
    valueless (``None``), which :func:`encode_headers` stores as such."""
    return cast(tuple[tuple[str, bytes], ...], raw.header_pairs())


def dead_letter_row(letter: DeadLetter) -> dict[str, Any]:
    """The ``sink_dead_letter`` row of a dead letter."""
    return {
        "topic": letter.location.topic,
        "partition": letter.location.partition,
        "offset": letter.location.offset,
        "key": letter.key,
        "value": letter.value,
        "headers": encode_headers(letter.headers),
        "event_type": None if letter.event_type is None else text(letter.event_type),
        "error_class": text(letter.error_class),
        "error_message": text(letter.error_message),
        "first_seen": letter.first_seen,
    }


def store_dead_letters(
    connection: sa.Connection, letters: list[DeadLetter], insert: InsertFactory
) -> None:
    """Insert the dead letters; one already stored for the same message is kept."""
    if not letters:
        return
    statement = insert(sink_dead_letter).on_conflict_do_nothing(
        index_elements=["topic", "partition", "offset"]
    )
    connection.execute(statement, [dead_letter_row(letter) for letter in letters])


# --- positions ----------------------------------------------------------------------------------


def store_positions(
    connection: sa.Connection,
    group_id: str,
    positions: dict[Partition, int],
    insert: InsertFactory,
) -> None:
    """Upsert the next offset of every partition for the consumer group."""
    if not positions:
        return
    now = datetime.now(UTC)
    rows = [
        {
            "consumer_group": group_id,
            "topic": topic,
            "partition": partition,
            "next_offset": offset,
            "updated_at": now,
        }
        for (topic, partition), offset in sorted(positions.items())
    ]
    statement = insert(sink_offset)
    statement = statement.on_conflict_do_update(
        index_elements=["consumer_group", "topic", "partition"],
        set_={
            "next_offset": statement.excluded.next_offset,
            "updated_at": statement.excluded.updated_at,
        },
    )
    connection.execute(statement, rows)


def read_positions(
    connection: sa.Connection, group_id: str, partitions: Iterable[Partition]
) -> dict[Partition, int]:
    """The stored next offsets of these partitions (absent when never stored)."""
    wanted = set(partitions)
    if not wanted:
        return {}
    columns = sink_offset.c
    query = sa.select(columns.topic, columns.partition, columns.next_offset).where(
        columns.consumer_group == group_id,
        columns.topic.in_(sorted({topic for topic, _ in wanted})),
    )
    stored = {(topic, partition): offset for topic, partition, offset in connection.execute(query)}
    return {key: offset for key, offset in stored.items() if key in wanted}
