"""Alembic environment: the URL comes from the sink's settings, or a connection is passed in.

``config.attributes["connection"]`` (set by code that already holds a connection, e.g. tests or
``sink migrate``) wins; otherwise ``SINK_DATABASE_URL`` is used, defaulting to the embedded
``sqlite:///sink.db``.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context

DEFAULT_DATABASE_URL = "sqlite:///sink.db"

# The warehouse tables are derived from the event catalog; until they exist there is no metadata.
target_metadata: sa.MetaData | None = None


def run_migrations(connection: sa.Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
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
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
