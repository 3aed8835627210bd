"""PostgreSQL: binary ``COPY`` into temporary staging tables, then ``INSERT … SELECT``.

Per parent table of a batch, the rows of the parent and of each child table are copied (psycopg 3,
binary format) into session-private staging tables, then one statement moves them::

    WITH new_rows AS (
        INSERT INTO parent (…) SELECT … FROM pg_temp.stage_parent ORDER BY event_id
        ON CONFLICT (event_id) DO NOTHING RETURNING event_id
    ), child_1 AS (
        INSERT INTO child (…) SELECT … FROM pg_temp.stage_child
        WHERE event_id IN (SELECT event_id FROM new_rows) RETURNING 1
    ) SELECT (SELECT count(*) FROM new_rows), (SELECT count(*) FROM child_1)

so child rows go in exactly for the parents this statement inserted — also when another replica
inserts the same event concurrently (``ON CONFLICT`` waits for it, then skips). Parents are
inserted in ``event_id`` order, so two writers lock shared ids in the same order. Foreign keys are
checked at the end of the statement, when the parents are there.

Staging tables are ``TEMP … ON COMMIT DELETE ROWS``, created once per connection (``IF NOT
EXISTS``, since a rolled-back transaction takes its new tables with it), and named after their
table and a digest of its columns (a connection that outlives a migration gets new ones). Their
columns carry no constraints, and integer columns are ``bigint`` there: binary ``COPY`` would
silently truncate an 8-byte value into an ``integer`` column, while the ``INSERT`` casts with a
range check.

Before any of this, :meth:`PostgresDialect.unstorable` rejects events holding a NUL character
(text and JSON cannot store one) without a round trip.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Final

import attrs
import psycopg
import sqlalchemy as sa
from psycopg import sql
from psycopg.types.json import set_json_dumps

from sink import jsontext, naming, tables
from sink.flatten import LogicalType
from sink.writer.dialect import Dialect, Inserted, engine_options
from sink.writer.rows import EventRows, TableRows

#: Seconds to wait for a connection before the database counts as unreachable.
CONNECT_TIMEOUT_S: Final = 10
DRIVER: Final = "postgresql+psycopg"

#: Column types of the staging tables (integers widened: see the module docstring).
STAGE_TYPES: Final[dict[LogicalType, str]] = {
    LogicalType.TEXT: "text",
    LogicalType.INTEGER: "int8",
    LogicalType.BIGINT: "int8",
    LogicalType.BOOLEAN: "bool",
    LogicalType.DOUBLE: "float8",
    LogicalType.TIMESTAMPTZ: "timestamptz",
    LogicalType.UUID: "uuid",
    LogicalType.JSON: "jsonb",
}


@attrs.frozen
class _Stage:
    """A table's staging table and the statements that fill it."""

    table: str
    name: str
    columns: tuple[str, ...]
    create: sql.Composed
    copy: sql.Composed
    types: tuple[str, ...]


@functools.cache
def _stage(table: str) -> _Stage:
    """The staging table of ``table`` (built once per table)."""
    columns = tuple(tables.columns_of(table))
    types = tuple(STAGE_TYPES[column.type] for column in tables.columns_of(table).values())
    name = naming.constraint_name("stage", table, _digest(columns, types))
    definitions = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL(kind))
        for column, kind in zip(columns, types, strict=True)
    )
    create = sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(
        sql.Identifier(name), definitions
    )
    copy = sql.SQL("COPY pg_temp.{} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(name), _column_list(columns)
    )
    return _Stage(table, name, columns, create, copy, types)


def _digest(columns: Sequence[str], types: Sequence[str]) -> str:
    """8 hex digits naming a staging table's columns: a connection that outlives a migration
    creates a new staging table instead of copying into one of the old shape."""
    text = ",".join(f"{column} {kind}" for column, kind in zip(columns, types, strict=True))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _column_list(columns: Sequence[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(column) for column in columns)


@functools.cache
def _move_statement(table: str, children: tuple[str, ...]) -> sql.Composed:
    """The ``INSERT … SELECT`` of the module docstring for ``table`` and these child tables."""
    parent = _stage(table)
    parts: list[sql.Composable] = [
        sql.SQL(
            "new_rows AS (INSERT INTO {table} ({columns}) SELECT {columns} FROM pg_temp.{stage}"
            " ORDER BY event_id ON CONFLICT (event_id) DO NOTHING RETURNING event_id)"
        ).format(
            table=sql.Identifier(table),
            columns=_column_list(parent.columns),
            stage=sql.Identifier(parent.name),
        )
    ]
    counts: list[sql.Composable] = [sql.SQL("(SELECT count(*) FROM new_rows)")]
    for number, child in enumerate(children, start=1):
        stage = _stage(child)
        alias = sql.Identifier(f"child_{number}")
        parts.append(
            sql.SQL(
                "{alias} AS (INSERT INTO {table} ({columns}) SELECT {columns}"
                " FROM pg_temp.{stage} WHERE event_id IN (SELECT event_id FROM new_rows)"
                " RETURNING 1)"
            ).format(
                alias=alias,
                table=sql.Identifier(child),
                columns=_column_list(stage.columns),
                stage=sql.Identifier(stage.name),
            )
        )
        counts.append(sql.SQL("(SELECT count(*) FROM {})").format(alias))
    return sql.SQL("WITH {} SELECT {}").format(
        sql.SQL(", ").join(parts), sql.SQL(", ").join(counts)
    )


def has_nul(value: Any) -> bool:
    """Whether a column value holds a NUL character (in text, or anywhere in a JSON document)."""
    if isinstance(value, dict | list):
        # Serialized, a NUL is always the escape \u0000: one fast scan instead of a Python walk
        # for documents without one (the walk confirms: the text "\u0000" would match too).
        return b"\\u0000" in jsontext.dumps(value) and _walk_has_nul(value)
    return _walk_has_nul(value)


def _walk_has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_walk_has_nul(key) or _walk_has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_walk_has_nul(item) for item in value)
    return False


#: Finds the first column of a row that holds a NUL character (None if none does).
NulCheck = Callable[[dict[str, Any]], str | None]


@functools.cache
def _nul_check(table: str) -> NulCheck:
    """The NUL check of ``table``'s rows: only its text and JSON columns can hold one."""
    columns = tables.columns_of(table)
    texts = tuple(name for name, column in columns.items() if column.type is LogicalType.TEXT)
    documents = tuple(name for name, column in columns.items() if column.type is LogicalType.JSON)

    def check(row: dict[str, Any]) -> str | None:
        for name in texts:
            value = row[name]
            if value is not None and "\x00" in value:
                return name
        for name in documents:
            if has_nul(row[name]):
                return name
        return None

    return check


class PostgresDialect(Dialect):
    """The PostgreSQL strategy (see the module docstring)."""

    name: ClassVar[str] = "postgresql"
    errors: ClassVar[tuple[type[BaseException], ...]] = (*Dialect.errors, psycopg.Error)

    def create_engine(self, url: sa.URL) -> sa.Engine:
        connect_args: dict[str, Any] = {}
        if "connect_timeout" not in url.query:
            connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
        return sa.create_engine(
            url.set(drivername=DRIVER),
            **engine_options(pool_pre_ping=True, connect_args=connect_args),
        )

    def unstorable(self, rows: EventRows) -> str | None:
        if (column := _nul_check(rows.table)(rows.row)) is not None:
            return f"column {column} holds a NUL character, which PostgreSQL cannot store"
        for child, child_rows in rows.children.items():
            check = _nul_check(child)
            for row in child_rows:
                if (column := check(row)) is not None:
                    return f"{child}.{column} holds a NUL character, which PostgreSQL cannot store"
        return None

    def store_events(self, connection: sa.Connection, groups: Sequence[TableRows]) -> Inserted:
        cursor = _driver_connection(connection).cursor()
        set_json_dumps(jsontext.dumps, context=cursor)
        stored = 0
        counts: dict[str, int] = {}
        for group in groups:
            children = tuple(group.children)
            for table, rows in ((group.table, group.rows), *group.children.items()):
                _copy(cursor, _stage(table), rows)
            cursor.execute(_move_statement(group.table, children))
            numbers = cursor.fetchone()
            if numbers is None:
                raise RuntimeError("INSERT … SELECT returned no counts")
            stored += numbers[0]
            for table, number in zip((group.table, *children), numbers, strict=True):
                if number:
                    counts[table] = number
        return Inserted(stored, counts)


def _driver_connection(connection: sa.Connection) -> psycopg.Connection[Any]:
    driver = connection.connection.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise TypeError(f"the PostgreSQL writer needs psycopg 3, not {type(driver).__name__}")
    return driver


def _copy(cursor: psycopg.Cursor[Any], stage: _Stage, rows: list[dict[str, Any]]) -> None:
    """Create the staging table if needed and copy ``rows`` (in table column order) into it."""
    cursor.execute(stage.create)
    with cursor.copy(stage.copy) as copy:
        copy.set_types(list(stage.types))
        for row in rows:
            copy.write_row(tuple(row.values()))
