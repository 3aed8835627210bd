"""The reporting views on SQLite and DuckDB — and the contract every supported database must meet.

:class:`ViewsContract` holds the tests shared by all databases: the hand-made scenario of
``tests/report_scenario.py`` is written through the decoder and the warehouse writer, then every
report must give exactly the expected rows, the catalog's columns must be the views' own, and the
``--course``/``--since``/``--limit`` filters must select the right rows. Each database's class
provides an ``engine`` fixture on a migrated warehouse holding the scenario (sessions
in a time zone far from UTC where the database has one). PostgreSQL runs the contract in
``tests/integration/test_report_views_postgres.py``.

The catalog's own consistency (names, filter and order columns) needs no database and is tested
first.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from sink.reports.views import REPORTS, ColumnKind, Report, report_names
from sink.schema_check import migrate
from tests.report_scenario import (
    C2,
    D2,
    EXPECTED,
    report_rows,
    rounded,
    tz_engine,
    view_columns,
    write_scenario,
)

# --- the catalog ----------------------------------------------------------------------------------


def test_names_are_unique_and_derived_from_the_view_names() -> None:
    assert len(set(report_names())) == len(REPORTS)
    assert len({report.view for report in REPORTS}) == len(REPORTS)
    for report in REPORTS:
        assert report.view.startswith("report_")
        assert report.name == report.view.removeprefix("report_").replace("_", "-")


@pytest.mark.parametrize("report", REPORTS, ids=lambda report: report.name)
def test_order_and_filter_columns_belong_to_the_report(report: Report) -> None:
    names = report.column_names
    assert len(set(names)) == len(names)
    assert set(report.order_by) <= set(names)
    assert report.question.endswith("?")
    assert all(column.description for column in report.columns)
    if report.course_column is not None:
        assert report.column(report.course_column).kind is ColumnKind.TEXT
    if report.since_column is not None:
        kind = report.column(report.since_column).kind
        assert kind in {ColumnKind.DATE, ColumnKind.TIMESTAMP}


def test_the_scenario_covers_every_report() -> None:
    assert set(EXPECTED) == set(report_names())
    assert all(EXPECTED.values())


# --- the views, per database ----------------------------------------------------------------------


def scenario_engine(url: str) -> Iterator[sa.Engine]:
    """Migrate ``url``, write the scenario into it, yield an engine in the scenario's time zone."""
    migrate(url)
    write_scenario(url)
    engine = tz_engine(url)
    yield engine
    engine.dispose()


class ViewsContract:
    """Tests every database runs; subclasses provide the ``engine`` fixture (shared, read only)."""

    def test_catalog_columns_are_the_view_columns(self, engine: sa.Engine) -> None:
        for report in REPORTS:
            assert view_columns(engine, report.view) == list(report.column_names), report.view

    @pytest.mark.parametrize("name", sorted(EXPECTED))
    def test_report_gives_the_expected_rows(self, engine: sa.Engine, name: str) -> None:
        assert report_rows(engine, name) == rounded(EXPECTED[name])

    def test_course_filter(self, engine: sa.Engine) -> None:
        expected = [row for row in EXPECTED["enrollment-current"] if row[1] == C2]
        assert len(expected) == 2
        assert report_rows(engine, "enrollment-current", course=C2) == expected

    def test_since_on_a_day_column(self, engine: sa.Engine) -> None:
        expected = [row for row in EXPECTED["enrollment-daily"] if row[0] == D2]
        assert len(expected) == 4
        assert report_rows(engine, "enrollment-daily", since=D2) == expected

    def test_since_on_a_time_column_starts_at_utc_midnight(self, engine: sa.Engine) -> None:
        # 102's latest event is at 00:00:01 UTC on day 2; 101's at noon on day 1.
        rows = report_rows(engine, "enrollment-current", since=D2)
        assert [row[0] for row in rows] == [102, 103, 104]

    def test_course_and_since_together(self, engine: sa.Engine) -> None:
        rows = report_rows(engine, "forum-activity-daily", course=C2, since=D2)
        assert rows == [row for row in EXPECTED["forum-activity-daily"] if row[1] == C2]

    def test_limit_keeps_the_first_rows_in_order(self, engine: sa.Engine) -> None:
        rows = report_rows(engine, "grades-current", limit=2)
        assert rows == rounded(EXPECTED["grades-current"][:2])

    def test_a_course_without_rows_gives_none(self, engine: sa.Engine) -> None:
        assert report_rows(engine, "course-summary", course="course-v1:No+Such+Course") == []


@pytest.fixture(scope="module")
def sqlite_views(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    folder: Path = tmp_path_factory.mktemp("sqlite-views")
    yield from scenario_engine(f"sqlite:///{folder / 'sink.db'}")


@pytest.fixture(scope="module")
def duckdb_views(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    pytest.importorskip("duckdb_engine")
    folder: Path = tmp_path_factory.mktemp("duckdb-views")
    yield from scenario_engine(f"duckdb:///{folder / 'sink.duckdb'}")


class TestSqliteViews(ViewsContract):
    @pytest.fixture
    def engine(self, sqlite_views: sa.Engine) -> sa.Engine:
        return sqlite_views


class TestDuckDBViews(ViewsContract):
    @pytest.fixture
    def engine(self, duckdb_views: sa.Engine) -> sa.Engine:
        return duckdb_views
