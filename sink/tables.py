"""SQLAlchemy metadata of the warehouse: every table Alembic manages, derived from the catalog.

* One **event table** per catalog table: the envelope columns
  (:data:`sink.flatten.ENVELOPE_COLUMNS`, primary key ``event_id``) then the payload columns of
  :func:`sink.flatten.table_model`. Indexes: ``(event_type, event_time)``, ``event_time``, and each
  user-id and course-key column.
* One **child table** per list attribute: ``event_id`` (foreign key to the parent, ``ON DELETE
  CASCADE``), ``position``, then ``value`` or the item's columns; primary key
  ``(event_id, position)``.
* The bookkeeping tables :data:`sink_offset` and :data:`sink_dead_letter`.

:func:`columns_of` gives the :class:`sink.flatten.Column` of every column of an event or child
table (path, ``personal``, ``user_id``, ``course_key``); a shortened column or child table carries
its full name in its comment.

Types work on PostgreSQL, SQLite and DuckDB. DuckDB lacks two things PostgreSQL and SQLite have,
so this module teaches SQLAlchemy's DuckDB DDL to do without them: foreign keys lose ``ON DELETE
CASCADE`` (DuckDB rejects cascades: delete child rows first there), and the identity column of
``sink_dead_letter`` becomes ``DEFAULT nextval('<table>_<column>_seq')``, a sequence that
:func:`create_sequences_ddl` makes (``metadata.create_all`` runs it by itself).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import DDLCompiler

from sink import flatten, naming
from sink.flatten import ChildTable, Column, LogicalType, TableModel


def _constraint_columns(constraint: Any) -> list[str]:
    return [column.name for column in constraint.columns]


def _ix_name(constraint: Any, table: sa.Table) -> str:
    return naming.constraint_name("ix", table.name, *_constraint_columns(constraint))


def _uq_name(constraint: Any, table: sa.Table) -> str:
    return naming.constraint_name("uq", table.name, *_constraint_columns(constraint))


def _fk_name(constraint: Any, table: sa.Table) -> str:
    return naming.constraint_name("fk", table.name, *_constraint_columns(constraint))


def _pk_name(constraint: Any, table: sa.Table) -> str:
    return naming.constraint_name("pk", table.name)


def _ck_name(constraint: Any, table: sa.Table) -> str:
    return naming.constraint_name("ck", table.name, str(constraint.name))


#: Constraint and index names: ``<kind>_<table>_<columns>``, cut to 63 characters with a hash.
NAMING_CONVENTION: Final[dict[str, Any]] = {
    "ix": "%(sink_ix)s",
    "uq": "%(sink_uq)s",
    "ck": "%(sink_ck)s",
    "fk": "%(sink_fk)s",
    "pk": "%(sink_pk)s",
    "sink_ix": _ix_name,
    "sink_uq": _uq_name,
    "sink_ck": _ck_name,
    "sink_fk": _fk_name,
    "sink_pk": _pk_name,
}

#: Every table Alembic manages.
metadata: Final = sa.MetaData(naming_convention=NAMING_CONVENTION)


def json_type() -> sa.types.TypeEngine[Any]:
    """JSON (JSONB on PostgreSQL); Python ``None`` is stored as SQL NULL."""
    return sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


_SQL_TYPES: Final[dict[LogicalType, Callable[[], sa.types.TypeEngine[Any]]]] = {
    LogicalType.TEXT: sa.Text,
    LogicalType.INTEGER: sa.Integer,
    LogicalType.BIGINT: sa.BigInteger,
    LogicalType.BOOLEAN: sa.Boolean,
    LogicalType.DOUBLE: sa.Double,
    LogicalType.TIMESTAMPTZ: lambda: sa.DateTime(timezone=True),
    LogicalType.UUID: sa.Uuid,
    LogicalType.JSON: json_type,
}


def sql_type(logical: LogicalType) -> sa.types.TypeEngine[Any]:
    """The SQLAlchemy type of a logical column type."""
    return _SQL_TYPES[logical]()


def _sa_column(column: Column) -> sa.Column[Any]:
    comment = f"full path: {column.full_name}" if column.shortened else None
    return sa.Column(
        column.name,
        sql_type(column.type),
        nullable=column.nullable,
        comment=comment,
    )


def _indexes(columns: tuple[Column, ...]) -> list[sa.Index]:
    return [sa.Index(None, c.name) for c in columns if c.user_id or c.course_key]


def event_table(model: TableModel) -> sa.Table:
    """Build the table of ``model`` in :data:`metadata`."""
    return sa.Table(
        model.name,
        metadata,
        *(_sa_column(column) for column in flatten.ENVELOPE_COLUMNS),
        *(_sa_column(column) for column in model.columns),
        sa.PrimaryKeyConstraint("event_id"),
        sa.Index(None, "event_type", "event_time"),
        sa.Index(None, "event_time"),
        *_indexes(model.columns),
    )


def child_table(model: TableModel, child: ChildTable) -> sa.Table:
    """Build the table of the list attribute ``child`` of ``model`` in :data:`metadata`."""
    return sa.Table(
        child.name,
        metadata,
        *(_sa_column(column) for column in flatten.CHILD_KEY_COLUMNS),
        *(_sa_column(column) for column in child.columns),
        sa.PrimaryKeyConstraint("event_id", "position"),
        sa.ForeignKeyConstraint(["event_id"], [f"{model.name}.event_id"], ondelete="CASCADE"),
        *_indexes(child.columns),
        comment=f"full name: {child.full_name}" if child.name != child.full_name else None,
    )


#: Consumer positions: the next offset to read, per consumer group, topic and partition.
sink_offset: Final = sa.Table(
    "sink_offset",
    metadata,
    sa.Column("consumer_group", sa.Text(), nullable=False),
    sa.Column("topic", sa.Text(), nullable=False),
    sa.Column("partition", sa.Integer(), nullable=False),
    sa.Column("next_offset", sa.BigInteger(), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("consumer_group", "topic", "partition"),
)

#: Messages that could not be stored, with the reason; ``replayed_at`` once replayed.
sink_dead_letter: Final = sa.Table(
    "sink_dead_letter",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.Identity(),
        nullable=False,
    ),
    sa.Column("topic", sa.Text(), nullable=False),
    sa.Column("partition", sa.Integer(), nullable=False),
    sa.Column("offset", sa.BigInteger(), nullable=False),
    sa.Column("key", sa.LargeBinary(), nullable=True),
    sa.Column("value", sa.LargeBinary(), nullable=True),
    sa.Column("headers", json_type(), nullable=False),
    sa.Column("event_type", sa.Text(), nullable=True),
    sa.Column("error_class", sa.Text(), nullable=False),
    sa.Column("error_message", sa.Text(), nullable=False),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("topic", "partition", "offset"),
    sa.Index(None, "event_type"),
)


def _build_event_tables() -> dict[str, sa.Table]:
    tables: dict[str, sa.Table] = {}
    for model in flatten.all_models():
        tables[model.name] = event_table(model)
        for child in model.children:
            tables[child.name] = child_table(model, child)
    return tables


def _build_column_models() -> dict[str, dict[str, Column]]:
    models: dict[str, dict[str, Column]] = {}
    for model in flatten.all_models():
        columns = (*flatten.ENVELOPE_COLUMNS, *model.columns)
        models[model.name] = {column.name: column for column in columns}
        for child in model.children:
            columns = (*flatten.CHILD_KEY_COLUMNS, *child.columns)
            models[child.name] = {column.name: column for column in columns}
    return models


#: Event and child tables by name, in catalog order (each event table before its children).
event_tables: Final[dict[str, sa.Table]] = _build_event_tables()

_COLUMN_MODELS: Final = _build_column_models()


def columns_of(table_name: str) -> dict[str, Column]:
    """Column name → :class:`sink.flatten.Column`, for an event or child table, in table order.

    Raises:
        KeyError: ``table_name`` is not an event or child table.
    """
    return _COLUMN_MODELS[table_name]


def personal_columns(table_name: str) -> tuple[str, ...]:
    """Names of the personal columns of an event or child table (see :mod:`sink.flatten`)."""
    return tuple(name for name, column in columns_of(table_name).items() if column.personal)


def table_for(table_name: str) -> sa.Table:
    """The table called ``table_name`` in :data:`metadata`.

    Raises:
        KeyError: No such table.
    """
    return metadata.tables[table_name]


# --- DuckDB ---------------------------------------------------------------------------------------


def identity_sequence(column: sa.Column[Any]) -> str:
    """Name of the DuckDB sequence standing in for ``column``'s identity."""
    return f"{column.table.name}_{column.name}_seq"


def _identity_sequences(table: sa.Table) -> list[sa.Sequence]:
    return [
        sa.Sequence(identity_sequence(column))
        for column in table.columns
        if column.identity is not None
    ]


def create_sequences_ddl(table: sa.Table) -> list[sa.schema.CreateSequence]:
    """``CREATE SEQUENCE`` for each identity column of ``table``: what DuckDB needs first."""
    return [sa.schema.CreateSequence(s, if_not_exists=True) for s in _identity_sequences(table)]


def drop_sequences_ddl(table: sa.Table) -> list[sa.schema.DropSequence]:
    """``DROP SEQUENCE`` for each identity column of ``table`` (after the table, on DuckDB)."""
    return [sa.schema.DropSequence(s, if_exists=True) for s in _identity_sequences(table)]


def _listen_for_duckdb_sequences(table: sa.Table) -> None:
    for create in create_sequences_ddl(table):
        sa.event.listen(table, "before_create", create.execute_if(dialect="duckdb"))
    for drop in drop_sequences_ddl(table):
        sa.event.listen(table, "after_drop", drop.execute_if(dialect="duckdb"))


_listen_for_duckdb_sequences(sink_dead_letter)


@compiles(sa.ForeignKeyConstraint, "duckdb")
def _duckdb_foreign_key(
    constraint: sa.ForeignKeyConstraint, compiler: DDLCompiler, **kw: Any
) -> str:
    """DuckDB rejects ``ON DELETE CASCADE``: render the foreign key without it."""
    text = compiler.visit_foreign_key_constraint(constraint, **kw)
    return text.replace(" ON DELETE CASCADE", "")


@compiles(sa.Identity, "duckdb")
def _duckdb_identity(identity: sa.Identity, compiler: DDLCompiler, **kw: Any) -> str:
    """DuckDB has no identity columns: default to the next value of a sequence instead."""
    if identity.column is None:
        raise TypeError("an identity must belong to a column")
    return f"DEFAULT nextval('{identity_sequence(identity.column)}')"
