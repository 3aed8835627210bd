"""The warehouse writer: one batch, one transaction, idempotent, on any supported database.

:meth:`Warehouse.write` stores a :class:`~sink.batch.Batch` — parent rows, child rows, dead letters
and the consumer positions — in **one transaction**. It is :meth:`Warehouse.prepare` (step 1, CPU
only) then :meth:`Warehouse.store` (steps 2 and 3, the database), which the daemon runs on two
threads so that the next batch is prepared while one is stored:

1. Events with the same ``event_id`` as an earlier event of the batch are left out (the first
   wins); every event becomes its rows (:mod:`sink.writer.rows`, PII policy applied), and events
   the database is known to refuse (:meth:`Dialect.unstorable`) become dead letters.
2. The dialect's fast path stores the rows, skipping events already stored (first write wins)
   together with their child rows; then dead letters (idempotent by message location) and
   positions (upserted) follow, and the transaction commits.
3. If the database rejects a value (:attr:`Failure.REJECTED`), the transaction is rolled back and
   the events responsible are found by bisection: halves of the failing set are stored in
   transactions that are always rolled back, down to single events. Those become dead letters with
   the database's error class and message, and step 2 runs again without them. With *k* bad
   events among *n*, that costs about 2·k·log₂ n probes.

Failures other than rejected values leave nothing behind (the transaction is rolled back) and are
raised as: :class:`~sink.errors.DatabaseUnavailableError` (transient: the daemon retries the same
batch; the connection pool is discarded so the next attempt reconnects),
:class:`~sink.errors.SchemaOutOfDateError` (a table or column is missing),
:class:`~sink.errors.DatabaseAccessError` (the login, database or a permission is refused: fix
``SINK_DATABASE_URL``), or :class:`~sink.errors.WarehouseError` (anything else: fatal). The batch
is never modified.

The result counts add up: ``stored + duplicates + dead_letters == len(batch)``, where
``duplicates`` are events already stored (or repeated within the batch) and ``dead_letters`` the
batch's own dead letters plus the events whose rows could not be stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Final

import attrs
import sqlalchemy as sa

from sink.batch import Batch, DeadLetter, WriteResult
from sink.config import PiiPolicy, Settings
from sink.decoder import DecodedEvent
from sink.errors import (
    MessageLocation,
    SinkError,
    UnstorableValueError,
    WarehouseError,
)
from sink.pii import Pii
from sink.schema_check import ensure_at_head
from sink.writer import bookkeeping
from sink.writer.dialect import Dialect, Inserted
from sink.writer.dialects import dialect_for
from sink.writer.failures import Failure, as_sink_error, describe
from sink.writer.rows import EventRows, RowBuilder, by_table, first_occurrences

log = logging.getLogger(__name__)

Partition = tuple[str, int]

#: Rounds of "write, find the rejected events" before a rejection is taken as fatal.
MAX_ROUNDS: Final = 3


class _EventsRejectedError(Exception):
    """Internal: the fast path failed on a rejected value (``error``)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


@attrs.define
class Prepared:
    """A batch with the rows of its events, ready for :meth:`Warehouse.store`.

    Attributes:
        batch: The batch (events, dead letters, positions).
        rows: The rows of its events (the first of each ``event_id``), in batch order.
        rejected: Dead letters for the events the database is known to refuse.
    """

    batch: Batch
    rows: list[EventRows]
    rejected: list[DeadLetter]

    def without(self, partitions: set[Partition]) -> None:
        """Drop everything of ``partitions`` (revoked): events, rows, dead letters, positions."""
        kept = _not_in(partitions)
        batch = self.batch
        batch.events = [event for event in batch.events if kept(event.location)]
        batch.dead_letters = [letter for letter in batch.dead_letters if kept(letter.location)]
        batch.positions = {k: v for k, v in batch.positions.items() if k not in partitions}
        self.rows = [rows for rows in self.rows if kept(rows.event.location)]
        self.rejected = [letter for letter in self.rejected if kept(letter.location)]


def _not_in(partitions: set[Partition]) -> Callable[[MessageLocation], bool]:
    return lambda location: (location.topic, location.partition) not in partitions


class Warehouse:
    """The sink's store: writes batches and reads positions (the daemon's ``Store``).

    Args:
        url: SQLAlchemy URL: ``postgresql://…`` (psycopg 3 is used), ``sqlite:///sink.db``,
            ``duckdb:///sink.duckdb``.
        pii: The PII policy, by name or as a :class:`~sink.pii.Pii`.
        pii_key: HMAC key of the ``hash`` policy (when ``pii`` is a name).

    Raises:
        ConfigError: Unsupported database, or ``hash`` without a key.
    """

    def __init__(
        self, url: str, pii: Pii | PiiPolicy = "drop", pii_key: bytes | None = None
    ) -> None:
        self.dialect: Dialect = dialect_for(url)
        self.engine: sa.Engine = self.dialect.create_engine(sa.make_url(url))
        self.pii = pii if isinstance(pii, Pii) else Pii(pii, pii_key)
        self._rows = RowBuilder(self.pii)

    @classmethod
    def from_settings(cls, settings: Settings) -> Warehouse:
        """The warehouse of ``SINK_DATABASE_URL`` with the settings' PII policy."""
        return cls(settings.database_url.value, Pii.from_settings(settings))

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def check_schema(self) -> None:
        """Return when the database schema is at the Alembic head revision.

        Raises:
            SchemaOutOfDateError: It is not: the message tells the user to run ``sink migrate``.
            DatabaseUnavailableError: The database cannot be reached.
        """
        with self._translated_errors():
            ensure_at_head(self.engine)

    # --- the Store protocol ----------------------------------------------------------------------

    def write(self, batch: Batch, group_id: str) -> WriteResult:
        """Store the batch and its positions in one transaction (idempotent)."""
        return self.store(self.prepare(batch), group_id)

    def prepare(self, batch: Batch) -> Prepared:
        """The rows of the batch's events (PII policy applied), without touching the database.

        The CPU-bound half of :meth:`write`: the daemon prepares the next batch while the
        previous one is stored. Events the database is known to refuse become dead letters here.
        """
        ingested_at = datetime.now(UTC)
        rows, rejected = self._prepare(first_occurrences(batch.events), ingested_at)
        return Prepared(batch, rows, rejected)

    def store(self, prepared: Prepared, group_id: str) -> WriteResult:
        """The database half of :meth:`write`: one transaction (idempotent)."""
        with self._translated_errors():
            return self._write(prepared, group_id)

    def positions(self, group_id: str, partitions: Iterable[Partition]) -> dict[Partition, int]:
        """Stored next offsets of these partitions (absent when never stored)."""
        with self._translated_errors(), self.engine.connect() as connection:
            return bookkeeping.read_positions(connection, group_id, partitions)

    # --- writing ---------------------------------------------------------------------------------

    def _write(self, ready: Prepared, group_id: str) -> WriteResult:
        batch, prepared, rejected = ready.batch, list(ready.rows), list(ready.rejected)
        for _round in range(MAX_ROUNDS):
            letters = [*batch.dead_letters, *rejected]
            try:
                inserted = self._commit(prepared, letters, batch.positions, group_id)
            except _EventsRejectedError as rejection:
                culprits = self._find_rejected(prepared, rejection.error)
                if not culprits:
                    raise rejection.error from None
                rejected += [_letter(prepared[index].event, error) for index, error in culprits]
                dropped = {index for index, _error in culprits}
                prepared = [rows for index, rows in enumerate(prepared) if index not in dropped]
                continue
            return _result(batch, inserted, rejected)
        raise WarehouseError(
            f"the database kept rejecting rows after {MAX_ROUNDS} rounds of dead-lettering"
        )

    def _prepare(
        self, events: Sequence[DecodedEvent], ingested_at: datetime
    ) -> tuple[list[EventRows], list[DeadLetter]]:
        """The rows of each event, and dead letters for those the database cannot store."""
        prepared: list[EventRows] = []
        rejected: list[DeadLetter] = []
        for event in events:
            rows = self._rows.build(event, ingested_at)
            if (reason := self.dialect.unstorable(rows)) is None:
                prepared.append(rows)
            else:
                error_class = UnstorableValueError.__name__
                _log_dead_letter(event, error_class, reason)
                rejected.append(bookkeeping.rejected_event(event, error_class, reason))
        return prepared, rejected

    def _commit(
        self,
        prepared: Sequence[EventRows],
        letters: list[DeadLetter],
        positions: dict[Partition, int],
        group_id: str,
    ) -> Inserted:
        """Rows, dead letters and positions in one transaction."""
        with self.engine.begin() as connection:
            try:
                inserted = self.dialect.store_events(connection, by_table(prepared))
            except self.dialect.errors as error:
                if self.dialect.classify(error) is Failure.REJECTED:
                    raise _EventsRejectedError(error) from error
                raise
            letters = sorted(letters, key=lambda letter: _location_key(letter.location))
            bookkeeping.store_dead_letters(connection, letters, self.dialect.insert)
            bookkeeping.store_positions(connection, group_id, positions, self.dialect.insert)
        return inserted

    # --- finding rejected events -----------------------------------------------------------------

    def _find_rejected(
        self, prepared: Sequence[EventRows], error: BaseException
    ) -> list[tuple[int, BaseException]]:
        """Indexes of the events whose rows the database rejects, with its error for each."""
        found: list[tuple[int, BaseException]] = []
        pending: list[tuple[list[int], BaseException]] = [(list(range(len(prepared))), error)]
        with self.engine.connect() as connection:
            while pending:
                indexes, failure = pending.pop()
                if len(indexes) == 1:
                    found.append((indexes[0], failure))
                    continue
                middle = len(indexes) // 2
                for half in (indexes[:middle], indexes[middle:]):
                    events = [prepared[index] for index in half]
                    if (half_failure := self._probe(connection, events)) is not None:
                        pending.append((half, half_failure))
        for index, failure in found:
            _log_dead_letter(prepared[index].event, *describe(failure))
        return sorted(found, key=lambda pair: pair[0])

    def _probe(
        self, connection: sa.Connection, events: Sequence[EventRows]
    ) -> BaseException | None:
        """Store ``events`` in a transaction that is rolled back; the rejection, if any."""
        transaction = connection.begin()
        try:
            self.dialect.store_events(connection, by_table(events))
        except self.dialect.errors as error:
            if self.dialect.classify(error) is Failure.REJECTED:
                return error
            raise
        finally:
            transaction.rollback()
        return None

    # --- errors ----------------------------------------------------------------------------------

    @contextmanager
    def _translated_errors(self) -> Iterator[None]:
        """Raise database errors as the sink's errors (see the module docstring)."""
        try:
            yield
        except SinkError:
            raise
        except self.dialect.errors as error:
            raise self._translated(error) from error

    def _translated(self, error: BaseException) -> SinkError:
        kind = self.dialect.classify(error)
        if kind is Failure.TRANSIENT:
            self.engine.dispose()  # the next attempt reconnects
        return as_sink_error(error, kind)


def _location_key(location: MessageLocation) -> tuple[str, int, int]:
    return (location.topic, location.partition, location.offset)


def _log_dead_letter(event: DecodedEvent, error_class: str, message: str) -> None:
    location = event.location
    log.warning(
        "dead letter: the database cannot store the rows of %s: %s: %s",
        event.event_type,
        error_class,
        message,
        extra={"topic": location.topic, "partition": location.partition,
               "offset": location.offset, "ce_id": event.event_id, "error_class": error_class},
    )  # fmt: skip


def _letter(event: DecodedEvent, error: BaseException) -> DeadLetter:
    error_class, message = describe(error)
    return bookkeeping.rejected_event(event, error_class, message)


def _result(batch: Batch, inserted: Inserted, rejected: Sequence[DeadLetter]) -> WriteResult:
    """The counts of the module docstring; ``rejected``: events dead-lettered by the writer."""
    return WriteResult(
        stored=inserted.events,
        duplicates=len(batch.events) - inserted.events - len(rejected),
        dead_letters=len(batch.dead_letters) + len(rejected),
        rows=inserted.rows,
        rejected=tuple(rejected),
    )
