"""``sink report``: print one report of the warehouse, list them, or write the HTML page.

Usage errors (an unknown report, a filter the report has no column for, options that do not go
together) exit with status 2 before the database is opened; a warehouse that is not migrated to
head raises the usual "run `sink migrate`" error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

import click
import sqlalchemy as sa

from sink.config import load_settings
from sink.errors import ReportError
from sink.reports.formats import FORMATS, render
from sink.reports.html import write_html_report
from sink.reports.query import Filters, check_filters, read_engine, read_report
from sink.reports.views import REPORTS, Report, report_named
from sink.schema_check import ensure_at_head


@click.command("report")
@click.argument("name", required=False)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file of settings (environment variables SINK_* override it).",
)
@click.option("--course", metavar="KEY", help="Only rows of this course key.")
@click.option(
    "--since",
    metavar="DATE",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Only rows on or after this UTC date (YYYY-MM-DD).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Aligned text table, CSV, or a JSON list of objects.",
)
@click.option("--limit", metavar="N", type=click.IntRange(min=1), help="Print at most N rows.")
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the HTML report (charts of several reports, one self-contained page) to FILE "
    "instead; --course and --since apply to it.",
)
@click.pass_context
def report_command(
    context: click.Context,
    *,
    name: str | None,
    config_file: Path | None,
    course: str | None,
    since: datetime | None,
    output_format: str,
    limit: int | None,
    html_file: Path | None,
) -> None:
    """Print report NAME from the warehouse's reporting views; without NAME, list the reports.

    Rows are sorted the same way on every database. --course and --since apply to reports that
    have a course, or a day or time column.
    """
    day = None if since is None else since.date()
    if html_file is not None:
        _refuse_with_html(context, name, limit)
        with _engine(config_file) as engine:
            write_html_report(engine, html_file, course=course, since=day)
        click.echo(f"wrote the HTML report to {html_file}")
        return
    if name is None:
        if course is not None or since is not None:
            raise click.UsageError("--course and --since filter a report: give its NAME")
        _list_reports()
        return
    report = _report(name)
    filters = _filters(report, course, day, limit)
    with _engine(config_file) as engine:
        ensure_at_head(engine)
        rows = read_report(engine, report, filters)
    click.echo(render(rows, output_format), nl=False)


def _refuse_with_html(context: click.Context, name: str | None, limit: int | None) -> None:
    """Raise a usage error for the options ``--html`` does not take."""
    if name is not None:
        raise click.UsageError(f"--html writes the whole HTML report: drop the report NAME {name}")
    if limit is not None:
        raise click.UsageError("--limit applies to a named report, not to --html")
    if context.get_parameter_source("output_format") is not click.core.ParameterSource.DEFAULT:
        raise click.UsageError("--format applies to a named report, not to --html")


def _list_reports() -> None:
    width = max(len(report.name) for report in REPORTS)
    for report in REPORTS:
        click.echo(f"{report.name.ljust(width)}  {report.question}")


def _report(name: str) -> Report:
    try:
        return report_named(name)
    except ReportError as error:
        raise click.BadParameter(str(error), param_hint="NAME") from None


def _filters(report: Report, course: str | None, since: date | None, limit: int | None) -> Filters:
    filters = Filters(course=course, since=since, limit=limit)
    try:
        check_filters(report, filters)
    except ReportError as error:
        raise click.UsageError(str(error)) from None
    return filters


@contextmanager
def _engine(config_file: Path | None) -> Iterator[sa.Engine]:
    """A read engine of the configured warehouse, disposed of afterwards.

    Logging is left unconfigured: a report logs nothing of its own, and Alembic's INFO lines
    about reading the revision would only clutter the output.
    """
    settings = load_settings(config_file)
    engine = read_engine(settings.database_url.value)
    try:
        yield engine
    finally:
        engine.dispose()
