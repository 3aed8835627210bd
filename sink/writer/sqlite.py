"""SQLite, the default embedded warehouse (``sqlite:///sink.db``).

Connections run in WAL mode (readers never block the writer), with ``synchronous=NORMAL`` (a power
cut may lose the last transactions, never half of one: rows and positions go together), foreign
keys enforced and a busy timeout. Every transaction starts with ``BEGIN IMMEDIATE``, taking the
database's single write lock up front, so checking which events are already stored and inserting
the others cannot race with another writer.

Rows go in with ``executemany`` of plain ``INSERT``s: the events already stored are looked up
first and left out, so an unexpected conflict is an error rather than a silently lost child row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Final

import sqlalchemy as sa

from sink.tables import table_for
from sink.writer.dialect import Dialect, Inserted, engine_options
from sink.writer.rows import TableRows

#: Ids per ``IN (...)`` lookup (SQLite allows 32,766 variables per statement).
LOOKUP_CHUNK: Final = 2_000
BUSY_TIMEOUT_MS: Final = 30_000
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
            connection.execute(table_for(group.table).insert(), new_rows)
            stored += len(new_rows)
            counts[group.table] = len(new_rows)
            new_ids = {row["event_id"] for row in new_rows}
            for child, rows in group.children.items():
                kept = [row for row in rows if row["event_id"] in new_ids]
                if kept:
                    connection.execute(table_for(child).insert(), kept)
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
