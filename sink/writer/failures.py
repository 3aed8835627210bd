"""What a database error means for the batch being written.

Every error met while writing is sorted into one :class:`Failure`:

* ``TRANSIENT``: the database is unreachable or gave up on the transaction for reasons of its own
  (connection refused or lost, shutdown, deadlock, serialization failure, lock timeout, too many
  connections, a busy SQLite file). The batch is retried as a whole later.
* ``REJECTED``: the database refuses a value of some row (a NUL character, a number out of range,
  an index entry too large, a violated constraint). The writer finds the events responsible and
  dead-letters them.
* ``SCHEMA``: a table or column is missing: the schema is not what this sink needs.
* ``ACCESS``: the database refuses the sink's login, database or role (wrong password, unknown
  database, permission denied, read-only file): the settings are wrong, fatal.
* ``OTHER``: anything else (a bug): fatal.

PostgreSQL errors are sorted by SQLSTATE, SQLite errors by result code; the rest by the PEP 249
exception class names, which every driver shares.
"""

from __future__ import annotations

import enum
import sqlite3
from typing import Final

import psycopg
import sqlalchemy as sa

from sink.config import env_name
from sink.errors import (
    DatabaseAccessError,
    DatabaseUnavailableError,
    SchemaOutOfDateError,
    SinkError,
    WarehouseError,
)


class Failure(enum.Enum):
    """The kind of a write failure (see the module docstring)."""

    TRANSIENT = "transient"
    REJECTED = "rejected"
    SCHEMA = "schema"
    ACCESS = "access"
    OTHER = "other"


#: SQLSTATE prefixes (classes, or whole codes) of PostgreSQL errors, by kind; longest match wins.
POSTGRES_SQLSTATES: Final[dict[str, Failure]] = {
    "08": Failure.TRANSIENT,  # connection exception
    "40": Failure.TRANSIENT,  # transaction rollback: serialization failure, deadlock
    "53": Failure.TRANSIENT,  # insufficient resources: too many connections, disk full
    "57P": Failure.TRANSIENT,  # admin/crash shutdown, cannot connect now
    "57014": Failure.TRANSIENT,  # query canceled (statement timeout)
    "55P03": Failure.TRANSIENT,  # lock not available
    "22": Failure.REJECTED,  # data exception: NUL, out of range, invalid JSON...
    "23": Failure.REJECTED,  # integrity constraint violation
    "54": Failure.REJECTED,  # program limit exceeded: index row too large
    "42P01": Failure.SCHEMA,  # undefined table
    "42703": Failure.SCHEMA,  # undefined column
    "42704": Failure.SCHEMA,  # undefined object (type)
    "28": Failure.ACCESS,  # invalid authorization specification: wrong password, unknown role
    "3D000": Failure.ACCESS,  # invalid catalog name: no such database
    "42501": Failure.ACCESS,  # insufficient privilege
}

#: What the server says when it refuses a connection. libpq reports these without a SQLSTATE, so
#: only the (English) text tells them from a server that is down; in another language they are
#: taken for an outage, retried, and fatal once the failure budget is spent.
POSTGRES_CONNECT_REFUSALS: Final = (
    "password authentication failed",
    "no pg_hba.conf entry",
    "does not exist",  # database "x" / role "x"
    "permission denied for database",
)

#: Primary SQLite result codes by kind.
SQLITE_CODES: Final[dict[int, Failure]] = {
    sqlite3.SQLITE_BUSY: Failure.TRANSIENT,
    sqlite3.SQLITE_LOCKED: Failure.TRANSIENT,
    sqlite3.SQLITE_NOMEM: Failure.TRANSIENT,
    sqlite3.SQLITE_IOERR: Failure.TRANSIENT,
    sqlite3.SQLITE_FULL: Failure.TRANSIENT,
    sqlite3.SQLITE_CANTOPEN: Failure.TRANSIENT,
    sqlite3.SQLITE_PROTOCOL: Failure.TRANSIENT,
    sqlite3.SQLITE_TOOBIG: Failure.REJECTED,
    sqlite3.SQLITE_CONSTRAINT: Failure.REJECTED,
    sqlite3.SQLITE_MISMATCH: Failure.REJECTED,
    sqlite3.SQLITE_RANGE: Failure.REJECTED,
    sqlite3.SQLITE_READONLY: Failure.ACCESS,
    sqlite3.SQLITE_CORRUPT: Failure.OTHER,
    sqlite3.SQLITE_NOTADB: Failure.OTHER,
    sqlite3.SQLITE_PERM: Failure.ACCESS,
    sqlite3.SQLITE_AUTH: Failure.ACCESS,
}

#: SQLite messages of a missing table or column (result code SQLITE_ERROR).
SQLITE_SCHEMA_MESSAGES: Final = ("no such table", "no such column", "has no column named")

#: PEP 249 exception class names by kind, most specific first.
DBAPI_CLASSES: Final[tuple[tuple[str, Failure], ...]] = (
    ("DataError", Failure.REJECTED),
    ("IntegrityError", Failure.REJECTED),
    ("OperationalError", Failure.TRANSIENT),
    ("InterfaceError", Failure.TRANSIENT),
)

#: Longest error message kept (dead letters, logs).
MAX_MESSAGE: Final = 1000

#: Python errors raised while a driver encodes a value (lone surrogates, huge integers).
ENCODING_ERRORS: Final = (UnicodeEncodeError, OverflowError)


def root_cause(error: BaseException) -> BaseException:
    """The driver's own exception inside a SQLAlchemy wrapper (the error itself otherwise)."""
    if isinstance(error, sa.exc.StatementError) and error.orig is not None:
        return error.orig
    return error


def classify(error: BaseException) -> Failure:
    """The kind of a write failure, for any supported driver."""
    if isinstance(error, sa.exc.DisconnectionError | sa.exc.TimeoutError):
        return Failure.TRANSIENT
    if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
        return Failure.TRANSIENT
    root = root_cause(error)
    if isinstance(root, ENCODING_ERRORS):
        return Failure.REJECTED
    if isinstance(root, psycopg.Error) and (postgres := _postgres_error(root)) is not None:
        return postgres
    if isinstance(root, sqlite3.Error) and (sqlite := sqlite_failure(root)) is not None:
        return sqlite
    return dbapi_failure(root)


def postgres_failure(sqlstate: str) -> Failure:
    """The kind of a PostgreSQL error by its SQLSTATE."""
    for length in (5, 3, 2):
        if (kind := POSTGRES_SQLSTATES.get(sqlstate[:length])) is not None:
            return kind
    return Failure.OTHER


def _postgres_error(error: psycopg.Error) -> Failure | None:
    """The kind of a psycopg error; None when it says nothing beyond its PEP 249 class."""
    if error.sqlstate:
        return postgres_failure(error.sqlstate)
    if isinstance(error, psycopg.OperationalError) and _refused_connection(error):
        return Failure.ACCESS
    return None


def _refused_connection(error: psycopg.OperationalError) -> bool:
    """Whether the server refused to open a session (rather than not being reached at all)."""
    text = str(error)
    return "FATAL:" in text and any(refusal in text for refusal in POSTGRES_CONNECT_REFUSALS)


def sqlite_failure(error: sqlite3.Error) -> Failure | None:
    """The kind of an SQLite error by its result code; None when the code says nothing."""
    if any(message in str(error) for message in SQLITE_SCHEMA_MESSAGES):
        return Failure.SCHEMA
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:
        return None
    return SQLITE_CODES.get(code & 0xFF)


def dbapi_failure(error: BaseException) -> Failure:
    """The kind of a driver error by its PEP 249 class."""
    names = {cls.__name__ for cls in type(error).__mro__}
    for name, kind in DBAPI_CLASSES:
        if name in names:
            return kind
    return Failure.OTHER


def describe(error: BaseException) -> tuple[str, str]:
    """``(error class, message)`` of the driver error inside ``error``, for a dead letter or log.

    PostgreSQL gives only its primary message: the detail of some errors quotes the whole failing
    row ("Failing row contains …"), personal values included. Messages are cut at
    :data:`MAX_MESSAGE` characters.
    """
    root = root_cause(error)
    message = str(root)
    if isinstance(root, psycopg.Error) and root.diag.message_primary:
        message = root.diag.message_primary
    message = " ".join(message.split()) or type(root).__name__
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 1] + "…"
    return type(root).__name__, message


def as_sink_error(error: BaseException, kind: Failure) -> SinkError:
    """The sink's error for a database error of this kind, with the driver's own message.

    ``REJECTED`` values are the writer's business (dead letters); here they are fatal like
    ``OTHER``.
    """
    error_class, message = describe(error)
    if kind is Failure.TRANSIENT:
        return DatabaseUnavailableError(
            f"the warehouse database is unavailable ({error_class}: {message})"
        )
    if kind is Failure.ACCESS:
        return DatabaseAccessError(
            f"the warehouse database refused the sink ({error_class}: {message}):"
            f" check {env_name('database_url')} (password, database) and the role's privileges"
        )
    if kind is Failure.SCHEMA:
        return SchemaOutOfDateError(
            f"the warehouse schema is not what this sink needs ({message}): run `sink migrate`"
        )
    return WarehouseError(f"the warehouse database failed: {error_class}: {message}")
