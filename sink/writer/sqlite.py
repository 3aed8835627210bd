"""SQLite, the default embedded warehouse (``sqlite:///sink.db``).

Connections run in WAL mode (readers never block the writer), with ``synchronous=NORMAL`` (a power
cut may lose the last transactions, never half of one: rows and positions go together), foreign
keys enforced and a busy timeout. Every transaction starts with ``BEGIN IMMEDIATE``, taking the
database's single write lock up front, so checking which events are already stored and inserting
the others cannot race with another writer.

Rows go in with ``executemany`` of plain ``INSERT``s: the events already stored are looked up
first and left out, so an unexpected conflict is an error rather than a silently lost child row.
The statement is compiled once per table and its parameters converted the way SQLAlchemy's own
types convert them (JSON text, UUID hex, datetimes as ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC), by
functions prepared once per column: SQLAlchemy's per-row parameter processing took two thirds of
the time of an insert.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, ClassVar, Final

import attrs
import sqlalchemy as sa

from sink.tables import table_for
from sink.writer.dialect import Dialect, Inserted, engine_options
from sink.writer.rows import TableRows

#: Ids per ``IN (...)`` lookup (SQLite allows 32,766 variables per statement).
LOOKUP_CHUNK: Final = 2_000
BUSY_TIMEOUT_MS: Final = 30_000
#: Length of ``YYYY-MM-DD HH:MM:SS.ffffff``.
DATETIME_LENGTH: Final = 26
PRAGMAS: Final = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
)


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN IMMEDIATE instead of pysqlite's lazy BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _on_begin(connection: sa.Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def configure_sqlite(engine: sa.Engine) -> sa.Engine:
    """Install the connection settings of the module docstring on an SQLite engine."""
    sa.event.listen(engine, "connect", _on_connect)
    sa.event.listen(engine, "begin", _on_begin)
    return engine


#: Converts one column value (never None) to what sqlite3 stores.
Converter = Callable[[Any], Any]


def sqlite_datetime(value: datetime) -> str:
    """SQLAlchemy's SQLite text form of a datetime (its wall time: the writer's are UTC).

    The first 26 characters of the ISO form (years have 4 digits): the UTC offset cut off, which
    is quicker than removing the time zone first.
    """
    return value.isoformat(" ", "microseconds")[:DATETIME_LENGTH]


@attrs.frozen
class _Insert:
    """The compiled ``INSERT`` of one table and the converters of its parameters."""

    sql: str
    converters: tuple[tuple[int, Converter], ...]

    def parameters(self, row: dict[str, Any]) -> list[Any]:
        """The parameters of ``row`` (a dict in table column order)."""
        values = list(row.values())
        for index, convert in self.converters:
            if (value := values[index]) is not None:
                values[index] = convert(value)
        return values


def _converter(column: sa.Column[Any], dialect: sa.Dialect) -> Converter | None:
    if isinstance(column.type, sa.DateTime):
        return sqlite_datetime
    if isinstance(column.type, sa.Boolean | sa.Integer | sa.Float | sa.Text):
        return None  # sqlite3 binds these as they are
    processor: Converter | None = column.type.dialect_impl(dialect).bind_processor(dialect)
    return processor


@functools.cache
def _insert(table_name: str, dialect: sa.Dialect) -> _Insert:
    table = table_for(table_name)
    names = list(table.columns.keys())
    compiled = sa.insert(table).compile(dialect=dialect, column_keys=names)
    if list(compiled.positiontup or ()) != names:
        raise RuntimeError(f"unexpected parameter order of the INSERT into {table_name}")
    converters = tuple(
        (index, convert)
        for index, column in enumerate(table.columns)
        if (convert := _converter(column, dialect)) is not None
    )
    return _Insert(str(compiled), converters)


def _insert_rows(connection: sa.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    insert = _insert(table, connection.dialect)
    connection.exec_driver_sql(insert.sql, [tuple(insert.parameters(row)) for row in rows])


class SqliteDialect(Dialect):
    """The SQLite strategy: look up stored ids, then ``executemany`` the new rows."""

    name: ClassVar[str] = "sqlite"

    def create_engine(self, url: sa.URL) -> sa.Engine:
        return configure_sqlite(sa.create_engine(url, **engine_options()))

    def store_events(self, connection: sa.Connection, groups: Sequence[TableRows]) -> Inserted:
        stored = 0
        counts: dict[str, int] = {}
        for group in groups:
            new_rows = _new_rows(connection, group)
            if not new_rows:
                continue
            _insert_rows(connection, group.table, new_rows)
            stored += len(new_rows)
            counts[group.table] = len(new_rows)
            new_ids = {row["event_id"] for row in new_rows}
            for child, rows in group.children.items():
                kept = [row for row in rows if row["event_id"] in new_ids]
                if kept:
                    _insert_rows(connection, child, kept)
                    counts[child] = len(kept)
        return Inserted(stored, counts)


def _new_rows(connection: sa.Connection, group: TableRows) -> list[dict[str, Any]]:
    """The parent rows of ``group`` whose ``event_id`` is not stored yet."""
    event_id = table_for(group.table).c.event_id
    ids = [row["event_id"] for row in group.rows]
    stored: set[str] = set()
    for chunk in _chunks(ids, LOOKUP_CHUNK):
        stored.update(connection.execute(sa.select(event_id).where(event_id.in_(chunk))).scalars())
    return [row for row in group.rows if row["event_id"] not in stored]


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
