"""``sink report`` as a user meets it: listing, the three formats, filters, and the errors.

The warehouse is an SQLite file holding the scenario of ``tests/report_scenario.py`` (written once
for the module); the command runs in-process through click's runner, with ``SINK_DATABASE_URL``
pointing at it. One test runs ``python -m sink report`` in a fresh process on DuckDB, where
reading the schema revision needs Alembic's DuckDB implementation before any migration ran.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result

from sink.cli import cli
from sink.errors import SchemaOutOfDateError
from sink.reports.formats import as_table, render
from sink.reports.query import ReportRows, plain_value
from sink.reports.views import REPORTS, ColumnKind, report_named
from sink.schema_check import migrate
from tests.report_scenario import C1, C2, EXPECTED, write_scenario


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of a migrated SQLite warehouse holding the scenario."""
    url = f"sqlite:///{tmp_path_factory.mktemp('report-command') / 'sink.db'}"
    migrate(url)
    write_scenario(url)
    return url


def sink_report(url: str, *arguments: str) -> Result:
    environment: dict[str, str | None] = {
        name: None for name in os.environ if name.startswith("SINK_")
    }
    environment["SINK_DATABASE_URL"] = url
    return CliRunner().invoke(cli, ["report", *arguments], env=environment)


def test_without_name_lists_every_report_with_its_question() -> None:
    result = CliRunner().invoke(cli, ["report"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == len(REPORTS)
    for line, report in zip(lines, REPORTS, strict=True):
        assert line.split()[0] == report.name
        assert line.endswith(report.question)


def test_table(warehouse: str) -> None:
    result = sink_report(warehouse, "course-summary")
    assert result.exit_code == 0, result.output
    header, first, second = result.output.splitlines()
    assert header.split() == list(report_named("course-summary").column_names)
    assert first.split() == [C1, "Course", "One", "4", "3", "2", "3", "0.7375"]
    assert second.split()[-1] == "0.35"
    # Numbers are right-aligned under their header.
    assert len(first) == len(header)


def test_csv(warehouse: str) -> None:
    result = sink_report(warehouse, "enrollment-current", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows[0] == list(report_named("enrollment-current").column_names)
    assert len(rows) == 1 + len(EXPECTED["enrollment-current"])
    assert rows[1] == [
        "101",
        C1,
        "Course One",
        "verified",
        "true",
        "2026-03-04T09:00:00+00:00",
        "2026-03-04T12:00:00+00:00",
        "org.openedx.learning.course.enrollment.changed.v1",
    ]


def test_json_numbers_are_numbers_and_dates_iso_strings(warehouse: str) -> None:
    result = sink_report(warehouse, "grades-current", "--format", "json", "--course", C2)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [
        {
            "user_id": 101,
            "course_key": C2,
            "percent_grade": 0.7,
            "letter_grade": "Pass",
            "passed": True,
            "graded_at": "2026-03-05T12:00:00+00:00",
        },
        {
            "user_id": 104,
            "course_key": C2,
            "percent_grade": 0.0,
            "letter_grade": "",
            "passed": False,
            "graded_at": "2026-03-05T12:00:00+00:00",
        },
    ]


def test_json_days_and_uuids(warehouse: str) -> None:
    daily = json.loads(sink_report(warehouse, "user-activity-daily", "--format", "json").output)
    assert daily == [
        {"day": "2026-03-04", "registrations": 2, "logins": 2, "active_users": 1},
        {"day": "2026-03-05", "registrations": 1, "logins": 2, "active_users": 2},
    ]
    ledger = json.loads(sink_report(warehouse, "enterprise-ledger", "--format", "json").output)
    assert ledger[0]["ledger_uuid"] == "11111111-1111-4111-8111-111111111111"
    assert ledger[0]["quantity"] == -300


def test_since_and_limit(warehouse: str) -> None:
    result = sink_report(
        warehouse, "enrollment-daily", "--since", "2026-03-05", "--limit", "2", "--format", "csv"
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [(row["day"], row["course_key"], row["mode"]) for row in rows] == [
        ("2026-03-05", C1, "audit"),
        ("2026-03-05", C1, "verified"),
    ]


def test_no_rows_says_so(warehouse: str) -> None:
    result = sink_report(warehouse, "course-modes", "--course", "course-v1:No+Such+Course")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["course_key  mode  active_learners", "(no rows)"]
    as_json = sink_report(warehouse, "course-modes", "--course", "x", "--format", "json")
    assert json.loads(as_json.output) == []


def test_course_on_a_report_without_course_names_option_and_report(warehouse: str) -> None:
    result = sink_report(warehouse, "enterprise-ledger", "--course", C1)
    assert result.exit_code == 2
    assert "--course cannot filter report enterprise-ledger" in result.output
    assert "course-summary" in result.output  # the reports it can filter


def test_since_on_a_report_without_time_names_option_and_report(warehouse: str) -> None:
    result = sink_report(warehouse, "course-modes", "--since", "2026-03-05")
    assert result.exit_code == 2
    assert "--since cannot filter report course-modes" in result.output
    assert "enrollment-daily" in result.output


def test_invalid_since_date(warehouse: str) -> None:
    result = sink_report(warehouse, "enrollment-daily", "--since", "yesterday")
    assert result.exit_code == 2
    assert "--since" in result.output


def test_unknown_report_lists_the_names(warehouse: str) -> None:
    result = sink_report(warehouse, "enrolments")
    assert result.exit_code == 2
    assert "unknown report 'enrolments'" in result.output
    for report in REPORTS:
        assert report.name in result.output


def test_filters_without_a_name_are_refused() -> None:
    result = CliRunner().invoke(cli, ["report", "--course", C1])
    assert result.exit_code == 2
    assert "give its NAME" in result.output


def test_unmigrated_database_says_to_migrate(tmp_path: Path) -> None:
    result = sink_report(f"sqlite:///{tmp_path / 'empty.db'}", "course-summary")
    assert isinstance(result.exception, SchemaOutOfDateError)
    assert "run `sink migrate`" in str(result.exception)


def test_html_writes_the_page(warehouse: str, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    result = sink_report(warehouse, "--html", str(page), "--course", C1)
    assert result.exit_code == 0, result.output
    text = page.read_text(encoding="utf-8")
    assert text.lstrip().lower().startswith("<!doctype html")
    assert C1 in text
    assert C2 not in text


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["course-summary"], "drop the report NAME"),
        (["--limit", "3"], "--limit applies to a named report"),
        (["--format", "csv"], "--format applies to a named report"),
    ],
)
def test_html_refuses_options_of_a_named_report(
    warehouse: str, tmp_path: Path, arguments: list[str], message: str
) -> None:
    result = sink_report(warehouse, "--html", str(tmp_path / "r.html"), *arguments)
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "r.html").exists()


def test_duckdb_in_a_fresh_process(tmp_path: Path) -> None:
    pytest.importorskip("duckdb_engine")
    url = f"duckdb:///{tmp_path / 'sink.duckdb'}"
    migrate(url)
    clean = {name: value for name, value in os.environ.items() if not name.startswith("SINK_")}
    result = subprocess.run(
        [sys.executable, "-m", "sink", "report", "course-summary", "--format", "json"],
        env={**clean, "SINK_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


# --- formats, without a database ------------------------------------------------------------------


def test_plain_values_are_the_same_whatever_the_driver_gave() -> None:
    assert plain_value(ColumnKind.INTEGER, 3.0) == 3
    assert isinstance(plain_value(ColumnKind.INTEGER, 3.0), int)
    assert plain_value(ColumnKind.BOOLEAN, 0) is False
    assert plain_value(ColumnKind.UUID, "11111111111141118111111111111111") == (
        "11111111-1111-4111-8111-111111111111"
    )
    utc = datetime(2026, 3, 4, 23, 0, tzinfo=UTC)
    assert plain_value(ColumnKind.TIMESTAMP, utc.replace(tzinfo=None)) == utc  # SQLite's
    tokyo = plain_value(ColumnKind.TIMESTAMP, utc.astimezone(ZoneInfo("Asia/Tokyo")))  # DuckDB's
    assert (tokyo, tokyo.tzinfo) == (utc, UTC)
    assert plain_value(ColumnKind.TEXT, None) is None


def test_table_cells() -> None:
    report = report_named("grades-current")
    rows = ReportRows(report, ((7, C1, 2 / 3, "", False, None),))
    header, line = as_table(rows).splitlines()
    assert line.split() == ["7", C1, "0.6667", "false"]
    assert header.startswith("user_id")
    assert render(rows, "csv").splitlines()[1] == f"7,{C1},{2 / 3!r},,false,"
    with pytest.raises(ValueError, match="unknown format"):
        render(rows, "xml")
