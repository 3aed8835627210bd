"""Dead letters: list, show and replay the messages stored in ``sink_dead_letter``.

* :func:`select` reads dead letters (by id, or by filters: error class, topic, replayed or not);
  :func:`list_lines` and :func:`show_lines` format them for ``sink dlq list`` and ``sink dlq show``.
  Nothing here prints a message value as text: values and keys hold personal data, so they are
  shown as their length and a hex preview of their first :data:`PREVIEW_BYTES` bytes only.
* :func:`replay` decodes each dead letter's raw message again with the current decoder (registry
  and catalog as configured now) and writes the event through :meth:`Warehouse.write` in a batch
  of its own **without positions**, so no consumer position moves. A letter that is stored (or
  whose event turns out to be stored already) gets ``replayed_at`` right after its write; a crash
  in between only means the next replay finds the event stored already (writes are idempotent by
  ``event_id``). A letter that still fails keeps its row untouched and the reason is reported.
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import attrs
import sqlalchemy as sa

from sink.batch import Batch
from sink.decoder import FRAME_SIZE, MAGIC_BYTE, Decoder
from sink.errors import DecodeError, MessageLocation, SinkError
from sink.tables import sink_dead_letter
from sink.writer import Warehouse
from sink.writer.bookkeeping import decode_headers

#: How many leading bytes of a key or value ``sink dlq show`` prints, in hex.
PREVIEW_BYTES: Final = 64
#: Rows ``sink dlq list`` shows unless told otherwise.
DEFAULT_LIMIT: Final = 50
NO_RAW_VALUE: Final = (
    "no raw value stored (dead-lettered by a sink version that did not keep the raw message of "
    "events the database rejected): it cannot be replayed"
)


@attrs.frozen
class StoredLetter:
    """One row of ``sink_dead_letter``.

    Attributes:
        id: The row id (what ``sink dlq show`` and ``replay`` take).
        location: Topic, partition and offset of the message.
        key: Raw message key, if any.
        value: Raw message value, if stored.
        headers: Raw message headers, in order.
        event_type: The ``ce_type`` header, when it could be read.
        error_class: Name of the error that made it a dead letter.
        error_message: The reason.
        first_seen: When the sink first failed on it.
        replayed_at: When ``sink dlq replay`` stored it, if it did.
    """

    id: int
    location: MessageLocation
    key: bytes | None = attrs.field(repr=False)
    value: bytes | None = attrs.field(repr=False)
    headers: list[tuple[str, bytes | None]] = attrs.field(repr=False)
    event_type: str | None
    error_class: str
    error_message: str
    first_seen: datetime
    replayed_at: datetime | None


@attrs.frozen
class Selection:
    """Which dead letters to read.

    Attributes:
        ids: These ids only (whatever their other attributes); empty: use the filters.
        error_class: Only dead letters of this error class.
        topic: Only dead letters of this topic.
        include_replayed: Also those replayed already.
        limit: At most this many (the lowest ids); None: all.
        after_id: Only ids above this one (for reading page by page).
    """

    ids: tuple[int, ...] = ()
    error_class: str | None = None
    topic: str | None = None
    include_replayed: bool = False
    limit: int | None = None
    after_id: int | None = None


# --- reading -------------------------------------------------------------------------------------


def _where(selection: Selection) -> list[sa.ColumnElement[bool]]:
    columns = sink_dead_letter.c
    conditions: list[sa.ColumnElement[bool]] = []
    if selection.after_id is not None:
        conditions.append(columns.id > selection.after_id)
    if selection.ids:
        return [*conditions, columns.id.in_(sorted(set(selection.ids)))]
    if selection.error_class is not None:
        conditions.append(columns.error_class == selection.error_class)
    if selection.topic is not None:
        conditions.append(columns.topic == selection.topic)
    if not selection.include_replayed:
        conditions.append(columns.replayed_at.is_(None))
    return conditions


def select(engine: sa.Engine, selection: Selection) -> list[StoredLetter]:
    """The dead letters of ``selection``, by increasing id."""
    query = sa.select(sink_dead_letter).where(*_where(selection)).order_by(sink_dead_letter.c.id)
    if selection.limit is not None:
        query = query.limit(selection.limit)
    with engine.connect() as connection:
        return [_letter(row._mapping) for row in connection.execute(query)]


def pages(engine: sa.Engine, selection: Selection, size: int = 500) -> Iterator[StoredLetter]:
    """The dead letters of ``selection`` (its limit ignored), read ``size`` at a time."""
    after: int | None = None
    while True:
        page = select(engine, attrs.evolve(selection, limit=size, after_id=after))
        yield from page
        if len(page) < size:
            return
        after = page[-1].id


def count(engine: sa.Engine, selection: Selection) -> int:
    """How many dead letters ``selection`` matches, ignoring its limit."""
    query = sa.select(sa.func.count()).select_from(sink_dead_letter).where(*_where(selection))
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def get(engine: sa.Engine, letter_id: int) -> StoredLetter | None:
    """The dead letter with this id, if there is one."""
    found = select(engine, Selection(ids=(letter_id,)))
    return found[0] if found else None


def _letter(row: Any) -> StoredLetter:
    return StoredLetter(
        id=int(row["id"]),
        location=MessageLocation(row["topic"], int(row["partition"]), int(row["offset"])),
        key=_bytes(row["key"]),
        value=_bytes(row["value"]),
        headers=decode_headers(row["headers"] or []),
        event_type=row["event_type"],
        error_class=row["error_class"],
        error_message=row["error_message"],
        first_seen=_utc(row["first_seen"]),
        replayed_at=None if row["replayed_at"] is None else _utc(row["replayed_at"]),
    )


def _bytes(value: Any) -> bytes | None:
    """A binary column as ``bytes`` (drivers may give ``memoryview``)."""
    return None if value is None else bytes(value)


def _utc(value: datetime) -> datetime:
    """An aware UTC datetime (SQLite gives naive UTC ones)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def mark_replayed(engine: sa.Engine, letter_ids: Iterable[int], when: datetime) -> None:
    """Set ``replayed_at`` of these dead letters."""
    ids = sorted(set(letter_ids))
    if not ids:
        return
    statement = (
        sa.update(sink_dead_letter).where(sink_dead_letter.c.id.in_(ids)).values(replayed_at=when)
    )
    with engine.begin() as connection:
        connection.execute(statement)


# --- formatting ----------------------------------------------------------------------------------


def timestamp(value: datetime | None) -> str:
    """``2026-03-04 05:06:07Z`` (UTC, to the second), or ``-``."""
    return "-" if value is None else _utc(value).strftime("%Y-%m-%d %H:%M:%SZ")


def aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-align the columns of ``rows`` two spaces apart."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def list_lines(letters: Sequence[StoredLetter]) -> list[str]:
    """The ``sink dlq list`` table: one line per dead letter under a heading."""
    rows = [("ID", "MESSAGE", "EVENT TYPE", "ERROR CLASS", "FIRST SEEN", "REPLAYED AT")]
    rows += [
        (
            str(letter.id),
            str(letter.location),
            letter.event_type or "-",
            letter.error_class,
            timestamp(letter.first_seen),
            timestamp(letter.replayed_at),
        )
        for letter in letters
    ]
    return aligned(rows)


def hex_preview(raw: bytes | None, limit: int = PREVIEW_BYTES) -> str:
    """``<n> bytes: 00 01 …``: the length and the first ``limit`` bytes in hex, never as text."""
    if raw is None:
        return "none"
    shown = raw[:limit].hex(" ")
    more = f" … ({len(raw) - limit} more bytes not shown)" if len(raw) > limit else ""
    return f"{len(raw)} bytes: {shown}{more}" if raw else "0 bytes"


def header_text(value: bytes | None) -> str:
    """A header value as text when it is printable UTF-8, else as a hex preview."""
    if value is None:
        return "(no value)"
    try:
        decoded = value.decode("utf-8")
    except UnicodeDecodeError:
        decoded = None
    if decoded is not None and decoded.isprintable():
        return decoded
    return f"(not text) {hex_preview(value)}"


def framing(value: bytes | None) -> str:
    """What the first bytes of a value say: Confluent framing with its schema id, or not."""
    if value is None:
        return "-"
    if len(value) >= FRAME_SIZE and value[0] == MAGIC_BYTE:
        return f"Confluent-framed Avro, schema id {int.from_bytes(value[1:FRAME_SIZE], 'big')}"
    return "not Confluent-framed Avro"


def show_lines(letter: StoredLetter) -> list[str]:
    """Every field of one dead letter, for ``sink dlq show`` (key and value as hex previews)."""
    fields = [
        ("id", str(letter.id)),
        ("message", str(letter.location)),
        ("event type", letter.event_type or "-"),
        ("error class", letter.error_class),
        ("error", letter.error_message),
        ("first seen", timestamp(letter.first_seen)),
        ("replayed at", timestamp(letter.replayed_at) if letter.replayed_at else "not replayed"),
        ("key", hex_preview(letter.key)),
        ("value", hex_preview(letter.value)),
        ("framing", framing(letter.value)),
    ]
    width = max(len(name) for name, _ in fields)
    lines = [f"{name.ljust(width)}  {value}" for name, value in fields]
    lines.append(f"{'headers'.ljust(width)}  {len(letter.headers)}")
    lines += [f"  {name}: {header_text(value)}" for name, value in letter.headers]
    return lines


# --- replaying -----------------------------------------------------------------------------------


class Outcome(enum.Enum):
    """What replaying one dead letter did."""

    STORED = "stored"
    ALREADY_STORED = "already stored"
    WOULD_REPLAY = "would replay"
    FAILED = "still failing"

    @property
    def succeeded(self) -> bool:
        return self is not Outcome.FAILED


@attrs.frozen
class ReplayResult:
    """The outcome of replaying one dead letter, with a detail (the reason when it failed)."""

    letter: StoredLetter
    outcome: Outcome
    detail: str

    def line(self) -> str:
        """``#12 topic[0]@42: stored (org.openedx…, ce_id …)``."""
        return f"#{self.letter.id} {self.letter.location}: {self.outcome.value}: {self.detail}"


def replay(
    letters: Iterable[StoredLetter],
    decoder: Decoder,
    warehouse: Warehouse,
    group_id: str,
    *,
    dry_run: bool = False,
) -> Iterator[ReplayResult]:
    """Replay each dead letter (see the module docstring), yielding its result as it goes.

    Raises:
        SinkError: A failure that is not the message's fault (registry or database unreachable,
            settings refused): the replay stops there; letters replayed before it stay replayed.
    """
    for letter in letters:
        yield _replay_one(letter, decoder, warehouse, group_id, dry_run=dry_run)


def _replay_one(
    letter: StoredLetter, decoder: Decoder, warehouse: Warehouse, group_id: str, *, dry_run: bool
) -> ReplayResult:
    if letter.value is None:
        return ReplayResult(letter, Outcome.FAILED, NO_RAW_VALUE)
    try:
        event = decoder.decode(letter.value, letter.headers, letter.location, key=letter.key)
    except SinkError as error:
        if not error.poison:
            raise
        reason = error.reason if isinstance(error, DecodeError) else str(error)
        return ReplayResult(letter, Outcome.FAILED, f"{type(error).__name__}: {reason}")
    described = f"{event.event_type}, ce_id {event.event_id}"
    if dry_run:
        return ReplayResult(letter, Outcome.WOULD_REPLAY, f"decodes as {described}")
    result = warehouse.write(Batch(events=[event]), group_id)
    if result.rejected:
        rejection = result.rejected[0]
        return ReplayResult(
            letter, Outcome.FAILED, f"{rejection.error_class}: {rejection.error_message}"
        )
    mark_replayed(warehouse.engine, [letter.id], datetime.now(UTC))
    outcome = Outcome.STORED if result.stored else Outcome.ALREADY_STORED
    return ReplayResult(letter, outcome, described)


def summary_lines(results: Sequence[ReplayResult], *, dry_run: bool = False) -> list[str]:
    """The closing summary of ``sink dlq replay``: counts, then the failures grouped by reason."""
    by_outcome = collections.Counter(result.outcome for result in results)
    failed: dict[str, list[int]] = {}
    for result in results:
        if not result.outcome.succeeded:
            failed.setdefault(result.detail, []).append(result.letter.id)
    if dry_run:
        head = f"dry run: {by_outcome[Outcome.WOULD_REPLAY]} would be replayed"
    else:
        replayed = by_outcome[Outcome.STORED] + by_outcome[Outcome.ALREADY_STORED]
        head = (
            f"replayed {replayed} ({by_outcome[Outcome.STORED]} stored,"
            f" {by_outcome[Outcome.ALREADY_STORED]} already stored)"
        )
    lines = [f"{head}, {by_outcome[Outcome.FAILED]} still failing"]
    for reason, ids in sorted(failed.items(), key=lambda item: (-len(item[1]), item[0])):
        lines.append(f"  {len(ids)}x {reason} (id {_id_list(ids)})")
    return lines


def _id_list(ids: Sequence[int], most: int = 10) -> str:
    shown = ", ".join(str(letter_id) for letter_id in ids[:most])
    return shown + (f", … {len(ids) - most} more" if len(ids) > most else "")
