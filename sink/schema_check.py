"""Is the database schema the one this sink needs? And ``migrate``, which makes it so.

The schema belongs to Alembic (``migrations/``). The daemon refuses to start unless the database is
at the head revision (:func:`ensure_at_head`); ``sink migrate`` (:func:`migrate`) upgrades it.

Several replicas may run ``sink migrate`` at once on PostgreSQL: each takes the transaction-level
advisory lock :data:`MIGRATION_LOCK` first, so one upgrades while the others wait, then find the
schema at head and do nothing. (SQLite serializes writers by itself; DuckDB allows one process.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.ddl.impl import DefaultImpl
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from sink import tables
from sink.errors import SchemaOutOfDateError

#: The checkout holding ``alembic.ini`` and ``migrations/`` (when running from one).
PROJECT_ROOT: Final = Path(__file__).resolve().parents[1]
ALEMBIC_INI: Final = PROJECT_ROOT / "alembic.ini"
#: Where a wheel carries ``migrations/`` (see ``pyproject.toml``).
PACKAGED_MIGRATIONS: Final = Path(__file__).resolve().parent / "migrations"


def migrations_directory() -> Path:
    """The Alembic scripts: inside the installed package, else the checkout's ``migrations/``."""
    return PACKAGED_MIGRATIONS if PACKAGED_MIGRATIONS.is_dir() else PROJECT_ROOT / "migrations"


MIGRATIONS: Final = migrations_directory()

#: Key of the PostgreSQL advisory lock held while migrating (``sink`` in ASCII).
MIGRATION_LOCK: Final = 0x73696E6B


class DuckDBImpl(DefaultImpl):
    """Alembic support for duckdb-engine: transactional DDL, plus identity-column sequences.

    Defining the class registers it with Alembic, which finds an implementation by dialect name:
    reading a DuckDB warehouse's revision (:func:`current_revision`) needs it too, not only
    migrating (``migrations/env.py`` imports it from here).
    """

    __dialect__ = "duckdb"
    transactional_ddl = True

    def create_table(self, table: sa.Table, **kw: Any) -> None:
        for ddl in tables.create_sequences_ddl(table):
            self._exec(ddl)
        super().create_table(table, **kw)

    def drop_table(self, table: sa.Table, **kw: Any) -> None:
        super().drop_table(table, **kw)
        for ddl in tables.drop_sequences_ddl(table):
            self._exec(ddl)


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """The Alembic configuration of the sink, using ``connection`` when given."""
    if ALEMBIC_INI.exists() and MIGRATIONS.parent == PROJECT_ROOT:
        config = Config(str(ALEMBIC_INI))
    else:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision of the migrations: the one this sink needs."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no Alembic revisions under {MIGRATIONS}")
    return head


def current_revision(engine: sa.Engine) -> str | None:
    """The database's revision; None when it was never migrated."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def ensure_at_head(engine: sa.Engine) -> None:
    """Return when the database schema is at head.

    Raises:
        SchemaOutOfDateError: It is not (also when the database is empty), telling the user to run
            ``sink migrate``.
    """
    current, head = current_revision(engine), head_revision()
    if current != head:
        shown = "none (empty database)" if current is None else current
        raise SchemaOutOfDateError(
            f"database schema is at revision {shown} but this sink needs {head}: run `sink migrate`"
        )


def migrate(url: str) -> str:
    """Upgrade the database at ``url`` to head (``sink migrate``); the revision reached."""
    engine = sa.create_engine(_with_driver(url), poolclass=sa.pool.NullPool)
    try:
        migrate_engine(engine)
    finally:
        engine.dispose()
    return head_revision()


def _with_driver(url: str) -> sa.URL:
    """``url``, with psycopg 3 as the PostgreSQL driver (the one the sink installs)."""
    parsed = sa.make_url(url)
    if parsed.drivername == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    return parsed


def migrate_engine(engine: sa.Engine) -> None:
    """Upgrade the database of ``engine`` to head, in one transaction."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK)))
        command.upgrade(alembic_config(connection), "head")
