"""The self-contained HTML report (``sink report --html FILE``): one page that opens offline.

Three steps, each usable alone:

* :func:`collect_report` reads the reporting views (``report_enrollment_daily``,
  ``report_course_modes``, ``report_grade_distribution``, ``report_certificates_by_status``,
  ``report_course_summary``) into a :class:`ReportData`, optionally for one course; ``since``
  limits the enrollments over time (the other views hold the current state, which has no date);
* :func:`render_report` turns a :class:`ReportData` into the page — a pure function;
* :func:`write_html_report` does both against a warehouse and writes the file.

The page needs nothing but itself: styles inline, charts as inline SVG (:mod:`sink.reports.charts`),
no script, and a Content-Security-Policy forbidding any other resource. Every value from the
warehouse is escaped (course names come from event data). The header names the database kind,
never its URL.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Final, Protocol

import attrs
import sqlalchemy as sa

from sink.errors import ConfigError
from sink.reports import charts
from sink.reports.charts import Bar, Series
from sink.reports.query import view_clause
from sink.reports.views import report_named
from sink.schema_check import ensure_at_head

#: Lower bounds of the grade buckets of ``report_grade_distribution``, in percent.
GRADE_BUCKETS: Final = tuple(range(0, 100, 10))

#: How the page names each database kind (SQLAlchemy backend name → product name).
DIALECT_NAMES: Final = {"postgresql": "PostgreSQL", "sqlite": "SQLite", "duckdb": "DuckDB"}


@attrs.frozen
class EnrollmentDay:
    """Enrollment activity of one day, summed over courses and modes.

    Attributes:
        day: UTC calendar date.
        enrollments: Enrollments created that day.
        unenrollments: Unenrollments that day.
    """

    day: date
    enrollments: int
    unenrollments: int


@attrs.frozen
class CategoryCount:
    """Learners in one category (an enrollment mode, a certificate status).

    Attributes:
        name: The category as stored in the events.
        learners: How many learners (summed over courses).
    """

    name: str
    learners: int


@attrs.frozen
class GradeBucket:
    """Learners whose current grade falls in one 10-point bucket.

    Attributes:
        lower: Lower bound in percent (0, 10, …, 90; the 90 bucket includes 100).
        learners: How many learners (summed over courses).
    """

    lower: int
    learners: int


@attrs.frozen
class CourseSummary:
    """One row of ``report_course_summary``.

    Attributes:
        course_key: The course key.
        course_name: Display name from the latest enrollment event (may be empty).
        enrolled_learners: Learners with an enrollment, active or not.
        active_learners: Learners with an active enrollment.
        certificates_downloadable: Certificates in the ``downloadable`` status.
        passing_learners: Learners whose current grade passes.
        average_grade: Mean current grade, 0..1; None without grades.
    """

    course_key: str
    course_name: str
    enrolled_learners: int
    active_learners: int
    certificates_downloadable: int
    passing_learners: int
    average_grade: float | None


@attrs.frozen
class ReportData:
    """Everything the page shows, read from the reporting views.

    Attributes:
        generated_at: When the data was read (aware, UTC).
        dialect: SQLAlchemy backend name of the warehouse (``postgresql``, ``sqlite``, ``duckdb``).
        course: The course filter; None for every course.
        since: First day of the enrollments over time; None for all of them.
        enrollment_days: Days with enrollment activity, oldest first.
        modes: Active learners per enrollment mode, most first.
        grade_buckets: Learners per grade bucket present in the view, lowest first.
        certificate_statuses: Learners per certificate status, most first.
        courses: The course summary, by course key.
    """

    generated_at: datetime
    dialect: str
    course: str | None
    since: date | None
    enrollment_days: tuple[EnrollmentDay, ...]
    modes: tuple[CategoryCount, ...]
    grade_buckets: tuple[GradeBucket, ...]
    certificate_statuses: tuple[CategoryCount, ...]
    courses: tuple[CourseSummary, ...]


# --- reading the views ----------------------------------------------------------------------------


def _view(name: str) -> sa.TableClause:
    return view_clause(report_named(name))


_DAILY: Final = _view("enrollment-daily")
_MODES: Final = _view("course-modes")
_GRADES: Final = _view("grade-distribution")
_CERTIFICATES: Final = _view("certificates-by-status")
_SUMMARY: Final = _view("course-summary")


def collect_report(
    connection: sa.Connection, course: str | None = None, since: date | None = None
) -> ReportData:
    """Read the report's data from the views (bound parameters only), for ``course`` if given."""
    return ReportData(
        generated_at=datetime.now(UTC),
        dialect=connection.dialect.name,
        course=course,
        since=since,
        enrollment_days=_enrollment_days(connection, course, since),
        modes=_categories(connection, _MODES, "mode", "active_learners", course),
        grade_buckets=_grade_buckets(connection, course),
        certificate_statuses=_categories(connection, _CERTIFICATES, "status", "learners", course),
        courses=_courses(connection, course),
    )


def _for_course(view: sa.TableClause, course: str | None) -> list[sa.ColumnElement[bool]]:
    """The WHERE conditions limiting ``view`` to ``course`` (none for every course)."""
    return [] if course is None else [view.c.course_key == course]


def _enrollment_days(
    connection: sa.Connection, course: str | None, since: date | None
) -> tuple[EnrollmentDay, ...]:
    columns = _DAILY.c
    conditions = _for_course(_DAILY, course)
    if since is not None:
        conditions.append(columns.day >= since)
    query = (
        sa.select(columns.day, sa.func.sum(columns.enrollments), sa.func.sum(columns.unenrollments))
        .where(*conditions)
        .group_by(columns.day)
        .order_by(columns.day)
    )
    return tuple(
        EnrollmentDay(row[0], int(row[1] or 0), int(row[2] or 0))
        for row in connection.execute(query)
    )


def _categories(
    connection: sa.Connection, view: sa.TableClause, name: str, count: str, course: str | None
) -> tuple[CategoryCount, ...]:
    total = sa.func.sum(view.c[count])
    query = (
        sa.select(view.c[name], total)
        .where(*_for_course(view, course))
        .group_by(view.c[name])
        .order_by(total.desc(), view.c[name])
    )
    return tuple(CategoryCount(str(row[0]), int(row[1] or 0)) for row in connection.execute(query))


def _grade_buckets(connection: sa.Connection, course: str | None) -> tuple[GradeBucket, ...]:
    columns = _GRADES.c
    query = (
        sa.select(columns.bucket, sa.func.sum(columns.learners))
        .where(*_for_course(_GRADES, course))
        .group_by(columns.bucket)
        .order_by(columns.bucket)
    )
    return tuple(GradeBucket(int(row[0]), int(row[1] or 0)) for row in connection.execute(query))


def _courses(connection: sa.Connection, course: str | None) -> tuple[CourseSummary, ...]:
    query = (
        sa.select(_SUMMARY).where(*_for_course(_SUMMARY, course)).order_by(_SUMMARY.c.course_key)
    )
    return tuple(
        CourseSummary(
            course_key=str(row.course_key),
            course_name=str(row.course_name or ""),
            enrolled_learners=int(row.enrolled_learners or 0),
            active_learners=int(row.active_learners or 0),
            certificates_downloadable=int(row.certificates_downloadable or 0),
            passing_learners=int(row.passing_learners or 0),
            average_grade=None if row.average_grade is None else float(row.average_grade),
        )
        for row in connection.execute(query)
    )


# --- writing the file -----------------------------------------------------------------------------


def write_html_report(
    engine: sa.Engine, path: Path, *, course: str | None = None, since: date | None = None
) -> None:
    """Write the report of the warehouse at ``engine`` to ``path`` (replaced whole, or not at all).

    Raises:
        SchemaOutOfDateError: The warehouse is not migrated to head (the views are missing).
        ConfigError: ``path`` cannot be written; the message says why.
    """
    ensure_at_head(engine)
    with engine.connect() as connection:
        page = render_report(collect_report(connection, course, since))
    _replace(path, page)


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to a file next to ``path``, then move it over ``path``."""
    try:
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        Path(temporary).replace(path)
    except OSError as error:
        raise ConfigError(
            f"cannot write the HTML report to {path}: {error.strerror or error}"
            " (check that the folder exists and is writable)"
        ) from None


# --- the page -------------------------------------------------------------------------------------


def render_report(data: ReportData) -> str:
    """The whole page of ``data``: header, key figures, four charts, the course table."""
    title = "Open edX warehouse report" + (f" — {data.course}" if data.course else "")
    sections = [
        _header(data, title),
        _key_figures(data.courses),
        '<section class="charts">',
        _enrollment_figure(data),
        _grades_figure(data),
        _modes_figure(data),
        _certificates_figure(data),
        "</section>",
        _course_table(data.courses),
        _footer(),
    ]
    return _PAGE.format(title=escape(title), style=_STYLE, body="\n".join(sections))


def _header(data: ReportData, title: str) -> str:
    since = "the first event" if data.since is None else data.since.isoformat()
    facts = {
        "Generated": f"{data.generated_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
        "Warehouse": DIALECT_NAMES.get(data.dialect, data.dialect),
        "Course": data.course or "all courses",
        "Enrollments since": since,
    }
    items = "".join(
        f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in facts.items()
    )
    return f'<header>\n<h1>{escape(title)}</h1>\n<dl class="facts">{items}</dl>\n</header>'


def _key_figures(courses: Sequence[CourseSummary]) -> str:
    figures = {
        "Courses": len(courses),
        "Enrollments": sum(course.enrolled_learners for course in courses),
        "Active enrollments": sum(course.active_learners for course in courses),
        "Certificates issued": sum(course.certificates_downloadable for course in courses),
        "Passing learners": sum(course.passing_learners for course in courses),
    }
    tiles = "".join(
        f'<div class="tile"><span class="figure">{value:,}</span>'
        f'<span class="label">{escape(label)}</span></div>'
        for label, value in figures.items()
    )
    return f'<section class="tiles" aria-label="Key figures">{tiles}</section>'


def _enrollment_figure(data: ReportData) -> str:
    note = "Per UTC day, summed over courses and modes; days without activity count as 0"
    if not data.enrollment_days:
        return _figure("enrollments", "Enrollments over time", note, None, "No enrollment events")
    days = _every_day(data.enrollment_days)
    labels = [day.day.isoformat() for day in days]
    series = [
        Series("Enrollments", tuple(day.enrollments for day in days)),
        Series("Unenrollments", tuple(day.unenrollments for day in days)),
    ]
    chart = charts.line_chart("enrollments", labels, series, x_label="Day (UTC)", y_label="Events")
    return _figure("enrollments", "Enrollments over time", note, chart, "")


def _every_day(days: Sequence[EnrollmentDay]) -> list[EnrollmentDay]:
    """``days`` with the missing days between the first and the last filled in with zeros."""
    known = {day.day: day for day in days}
    count = (days[-1].day - days[0].day).days + 1
    dates = (days[0].day + timedelta(days=offset) for offset in range(count))
    return [known.get(day, EnrollmentDay(day, 0, 0)) for day in dates]


def _modes_figure(data: ReportData) -> str:
    note = "Learners with an active enrollment, per enrollment mode"
    bars = [Bar(mode.name, mode.learners) for mode in data.modes]
    chart = _bars(charts.bar_chart, "modes", bars, x_label="Active learners", y_label="Mode")
    return _figure("modes", "Enrollment modes", note, chart, "No active enrollments")


def _grades_figure(data: ReportData) -> str:
    note = "Learners per current course grade, in 10-point buckets (the last one includes 100)"
    learners = {bucket.lower: bucket.learners for bucket in data.grade_buckets}
    bars = [Bar(_bucket_label(lower), learners.get(lower, 0)) for lower in GRADE_BUCKETS]
    chart = _bars(charts.column_chart, "grades", bars, x_label="Grade (%)", y_label="Learners")
    return _figure("grades", "Grade distribution", note, chart, "No grades")


def _bucket_label(lower: int) -> str:
    upper = lower + 9 if lower < GRADE_BUCKETS[-1] else 100
    return f"{lower}\N{EN DASH}{upper}"


def _certificates_figure(data: ReportData) -> str:
    note = "Learners per current certificate status"
    bars = [Bar(status.name, status.learners) for status in data.certificate_statuses]
    chart = _bars(charts.bar_chart, "certificates", bars, x_label="Learners", y_label="Status")
    return _figure("certificates", "Certificates by status", note, chart, "No certificates")


class _BarBuilder(Protocol):
    def __call__(self, name: str, bars: Sequence[Bar], *, x_label: str, y_label: str) -> str: ...


def _bars(
    builder: _BarBuilder, name: str, bars: Sequence[Bar], *, x_label: str, y_label: str
) -> str | None:
    """The chart of ``bars`` by ``builder``; None when there is nothing to draw (all zero)."""
    if not any(bar.value for bar in bars):
        return None
    return builder(name, bars, x_label=x_label, y_label=y_label)


def _figure(name: str, heading: str, note: str, chart: str | None, empty: str) -> str:
    """A chart card; without ``chart``, its explicit "no data" state saying ``empty``."""
    body = chart or (
        f'<div class="no-data" role="status" data-no-data="{escape(name)}">'
        f"<strong>No data</strong><span>{escape(empty)} in the warehouse for this selection.</span>"
        "</div>"
    )
    return (
        f'<figure class="card" id="{escape(name)}">\n<h2>{escape(heading)}</h2>\n'
        f"<figcaption>{escape(note)}</figcaption>\n{body}\n</figure>"
    )


def _course_table(courses: Sequence[CourseSummary]) -> str:
    head = "".join(
        f'<th scope="col"{_numeric(i)}>{escape(name)}</th>' for i, name in enumerate(_COLUMNS)
    )
    rows = "\n".join(_course_row(course) for course in courses) or (
        f'<tr><td class="empty" colspan="{len(_COLUMNS)}">No data: no course has events in the'
        " warehouse for this selection.</td></tr>"
    )
    return (
        '<section class="card" id="courses">\n<h2>Courses</h2>\n'
        f'<div class="scroll"><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n'
        "</tbody>\n</table></div>\n</section>"
    )


_COLUMNS: Final = (
    "Course key",
    "Name",
    "Enrolled",
    "Active",
    "Certificates",
    "Passing",
    "Average grade",
)


def _numeric(index: int) -> str:
    return ' class="num"' if index >= 2 else ""


def _course_row(course: CourseSummary) -> str:
    grade = "—" if course.average_grade is None else f"{course.average_grade:.1%}"
    cells: Iterable[str] = (
        f"<code>{escape(course.course_key)}</code>",
        escape(course.course_name) or '<span class="muted">—</span>',
        *(
            f"{count:,}"
            for count in (
                course.enrolled_learners,
                course.active_learners,
                course.certificates_downloadable,
                course.passing_learners,
            )
        ),
        grade,
    )
    return (
        "<tr>" + "".join(f"<td{_numeric(i)}>{cell}</td>" for i, cell in enumerate(cells)) + "</tr>"
    )


def _footer() -> str:
    return (
        "<footer>Made by openedx-event-sink from the warehouse's reporting views"
        " (<code>report_*</code>). Grades, modes and certificates are the current state;"
        " times are UTC.</footer>"
    )


_PAGE: Final = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="color-scheme" content="light dark">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<main>
{body}
</main>
</body>
</html>
"""

_STYLE: Final = """
:root {
  --bg: #f6f7f9; --card: #ffffff; --text: #1f2933; --muted: #616e7c; --border: #e4e7eb;
  --grid: #e4e7eb; --bar: #3b6fd8; --series-1: #3b6fd8; --series-2: #d9480f; --accent: #3b6fd8;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #111418; --card: #1a1f26; --text: #e6e9ed; --muted: #9aa5b1; --border: #2c333d;
    --grid: #2c333d; --bar: #6b9cf5; --series-1: #6b9cf5; --series-2: #ff8a50; --accent: #6b9cf5;
  }
}
* { box-sizing: border-box; }
body {
  margin: 0; background: var(--bg); color: var(--text);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
main { max-width: 1200px; margin: 0 auto; padding: 28px 20px 40px; }
header { border-bottom: 3px solid var(--accent); padding-bottom: 14px; margin-bottom: 20px; }
h1 { font-size: 1.6rem; margin: 0 0 10px; font-weight: 650; overflow-wrap: anywhere; }
h2 { font-size: 1.08rem; margin: 0 0 2px; font-weight: 600; }
.facts { display: flex; flex-wrap: wrap; gap: 6px 28px; margin: 0; }
.facts dt { color: var(--muted); font-size: 0.78rem; text-transform: uppercase;
  letter-spacing: .04em; }
.facts dd { margin: 0; font-weight: 500; overflow-wrap: anywhere; }
.tiles { display: grid; gap: 14px; margin-bottom: 18px;
  grid-template-columns: repeat(auto-fit, minmax(min(150px, 100%), 1fr)); }
.tile, .card { background: var(--card); border: 1px solid var(--border); border-radius: 10px; }
.tile { padding: 14px 16px; display: flex; flex-direction: column; }
.tile .figure { font-size: 1.6rem; font-weight: 650; font-variant-numeric: tabular-nums; }
.tile .label { color: var(--muted); font-size: 0.85rem; }
.charts { display: grid; gap: 18px; margin-bottom: 18px;
  grid-template-columns: repeat(auto-fit, minmax(min(440px, 100%), 1fr)); }
.card { margin: 0; padding: 16px 18px 12px; min-width: 0; }
figcaption { color: var(--muted); font-size: 0.85rem; margin-bottom: 8px; }
svg.chart { display: block; width: 100%; height: auto; overflow: visible; }
svg.chart text { fill: var(--text); font-size: 13px; font-family: inherit; }
svg.chart .tick, svg.chart .legend { fill: var(--muted); }
svg.chart .axis-label { font-weight: 600; fill: var(--muted); }
svg.chart .value { font-weight: 600; font-variant-numeric: tabular-nums; }
svg.chart .grid { stroke: var(--grid); stroke-width: 1; }
svg.chart .bar { fill: var(--bar); }
svg.chart .bar:hover, svg.chart .point:hover { opacity: .75; }
svg.chart .line { fill: none; stroke-width: 2; stroke-linejoin: round; }
svg.chart .line.series-1 { stroke: var(--series-1); }
svg.chart .line.series-2 { stroke: var(--series-2); }
svg.chart .point.series-1, svg.chart .swatch.series-1 { fill: var(--series-1); }
svg.chart .point.series-2, svg.chart .swatch.series-2 { fill: var(--series-2); }
.no-data { min-height: 180px; display: flex; flex-direction: column; align-items: center;
  justify-content: center; gap: 4px; color: var(--muted); border: 1px dashed var(--border);
  border-radius: 8px; text-align: center; padding: 16px; }
.no-data strong { color: var(--text); font-size: 1.05rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; min-width: 640px; font-size: 0.92rem;
  margin-top: 8px; }
th, td { padding: 7px 10px; border-bottom: 1px solid var(--border); text-align: left;
  vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 0.8rem; text-transform: uppercase;
  letter-spacing: .03em; }
td { overflow-wrap: break-word; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:hover { background: color-mix(in srgb, var(--accent) 7%, transparent); }
td.empty, .muted { color: var(--muted); }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.88em; }
footer { color: var(--muted); font-size: 0.82rem; margin-top: 18px; }
@media (max-width: 520px) { main { padding: 16px 10px 28px; } .card { padding: 12px 10px; } }
@media print { body { background: #fff; } .card, .tile { break-inside: avoid; } }
"""
