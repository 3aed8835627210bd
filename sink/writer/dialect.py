"""What the warehouse asks of each database: engine settings, and the fast path for event rows.

:class:`Dialect` is the strategy interface of :class:`sink.writer.Warehouse`. A dialect stores the
rows of a batch inside the transaction it is given, and reports what it inserted; everything else
(transactions, dead letters, positions, finding rejected rows) is the warehouse's, the same on
every database.

The one rule every :meth:`Dialect.store_events` follows: a parent row whose ``event_id`` is already
stored is skipped, and child rows are inserted only for the parents this call inserted.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar

import attrs
import sqlalchemy as sa

from sink.writer.bookkeeping import InsertFactory, insert_factory
from sink.writer.failures import Failure, classify
from sink.writer.rows import EventRows, TableRows


@attrs.frozen
class Inserted:
    """What :meth:`Dialect.store_events` inserted.

    Attributes:
        events: Parent rows newly inserted (events stored).
        rows: Rows inserted per table, child tables included (tables with none left out).
    """

    events: int
    rows: dict[str, int]


class Dialect(abc.ABC):
    """One database's way of storing event rows (see the module docstring)."""

    #: SQLAlchemy backend name (``postgresql``, ``sqlite``, ``duckdb``).
    name: ClassVar[str]

    #: Exceptions a write may raise that :meth:`classify` knows how to sort.
    errors: ClassVar[tuple[type[BaseException], ...]] = (
        sa.exc.SQLAlchemyError,
        UnicodeEncodeError,
        OverflowError,
    )

    @abc.abstractmethod
    def create_engine(self, url: sa.URL) -> sa.Engine:
        """An engine for the warehouse at ``url``, configured for this dialect."""

    @abc.abstractmethod
    def store_events(self, connection: sa.Connection, groups: Sequence[TableRows]) -> Inserted:
        """Insert the rows of new events, in the connection's current transaction."""

    def unstorable(self, rows: EventRows) -> str | None:
        """Why the database cannot store these rows, when that can be told beforehand."""
        del rows
        return None

    def classify(self, error: BaseException) -> Failure:
        """The kind of a failure of this dialect's writes."""
        return classify(error)

    @property
    def insert(self) -> InsertFactory:
        """The ``INSERT … ON CONFLICT`` construct of this dialect."""
        return insert_factory(self.name)


def engine_options(**extra: Any) -> dict[str, Any]:
    """Engine settings shared by every dialect: no statement parameters in error messages.

    Parameters are event values, personal data among them; errors end up in logs.
    """
    return {"hide_parameters": True, **extra}
