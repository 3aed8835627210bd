"""A batch: what one database transaction stores.

The consumer loop fills a batch from Kafka messages — decoded events, dead letters for poison
messages — together with the next offset of every partition it read. The writer stores all of it,
offsets included, in one transaction: that is what makes the sink's effect exactly-once.
"""

from __future__ import annotations

from datetime import UTC, datetime

import attrs

from sink.decoder import DecodedEvent
from sink.errors import MessageLocation, SinkError


@attrs.frozen
class DeadLetter:
    """A message that cannot be stored as an event, kept whole with the reason.

    Attributes:
        location: Topic, partition and offset of the message.
        key: Raw message key, if any.
        value: Raw message value, if any.
        headers: Message headers as (name, raw value) pairs, in order.
        event_type: The ``ce_type`` header when it could be read.
        error_class: Name of the error class that made it poison.
        error_message: Human-readable reason.
        first_seen: When the sink first failed on it (UTC).
    """

    location: MessageLocation
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    event_type: str | None
    error_class: str
    error_message: str
    first_seen: datetime = attrs.field(factory=lambda: datetime.now(UTC))

    @classmethod
    def from_error(
        cls,
        error: SinkError,
        location: MessageLocation,
        key: bytes | None,
        value: bytes | None,
        headers: tuple[tuple[str, bytes], ...],
    ) -> DeadLetter:
        return cls(
            location=location,
            key=key,
            value=value,
            headers=headers,
            event_type=_header_text(headers, "ce_type"),
            error_class=type(error).__name__,
            error_message=str(error),
        )


def _header_text(headers: tuple[tuple[str, bytes], ...], name: str) -> str | None:
    for header, raw in headers:
        if header == name:
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                return None
    return None


@attrs.define
class Batch:
    """Events, dead letters and partition positions to store in one transaction.

    Attributes:
        events: Decoded events, in consumption order.
        dead_letters: Poison messages with their reasons.
        positions: Next offset to read, per (topic, partition), after this batch.
    """

    events: list[DecodedEvent] = attrs.field(factory=list)
    dead_letters: list[DeadLetter] = attrs.field(factory=list)
    positions: dict[tuple[str, int], int] = attrs.field(factory=dict)

    def __len__(self) -> int:
        return len(self.events) + len(self.dead_letters)

    def advance(self, location: MessageLocation) -> None:
        """Record that the message at `location` is handled (stored or dead-lettered)."""
        self.positions[(location.topic, location.partition)] = location.offset + 1


@attrs.frozen
class WriteResult:
    """What one batch write changed.

    Attributes:
        stored: Events newly stored.
        duplicates: Events skipped because their ``event_id`` was already stored.
        dead_letters: Messages stored in ``sink_dead_letter`` (including rows the database
            rejected, which the writer turns into dead letters).
        rows: Rows inserted per table, child tables included.
        rejected: The dead letters the writer made of events whose rows the database refused.
    """

    stored: int
    duplicates: int
    dead_letters: int
    rows: dict[str, int] = attrs.field(factory=dict)
    rejected: tuple[DeadLetter, ...] = ()
