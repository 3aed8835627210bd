"""The supported databases, by SQLAlchemy backend name."""

from __future__ import annotations

import importlib

import sqlalchemy as sa

from sink.config import mask_url
from sink.errors import ConfigError
from sink.writer.dialect import Dialect
from sink.writer.postgres import PostgresDialect
from sink.writer.sqlite import SqliteDialect

#: PostgreSQL drivers the writer accepts (COPY needs psycopg 3).
POSTGRES_DRIVERS = frozenset({"psycopg", "psycopg2"})


def dialect_for(url: str) -> Dialect:
    """The strategy of the database at ``url``.

    ``postgresql://`` and ``postgresql+psycopg2://`` URLs are served by psycopg 3 (the writer's
    COPY needs it); DuckDB needs the ``duckdb`` extra.

    Raises:
        ConfigError: The URL is invalid, names another database, or DuckDB is not installed.
    """
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigError("SINK_DATABASE_URL is not a database URL") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.get_driver_name() not in POSTGRES_DRIVERS:
            raise ConfigError(
                f"SINK_DATABASE_URL {mask_url(url)}: use postgresql+psycopg:// (psycopg 3)"
            )
        return PostgresDialect()
    if backend == "sqlite":
        return SqliteDialect()
    if backend == "duckdb":
        return _duckdb()
    raise ConfigError(
        f"SINK_DATABASE_URL {mask_url(url)}: unsupported database {backend!r}"
        " (supported: postgresql, sqlite, duckdb)"
    )


def _duckdb() -> Dialect:
    try:
        module = importlib.import_module("sink.writer.duckdb")
    except ImportError as error:
        raise ConfigError(
            f"DuckDB support is not installed ({error}): pip install 'openedx-event-sink[duckdb]'"
        ) from None
    dialect: Dialect = module.DuckDBDialect()
    return dialect
