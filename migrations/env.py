"""Alembic environment: the URL comes from the sink's settings, or a connection is passed in.

``config.attributes["connection"]`` (set by code that already holds a connection, e.g. tests or
``sink migrate``) wins; otherwise ``SINK_DATABASE_URL`` is used, defaulting to the embedded
``sqlite:///sink.db``.

The models are :data:`sink.tables.metadata`. Tables are created unqualified, so on PostgreSQL they
land in the first schema of the connection's ``search_path`` (``-c search_path=…`` in the
connection options), and so does ``alembic_version``; autogenerate compares that same schema.

SQLite gets batch mode (``ALTER`` by table copy). DuckDB works through the small
:class:`sink.schema_check.DuckDBImpl`, which creates the sequences that stand in for identity
columns there (see :mod:`sink.tables`).
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context

from sink import tables
from sink.schema_check import DuckDBImpl  # noqa: F401 - defining it registers DuckDB with Alembic

DEFAULT_DATABASE_URL = "sqlite:///sink.db"

target_metadata: sa.MetaData = tables.metadata


def run_migrations(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    url = os.environ.get("SINK_DATABASE_URL", DEFAULT_DATABASE_URL)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        run_migrations(connection)


def run_offline() -> None:
    url = os.environ.get("SINK_DATABASE_URL", DEFAULT_DATABASE_URL)
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
