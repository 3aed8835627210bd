"""Reading a report: a ``SELECT`` of its view, filtered and ordered, with plain Python values back.

The query is built with SQLAlchemy from the catalog (:mod:`sink.reports.views`): the view as a
table clause whose columns carry SQL types, so filter values are bound parameters converted the
way each database stores them (a ``DATE`` or ``'YYYY-MM-DD'`` text for ``day``, a timestamp or
SQLite's ``YYYY-MM-DD HH:MM:SS.ffffff`` text for times), and results come back typed.

Values are then made the same on every database (:func:`plain_value`): integers as ``int``, floats
as ``float``, booleans as ``bool``, timestamps as aware UTC datetimes, UUIDs as their canonical
text — whatever the driver returned (PostgreSQL's ``numeric``, SQLite's 0/1 and naive text times,
DuckDB's session time zone).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Any, Final
from uuid import UUID

import attrs
import sqlalchemy as sa

from sink.errors import ReportError
from sink.reports.views import REPORTS, ColumnKind, Report, ReportColumn
from sink.writer.dialect import engine_options
from sink.writer.dialects import dialect_for

_SQL_TYPES: Final[dict[ColumnKind, Callable[[], sa.types.TypeEngine[Any]]]] = {
    ColumnKind.TEXT: sa.Text,
    ColumnKind.INTEGER: sa.BigInteger,
    ColumnKind.FLOAT: sa.Double,
    ColumnKind.BOOLEAN: sa.Boolean,
    ColumnKind.DATE: sa.Date,
    ColumnKind.TIMESTAMP: lambda: sa.DateTime(timezone=True),
    ColumnKind.UUID: sa.Uuid,
}


@attrs.frozen
class Filters:
    """What part of a report to read.

    Attributes:
        course: Only rows of this course key (the report's ``course_column``).
        since: Only rows on or after this UTC date (the report's ``since_column``).
        limit: At most this many rows (after ordering).
    """

    course: str | None = None
    since: date | None = None
    limit: int | None = None


@attrs.frozen
class ReportRows:
    """The rows read from one report.

    Attributes:
        report: The report read.
        rows: Its rows in the report's order, values in column order (see :func:`plain_value`).
    """

    report: Report
    rows: tuple[tuple[Any, ...], ...]

    @property
    def columns(self) -> tuple[ReportColumn, ...]:
        """The report's columns, in row order."""
        return self.report.columns

    def as_dicts(self) -> list[dict[str, Any]]:
        """The rows as column name → value."""
        names = self.report.column_names
        return [dict(zip(names, row, strict=True)) for row in self.rows]


def read_engine(url: str) -> sa.Engine:
    """An engine to read the warehouse at ``url``: the writer's, except on SQLite.

    The writer's SQLite engine starts every transaction with ``BEGIN IMMEDIATE``, taking the
    database's write lock, which a read must not hold up a running sink for.

    Raises:
        ConfigError: The URL names no supported database.
    """
    dialect, parsed = dialect_for(url), sa.make_url(url)
    if dialect.name == "sqlite":
        return sa.create_engine(parsed, **engine_options())
    return dialect.create_engine(parsed)


def view_clause(report: Report) -> sa.TableClause:
    """The report's view as a table clause with typed columns."""
    columns = (sa.column(column.name, _SQL_TYPES[column.kind]()) for column in report.columns)
    return sa.table(report.view, *columns)


def check_filters(report: Report, filters: Filters) -> None:
    """Return when ``report`` has the columns ``filters`` need.

    Raises:
        ReportError: ``--course`` or ``--since`` asked of a report without such a column; the
            message names the option, the report and the reports that have one.
    """
    if filters.course is not None and report.course_column is None:
        with_one = [other.name for other in REPORTS if other.course_column is not None]
        raise ReportError(
            f"--course cannot filter report {report.name}: it has no course column"
            f" (reports with one: {', '.join(with_one)})"
        )
    if filters.since is not None and report.since_column is None:
        with_one = [other.name for other in REPORTS if other.since_column is not None]
        raise ReportError(
            f"--since cannot filter report {report.name}: it has no day or time column"
            f" (reports with one: {', '.join(with_one)})"
        )


def report_query(report: Report, filters: Filters) -> sa.Select[Any]:
    """The ``SELECT`` of ``report`` with ``filters`` as bound parameters, in the report's order.

    Raises:
        ReportError: See :func:`check_filters`.
    """
    check_filters(report, filters)
    view = view_clause(report)
    query = sa.select(*view.c).order_by(*(view.c[name] for name in report.order_by))
    if filters.course is not None and report.course_column is not None:
        query = query.where(view.c[report.course_column] == filters.course)
    if filters.since is not None and report.since_column is not None:
        since_column = report.column(report.since_column)
        query = query.where(view.c[since_column.name] >= _since_bound(since_column, filters.since))
    if filters.limit is not None:
        query = query.limit(filters.limit)
    return query


def _since_bound(column: ReportColumn, since: date) -> date | datetime:
    """``since`` as a value of ``column``: the date itself, or midnight UTC starting it."""
    if column.kind is ColumnKind.TIMESTAMP:
        return datetime.combine(since, time(), UTC)
    return since


def read_report(engine: sa.Engine, report: Report, filters: Filters | None = None) -> ReportRows:
    """Read ``report`` from the warehouse at ``engine`` (whose schema the caller has checked).

    Raises:
        ReportError: See :func:`check_filters`.
    """
    query = report_query(report, filters or Filters())
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    kinds = [column.kind for column in report.columns]
    plain = tuple(
        tuple(plain_value(kind, value) for kind, value in zip(kinds, row, strict=True))
        for row in rows
    )
    return ReportRows(report, plain)


def plain_value(kind: ColumnKind, value: Any) -> Any:
    """``value`` as read from a column of ``kind``, the same Python type on every database.

    ``None`` stays ``None``. Naive datetimes (SQLite's) are UTC.
    """
    if value is None:
        return None
    return _PLAIN[kind](value)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _uuid_text(value: Any) -> str:
    return str(value if isinstance(value, UUID) else UUID(str(value)))


def _unchanged(value: Any) -> Any:
    return value


_PLAIN: Final[dict[ColumnKind, Callable[[Any], Any]]] = {
    ColumnKind.TEXT: _unchanged,
    ColumnKind.INTEGER: int,
    ColumnKind.FLOAT: float,
    ColumnKind.BOOLEAN: bool,
    ColumnKind.DATE: _unchanged,
    ColumnKind.TIMESTAMP: _utc,
    ColumnKind.UUID: _uuid_text,
}
