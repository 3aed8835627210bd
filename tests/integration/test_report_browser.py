"""The HTML report in a real browser: Debian's Chromium driven by Playwright (no browser download).

The page is opened from its file with every other request blocked and counted; console messages
and page errors are collected. Each test asserts that nothing was requested, nothing went wrong,
the four charts are laid out with a size, they draw as many bars and points as the data has, and
the headings are there; a screenshot lands in the test's ``tmp_path``.

Two sources of data: the synthetic :func:`tests.unit.test_report_html.sample_report` (and its empty
variant), and end to end a SQLite warehouse migrated to head, events written by
:class:`sink.writer.Warehouse`, and :func:`sink.reports.html.write_html_report` reading the views.
:func:`~sink.reports.html.collect_report` is also checked to read the same data from the views of
DuckDB and PostgreSQL (the local services' database, in a schema of its own).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from opaque_keys.edx.keys import CourseKey
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Route, sync_playwright

from sink import catalog, events
from sink.decoder import DecodedEvent
from sink.errors import ConfigError
from sink.reports.html import (
    CategoryCount,
    CourseSummary,
    EnrollmentDay,
    GradeBucket,
    ReportData,
    collect_report,
    render_report,
    write_html_report,
)
from sink.schema_check import migrate
from sink.writer import Warehouse
from tests.unit.test_report_html import HOSTILE, empty_report, sample_report
from tests.unit.test_writer_sqlite import batch_of, decoded

CHARTS = ("enrollments", "grades", "modes", "certificates")
HEADINGS = (
    "Enrollments over time",
    "Grade distribution",
    "Enrollment modes",
    "Certificates by status",
    "Courses",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium; fails (never skips) when it is not installed."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Chromium is not installed: run `apt-get install chromium` (CI installs it)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@attrs.define
class Visit:
    """A page opened from a file, and what happened while it loaded.

    Attributes:
        page: The Playwright page.
        requests: URLs of every request other than the file itself (all blocked).
        console: Console messages as ``type: text``.
        errors: Uncaught page errors.
    """

    page: Page
    requests: list[str] = attrs.Factory(list)
    console: list[str] = attrs.Factory(list)
    errors: list[str] = attrs.Factory(list)

    def assert_clean(self) -> None:
        assert self.requests == []
        assert self.console == []
        assert self.errors == []


@contextlib.contextmanager
def visit(browser: Browser, path: Path, **context: Any) -> Iterator[Visit]:
    """Open ``path`` in a new browser context (``context``: viewport, colour scheme…)."""
    url = path.resolve().as_uri()
    browser_context = browser.new_context(**{"viewport": {"width": 1280, "height": 900}, **context})
    visited = Visit(browser_context.new_page())

    def route(route: Route) -> None:
        if route.request.url == url:
            route.continue_()
        else:
            visited.requests.append(route.request.url)
            route.abort()

    def requested(request: Request) -> None:
        if request.url != url and request.url not in visited.requests:
            visited.requests.append(request.url)

    def console(message: ConsoleMessage) -> None:
        visited.console.append(f"{message.type}: {message.text}")

    browser_context.route("**/*", route)
    visited.page.on("request", requested)
    visited.page.on("console", console)
    visited.page.on("pageerror", lambda error: visited.errors.append(str(error)))
    visited.page.goto(url, wait_until="load")
    visited.page.wait_for_load_state("networkidle")
    try:
        yield visited
    finally:
        browser_context.close()


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Any]:
    """``open_page(path, **context)``: a :class:`Visit` of ``path``, closed after the test."""
    with contextlib.ExitStack() as stack:

        def open_(path: Path, **context: Any) -> Visit:
            return stack.enter_context(visit(browser, path, **context))

        yield open_


def written(data: ReportData, folder: Path) -> Path:
    path = folder / "report.html"
    path.write_text(render_report(data), encoding="utf-8")
    return path


def drawn(page: Page, chart: str, selector: str) -> list[int]:
    """Values (``data-value``) of the ``selector`` elements drawn in ``chart``."""
    values: list[str] = page.locator(f'svg[data-chart="{chart}"] {selector}').evaluate_all(
        "elements => elements.map(e => e.getAttribute('data-value'))"
    )
    return [int(value) for value in values]


def assert_chart_shown(page: Page, chart: str) -> None:
    svg = page.locator(f'svg[data-chart="{chart}"]')
    assert svg.is_visible(), chart
    box = svg.bounding_box()
    assert box is not None, chart
    assert box["width"] > 200, chart
    assert box["height"] > 100, chart


def assert_bars_have_size(page: Page, chart: str) -> None:
    """Every non-zero bar of ``chart`` is painted with a visible size and a fill."""
    bars = page.locator(f'svg[data-chart="{chart}"] rect.bar')
    for index in range(bars.count()):
        bar = bars.nth(index)
        if bar.get_attribute("data-value") == "0":
            continue
        box = bar.bounding_box()
        assert box is not None, chart
        assert box["width"] > 1, chart
        assert box["height"] > 1, chart
        fill = bar.evaluate("e => getComputedStyle(e).fill")
        assert fill not in {"none", "rgba(0, 0, 0, 0)"}, chart


def assert_headings(page: Page) -> None:
    for heading in HEADINGS:
        assert page.get_by_role("heading", name=heading).is_visible(), heading
    assert page.get_by_role("heading", level=1).is_visible()


def no_horizontal_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


# --- synthetic data -------------------------------------------------------------------------------


def test_charts_draw_the_data_offline(open_page: Any, tmp_path: Path) -> None:
    data = sample_report()
    opened: Visit = open_page(written(data, tmp_path))
    page = opened.page
    opened.assert_clean()
    assert_headings(page)
    for chart in CHARTS:
        assert_chart_shown(page, chart)
    assert drawn(page, "enrollments", "circle.point.series-1") == [12, 30, 0, 0, 7]
    assert drawn(page, "enrollments", "circle.point.series-2") == [1, 4, 0, 0, 0]
    assert drawn(page, "grades", "rect.bar") == [5, 0, 0, 0, 0, 40, 0, 80, 0, 20]
    assert drawn(page, "modes", "rect.bar") == [mode.learners for mode in data.modes]
    assert drawn(page, "certificates", "rect.bar") == [
        s.learners for s in data.certificate_statuses
    ]
    for chart in ("grades", "modes", "certificates"):
        assert_bars_have_size(page, chart)
    assert page.locator("script").count() == 0
    assert page.get_by_role("cell", name=HOSTILE).is_visible()
    page.screenshot(path=tmp_path / "report.png", full_page=True)


def test_no_data_states_are_shown(open_page: Any, tmp_path: Path) -> None:
    opened: Visit = open_page(written(empty_report(), tmp_path))
    page = opened.page
    opened.assert_clean()
    assert_headings(page)
    assert page.locator("svg").count() == 0
    for chart in CHARTS:
        state = page.locator(f'[data-no-data="{chart}"]')
        assert state.is_visible(), chart
        assert "No data" in state.inner_text(), chart
    page.screenshot(path=tmp_path / "empty.png", full_page=True)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_stands_out_in_both_colour_schemes(
    open_page: Any, tmp_path: Path, scheme: str
) -> None:
    opened: Visit = open_page(written(sample_report(), tmp_path), color_scheme=scheme)
    page = opened.page
    opened.assert_clean()
    body = page.evaluate(
        "(() => { const s = getComputedStyle(document.body);"
        " return [s.color, s.backgroundColor]; })()"
    )
    tick = page.locator('svg[data-chart="grades"] text.tick').first
    tick_fill = tick.evaluate("e => getComputedStyle(e).fill")
    assert body[0] != body[1]
    assert tick_fill != body[1]
    brightness = _luminance(body[1])
    assert (brightness > 0.5) == (scheme == "light")
    page.screenshot(path=tmp_path / f"report-{scheme}.png", full_page=True)


def test_a_phone_sized_window_does_not_scroll_sideways(open_page: Any, tmp_path: Path) -> None:
    opened: Visit = open_page(
        written(sample_report(), tmp_path), viewport={"width": 390, "height": 844}
    )
    opened.assert_clean()
    assert no_horizontal_scroll(opened.page)
    for chart in CHARTS:
        assert_chart_shown(opened.page, chart)


def _luminance(css_colour: str) -> float:
    """Rough brightness 0..1 of an ``rgb(r, g, b)`` colour."""
    channels = [int(part) for part in css_colour.split("(")[1].rstrip(")").split(",")[:3]]
    return sum(channels) / (3 * 255)


# --- end to end: events in a SQLite warehouse, the views, the file -------------------------------

DAY = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
FIRST = CourseKey.from_string("course-v1:Org+Hostile+2026")
SECOND = CourseKey.from_string("course-v1:Org+Second+2026")


def user(user_id: int) -> events.UserData:
    personal = events.UserPersonalData(f"learner{user_id}", f"learner{user_id}@example.org")
    return events.UserData(id=user_id, is_active=True, pii=personal)


def course(key: CourseKey) -> events.CourseData:
    return events.CourseData(key, HOSTILE if key == FIRST else "Second course")


def enrollment(
    event_type: str, user_id: int, key: CourseKey, mode: str, day: int, offset: int
) -> DecodedEvent:
    active = not event_type.endswith("unenrollment.completed.v1")
    data = events.CourseEnrollmentData(
        user(user_id), course(key), mode, active, DAY + timedelta(days=day)
    )
    return decoded(catalog.spec_for(event_type), data, offset, time=DAY + timedelta(days=day))


def grade(user_id: int, key: CourseKey, percent: float, offset: int) -> DecodedEvent:
    data = events.PersistentCourseGradeData(
        user_id, course(key), DAY, "v1", "hash", percent, "Pass" if percent >= 0.5 else "", DAY
    )
    spec = catalog.spec_for("org.openedx.learning.course.persistent_grade_summary.changed.v1")
    return decoded(spec, data, offset, time=DAY + timedelta(days=3))


def certificate(user_id: int, key: CourseKey, status: str, offset: int) -> DecodedEvent:
    data = events.CertificateData(
        user(user_id), course(key), "verified", "0.9", "https://certs.example/x", "Name", status
    )
    spec = catalog.spec_for("org.openedx.learning.certificate.created.v1")
    return decoded(spec, data, offset, time=DAY + timedelta(days=3))


def warehouse_events() -> list[DecodedEvent]:
    """Enrollments on days 0, 1 and 3 (none on day 2), one unenrollment, grades, certificates."""
    created = "org.openedx.learning.course.enrollment.created.v1"
    gone = "org.openedx.learning.course.unenrollment.completed.v1"
    return [
        enrollment(created, 1, FIRST, "audit", 0, 0),
        enrollment(created, 2, FIRST, "verified", 0, 1),
        enrollment(created, 3, FIRST, "verified", 1, 2),
        enrollment(created, 4, SECOND, "audit", 3, 3),
        enrollment(gone, 1, FIRST, "audit", 3, 4),
        grade(2, FIRST, 0.95, 5),
        grade(3, FIRST, 1.0, 6),
        grade(4, SECOND, 0.72, 7),
        certificate(2, FIRST, "downloadable", 8),
        certificate(3, FIRST, "downloadable", 9),
        certificate(4, SECOND, "notpassing", 10),
    ]


def filled(url: str) -> Warehouse:
    """The warehouse at ``url`` migrated to head, holding :func:`warehouse_events`."""
    migrate(url)
    warehouse = Warehouse(url, "keep")
    result = warehouse.write(batch_of(warehouse_events()), "report-test")
    assert result.stored == len(warehouse_events())
    return warehouse


@pytest.fixture
def sqlite_warehouse(tmp_path: Path) -> Iterator[Warehouse]:
    """A SQLite warehouse holding :func:`warehouse_events`."""
    warehouse = filled(f"sqlite:///{tmp_path / 'warehouse.db'}")
    yield warehouse
    warehouse.close()


@pytest.fixture(params=["sqlite", "duckdb", "postgresql"])
def any_warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    """A warehouse of each database holding :func:`warehouse_events` (PostgreSQL: own schema)."""
    if request.param == "postgresql":
        services = request.getfixturevalue("services")
        schema = request.getfixturevalue("pg_schema")
        url = f"{services.database_url}?options=-csearch_path%3D{schema}"
    else:
        url = f"{request.param}:///{tmp_path / 'warehouse.db'}"
    warehouse = filled(url)
    yield warehouse
    warehouse.close()


def test_every_database_gives_the_same_report(any_warehouse: Warehouse) -> None:
    with any_warehouse.engine.connect() as connection:
        data = collect_report(connection)
        first = collect_report(connection, str(FIRST), (DAY + timedelta(days=1)).date())
    assert data.dialect == any_warehouse.engine.dialect.name
    assert data.enrollment_days == (
        EnrollmentDay(date(2026, 3, 2), 2, 0),
        EnrollmentDay(date(2026, 3, 3), 1, 0),
        EnrollmentDay(date(2026, 3, 5), 1, 1),
    )
    assert data.modes == (CategoryCount("verified", 2), CategoryCount("audit", 1))
    assert data.grade_buckets == (GradeBucket(70, 1), GradeBucket(90, 2))
    assert data.certificate_statuses == (
        CategoryCount("downloadable", 2),
        CategoryCount("notpassing", 1),
    )
    assert [attrs.evolve(course, average_grade=None) for course in data.courses] == [
        CourseSummary(str(FIRST), HOSTILE, 3, 2, 2, 2, None),
        CourseSummary(str(SECOND), "Second course", 1, 1, 0, 1, None),
    ]
    assert [course.average_grade for course in data.courses] == [
        pytest.approx(0.975),
        pytest.approx(0.72),
    ]
    assert first.enrollment_days == (
        EnrollmentDay(date(2026, 3, 3), 1, 0),
        EnrollmentDay(date(2026, 3, 5), 0, 1),
    )
    assert [course.course_key for course in first.courses] == [str(FIRST)]


def test_report_of_a_warehouse_in_the_browser(
    sqlite_warehouse: Warehouse, open_page: Any, tmp_path: Path
) -> None:
    path = tmp_path / "warehouse.html"
    write_html_report(sqlite_warehouse.engine, path)
    opened: Visit = open_page(path)
    page = opened.page
    opened.assert_clean()
    assert_headings(page)
    for chart in CHARTS:
        assert_chart_shown(page, chart)
    assert drawn(page, "enrollments", "circle.point.series-1") == [2, 1, 0, 1]
    assert drawn(page, "enrollments", "circle.point.series-2") == [0, 0, 0, 1]
    assert drawn(page, "grades", "rect.bar") == [0, 0, 0, 0, 0, 0, 0, 1, 0, 2]
    assert drawn(page, "modes", "rect.bar") == [2, 1]
    assert drawn(page, "certificates", "rect.bar") == [2, 1]
    assert page.get_by_role("cell", name=HOSTILE).is_visible()
    assert page.locator("script").count() == 0
    assert "sqlite:///" not in page.content()
    page.screenshot(path=tmp_path / "warehouse.png", full_page=True)


def test_report_of_one_course_since_a_day(
    sqlite_warehouse: Warehouse, open_page: Any, tmp_path: Path
) -> None:
    path = tmp_path / "first.html"
    since = (DAY + timedelta(days=1)).date()
    write_html_report(sqlite_warehouse.engine, path, course=str(FIRST), since=since)
    opened: Visit = open_page(path)
    page = opened.page
    opened.assert_clean()
    assert drawn(page, "enrollments", "circle.point.series-1") == [1, 0, 0]
    assert drawn(page, "enrollments", "circle.point.series-2") == [0, 0, 1]
    assert drawn(page, "grades", "rect.bar") == [0, 0, 0, 0, 0, 0, 0, 0, 0, 2]
    assert drawn(page, "modes", "rect.bar") == [2]
    assert drawn(page, "certificates", "rect.bar") == [2]
    assert page.locator("tbody tr").count() == 1


def test_an_unwritable_report_path_is_a_clear_error(
    sqlite_warehouse: Warehouse, tmp_path: Path
) -> None:
    path = tmp_path / "missing-folder" / "report.html"
    with pytest.raises(ConfigError, match="cannot write the HTML report"):
        write_html_report(sqlite_warehouse.engine, path)
    assert not path.parent.exists()


def test_an_empty_warehouse_reports_no_data(open_page: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    migrate(url)
    engine = sa.create_engine(url)
    path = tmp_path / "empty.html"
    write_html_report(engine, path)
    engine.dispose()
    opened: Visit = open_page(path)
    opened.assert_clean()
    assert opened.page.locator("[data-no-data]").count() == 4
    assert opened.page.locator("svg").count() == 0
