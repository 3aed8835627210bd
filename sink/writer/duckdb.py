"""DuckDB (optional extra ``duckdb``): Arrow tables in, ``INSERT … SELECT`` out.

Per parent table of a batch, the parent rows become a pyarrow table registered with the DuckDB
connection, and::

    INSERT INTO parent (…) SELECT … FROM stage ORDER BY event_id
        ON CONFLICT DO NOTHING RETURNING event_id

inserts the new ones; the returned ids, registered in turn, select the child rows to insert from
their own Arrow tables. SQLAlchemy's ``executemany`` manages a few thousand rows a second into
DuckDB; this path a hundred thousand and more.

Arrow columns carry Python values as they are, except JSON (serialized text, as SQLAlchemy stores
it) and UUIDs (text, cast by DuckDB). Integers travel as 64-bit and are cast by DuckDB into
``INTEGER`` columns, so an out-of-range value is a DuckDB conversion error (a rejected row) rather
than an Arrow overflow. DuckDB has no savepoints; the warehouse finds rejected rows by probing in
transactions it rolls back, which works here as everywhere.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, Final

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type hints
import sqlalchemy as sa

from sink import tables
from sink.flatten import LogicalType
from sink.writer.dialect import Dialect, Inserted, engine_options
from sink.writer.failures import Failure, root_cause
from sink.writer.rows import TableRows

ARROW_TYPES: Final[dict[LogicalType, pa.DataType]] = {
    LogicalType.TEXT: pa.string(),
    LogicalType.INTEGER: pa.int64(),
    LogicalType.BIGINT: pa.int64(),
    LogicalType.BOOLEAN: pa.bool_(),
    LogicalType.DOUBLE: pa.float64(),
    LogicalType.TIMESTAMPTZ: pa.timestamp("us", tz="UTC"),
    LogicalType.UUID: pa.string(),
    LogicalType.JSON: pa.string(),
}

#: DuckDB errors that mean a value cannot be stored.
REJECTED_ERRORS: Final = (
    duckdb.ConversionException,
    duckdb.OutOfRangeException,
    duckdb.TypeMismatchException,
    duckdb.ConstraintException,
    duckdb.InvalidInputException,
    pa.ArrowInvalid,
)
#: DuckDB errors that mean a table or column is missing.
SCHEMA_ERRORS: Final = (duckdb.CatalogException, duckdb.BinderException)

_PARENT_VIEW: Final = "sink_stage_parent"
_CHILD_VIEW: Final = "sink_stage_child"
_NEW_IDS_VIEW: Final = "sink_stage_new_ids"
_ONLY_NEW_PARENTS: Final = " WHERE event_id IN (SELECT event_id FROM sink_stage_new_ids)"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@functools.cache
def _column_list(table: str) -> str:
    return ", ".join(_quote(column) for column in tables.columns_of(table))


# The statements below are built from the sink's own table and column names (quoted), never
# from event data: hence the S608 exemptions.


@functools.cache
def _parent_insert(table: str) -> str:
    target, columns = _quote(table), _column_list(table)
    insert = f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {_PARENT_VIEW}"  # noqa: S608
    return insert + " ORDER BY event_id ON CONFLICT DO NOTHING RETURNING event_id"


@functools.cache
def _child_insert(table: str) -> str:
    target, columns = _quote(table), _column_list(table)
    insert = f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {_CHILD_VIEW}"  # noqa: S608
    return insert + _ONLY_NEW_PARENTS


def _arrow_value(kind: LogicalType) -> Any:
    if kind is LogicalType.JSON:
        return lambda value: None if value is None else json.dumps(value)
    if kind is LogicalType.UUID:
        return lambda value: None if value is None else str(value)
    return None


def arrow_table(table: str, rows: list[dict[str, Any]]) -> pa.Table:
    """``rows`` (dicts in table column order) as a pyarrow table typed for ``table``."""
    columns = tables.columns_of(table)
    values = list(zip(*(row.values() for row in rows), strict=True))
    arrays = {}
    for (name, column), column_values in zip(columns.items(), values, strict=True):
        convert = _arrow_value(column.type)
        data = column_values if convert is None else [convert(value) for value in column_values]
        arrays[name] = pa.array(data, type=ARROW_TYPES[column.type])
    return pa.table(arrays)


class DuckDBDialect(Dialect):
    """The DuckDB strategy (see the module docstring)."""

    name: ClassVar[str] = "duckdb"
    errors: ClassVar[tuple[type[BaseException], ...]] = (
        *Dialect.errors,
        duckdb.Error,
        pa.ArrowException,
    )

    def create_engine(self, url: sa.URL) -> sa.Engine:
        return sa.create_engine(url, **engine_options())

    def classify(self, error: BaseException) -> Failure:
        root = root_cause(error)
        if isinstance(root, REJECTED_ERRORS):
            return Failure.REJECTED
        if isinstance(root, SCHEMA_ERRORS):
            return Failure.SCHEMA
        return super().classify(error)

    def store_events(self, connection: sa.Connection, groups: Sequence[TableRows]) -> Inserted:
        raw: Any = connection.connection.driver_connection
        stored = 0
        counts: dict[str, int] = {}
        for group in groups:
            new_ids = _insert_parents(raw, group)
            if new_ids.num_rows == 0:
                continue
            stored += new_ids.num_rows
            counts[group.table] = new_ids.num_rows
            with _registered(raw, _NEW_IDS_VIEW, new_ids):
                for child, rows in group.children.items():
                    if inserted := _insert_children(raw, child, rows):
                        counts[child] = inserted
        return Inserted(stored, counts)


@contextmanager
def _registered(raw: Any, view: str, table: pa.Table) -> Iterator[None]:
    """``table`` registered as ``view`` for the duration of the block.

    After an error the view is left alone: the transaction is aborted then (DuckDB refuses to
    unregister), and its rollback drops the view anyway.
    """
    raw.register(view, table)
    yield
    raw.unregister(view)


def _insert_parents(raw: Any, group: TableRows) -> pa.Table:
    """Insert the new parent rows of ``group``; their ids."""
    with _registered(raw, _PARENT_VIEW, arrow_table(group.table, group.rows)):
        returned = raw.execute(_parent_insert(group.table)).fetchall()
    return pa.table({"event_id": pa.array([row[0] for row in returned], type=pa.string())})


def _insert_children(raw: Any, table: str, rows: list[dict[str, Any]]) -> int:
    """Insert the rows of ``table`` whose parent is new; how many."""
    with _registered(raw, _CHILD_VIEW, arrow_table(table, rows)):
        result = raw.execute(_child_insert(table)).fetchone()
    return 0 if result is None else int(result[0])
