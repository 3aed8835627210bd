"""Rows of a batch: each decoded event becomes its parent row and child rows, PII policy applied.

The parent row is the envelope (:data:`sink.flatten.ENVELOPE_COLUMNS`) followed by the payload
columns, as one dict in table column order, so ``tuple(row.values())`` is a row in table order.

Envelope values the headers did not carry: the table requires them (NOT NULL), and an event
without them is still a valid Open edX event (only ``ce_id`` is required by the reference
consumer), so the writer stores it with stand-ins rather than dead-lettering it: ``event_time``
takes ``ingested_at``, ``minor_version`` 0 (the openedx-events default), and ``event_source``,
``source_host`` and ``source_lib`` the empty text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import attrs

from sink.decoder import DecodedEvent
from sink.flatten import flattener_for
from sink.pii import Pii

#: Value of ``minor_version`` when the ``ce_minorversion`` header is absent.
DEFAULT_MINOR_VERSION = 0


@attrs.frozen
class EventRows:
    """The rows of one event.

    Attributes:
        event: The decoded event they come from.
        table: Its parent table.
        row: Envelope and payload columns, in table column order.
        children: Child table → rows, for child tables with at least one row.
    """

    event: DecodedEvent
    table: str
    row: dict[str, Any]
    children: dict[str, list[dict[str, Any]]]


@attrs.frozen
class TableRows:
    """The rows of several events of one parent table.

    Attributes:
        table: The parent table.
        rows: Parent rows, one per event.
        children: Child table → rows of those events, for child tables with at least one row.
    """

    table: str
    rows: list[dict[str, Any]]
    children: dict[str, list[dict[str, Any]]]


def envelope(event: DecodedEvent, ingested_at: datetime) -> dict[str, Any]:
    """The envelope columns of ``event`` (see the module docstring for absent headers)."""
    metadata, location = event.metadata, event.location
    return {
        "event_id": metadata.id,
        "event_type": metadata.type,
        "event_time": ingested_at if metadata.time is None else metadata.time,
        "event_source": metadata.source or "",
        "source_host": metadata.sourcehost or "",
        "source_lib": metadata.sourcelib or "",
        "minor_version": (
            DEFAULT_MINOR_VERSION if metadata.minorversion is None else metadata.minorversion
        ),
        "kafka_topic": location.topic,
        "kafka_partition": location.partition,
        "kafka_offset": location.offset,
        "schema_id": event.schema_id,
        "ingested_at": ingested_at,
    }


class RowBuilder:
    """Builds :class:`EventRows` with one PII policy.

    Args:
        pii: The policy applied to personal columns of parent and child rows.
    """

    def __init__(self, pii: Pii) -> None:
        self.pii = pii

    def build(self, event: DecodedEvent, ingested_at: datetime) -> EventRows:
        """The rows of ``event``; the event itself is left untouched."""
        table = event.spec.table
        flat = flattener_for(event.spec)(event.data, event.event_id)
        row = envelope(event, ingested_at)
        row.update(flat.row)
        if (redact := self.pii.redactor(table)) is not None:
            redact(row)
        children = {
            name: self._child_rows(name, rows)
            for name, rows in flat.children.items()
            if rows and self.pii.keeps_child_rows(name)
        }
        return EventRows(event, table, row, children)

    def _child_rows(self, table: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if (redact := self.pii.redactor(table)) is not None:
            for row in rows:
                redact(row)
        return rows


def first_occurrences(events: Iterable[DecodedEvent]) -> list[DecodedEvent]:
    """The events with each ``event_id`` once: the first occurrence wins."""
    seen: set[str] = set()
    kept: list[DecodedEvent] = []
    for event in events:
        if event.event_id not in seen:
            seen.add(event.event_id)
            kept.append(event)
    return kept


def by_table(events: Sequence[EventRows]) -> list[TableRows]:
    """The rows of ``events`` grouped by parent table, tables in order of first appearance."""
    groups: dict[str, TableRows] = {}
    for event in events:
        group = groups.get(event.table)
        if group is None:
            group = groups[event.table] = TableRows(event.table, [], {})
        group.rows.append(event.row)
        for child, rows in event.children.items():
            group.children.setdefault(child, []).extend(rows)
    return list(groups.values())
