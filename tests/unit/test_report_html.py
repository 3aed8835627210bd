"""The HTML report: the page rendered from synthetic data; the data read from view-shaped tables.

:func:`sample_report` is the synthetic data (also used by the browser test); the page is parsed
with :class:`html.parser.HTMLParser` into elements, each knowing the chart it is drawn in, so the
tests check what is drawn — bars, points, their sizes — rather than substrings. ``collect_report``
runs against a SQLite database holding tables named and shaped like the reporting views (the real
views are tested end to end in ``tests/integration/test_report_browser.py``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from sink.errors import SchemaOutOfDateError
from sink.reports import charts
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

HOSTILE = "<script>alert('x')</script> & \"quoted\""
CHARTS = ("enrollments", "grades", "modes", "certificates")


def sample_report(**changes: Any) -> ReportData:
    """Synthetic report data: two courses, a gap of two days in the enrollments, hostile names."""
    data = ReportData(
        generated_at=datetime(2026, 11, 27, 7, 30, tzinfo=UTC),
        dialect="sqlite",
        course=None,
        since=None,
        enrollment_days=(
            EnrollmentDay(date(2026, 3, 1), 12, 1),
            EnrollmentDay(date(2026, 3, 2), 30, 4),
            EnrollmentDay(date(2026, 3, 5), 7, 0),
        ),
        modes=(
            CategoryCount("audit", 412),
            CategoryCount("verified", 230),
            CategoryCount(HOSTILE, 9),
        ),
        grade_buckets=(
            GradeBucket(0, 5),
            GradeBucket(50, 40),
            GradeBucket(70, 80),
            GradeBucket(90, 20),
        ),
        certificate_statuses=(CategoryCount("downloadable", 140), CategoryCount("notpassing", 35)),
        courses=(
            CourseSummary("course-v1:Org+C1+2026", HOSTILE, 500, 420, 120, 130, 0.734),
            CourseSummary("course-v1:Org+C2+2026", "", 154, 142, 20, 25, None),
        ),
    )
    return attrs.evolve(data, **changes)


def empty_report() -> ReportData:
    """Report data of a warehouse without any event, for one course since a day."""
    return sample_report(
        course="course-v1:Org+None+2026",
        since=date(2026, 1, 1),
        enrollment_days=(),
        modes=(),
        grade_buckets=(),
        certificate_statuses=(),
        courses=(),
    )


# --- reading the page -----------------------------------------------------------------------------


@attrs.frozen
class Element:
    """An element of the page, the chart it is in (``data-chart`` of its ``<svg>``), its text.

    ``text`` is all the text inside it, its children's included (the DOM's ``textContent``).
    """

    tag: str
    attributes: dict[str, str | None]
    chart: str | None
    text: str = ""


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[Element] = []
        self.chart: str | None = None
        self.open: list[int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "svg":
            self.chart = attributes.get("data-chart")
        self.found.append(Element(tag, attributes, self.chart))
        self.open.append(len(self.found) - 1)

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self.chart = None
        while self.open and self.found[self.open.pop()].tag != tag:
            pass

    def handle_data(self, data: str) -> None:
        for index in self.open:
            element = self.found[index]
            self.found[index] = attrs.evolve(element, text=element.text + data)


def elements(page: str) -> list[Element]:
    parser = _Elements()
    parser.feed(page)
    parser.close()
    return parser.found


def drawn(page: str, chart: str, tag: str) -> list[Element]:
    """The ``tag`` elements (``rect``, ``circle``) carrying a value in ``chart``."""
    return [
        element
        for element in elements(page)
        if element.chart == chart and element.tag == tag and "data-value" in element.attributes
    ]


def number(element: Element, attribute: str) -> float:
    return float(element.attributes[attribute] or "nan")


def texts(page: str, tag: str) -> list[str]:
    return [element.text for element in elements(page) if element.tag == tag]


# --- the page -------------------------------------------------------------------------------------


def test_every_chart_is_drawn_with_a_heading() -> None:
    page = render_report(sample_report())
    charts_drawn = [
        element.attributes["data-chart"] for element in elements(page) if element.tag == "svg"
    ]
    assert charts_drawn == list(CHARTS)
    assert texts(page, "h2") == [
        "Enrollments over time",
        "Grade distribution",
        "Enrollment modes",
        "Certificates by status",
        "Courses",
    ]
    assert "data-no-data" not in page


def test_every_chart_has_axis_labels() -> None:
    page = render_report(sample_report())
    for chart in CHARTS:
        labels = [
            e.text
            for e in elements(page)
            if e.chart == chart and e.attributes.get("class") == "axis-label"
        ]
        assert len(labels) == 2, chart
        assert all(labels), chart


def test_missing_days_are_drawn_as_zero() -> None:
    page = render_report(sample_report())
    points = drawn(page, "enrollments", "circle")
    enrollments = [
        int(number(p, "data-value")) for p in points if "series-1" in str(p.attributes["class"])
    ]
    unenrollments = [
        int(number(p, "data-value")) for p in points if "series-2" in str(p.attributes["class"])
    ]
    assert enrollments == [12, 30, 0, 0, 7]
    assert unenrollments == [1, 4, 0, 0, 0]


def test_points_are_placed_by_day_and_value() -> None:
    page = render_report(sample_report())
    points = [
        p for p in drawn(page, "enrollments", "circle") if "series-1" in str(p.attributes["class"])
    ]
    xs = [number(p, "cx") for p in points]
    gaps = {round(b - a, 1) for a, b in itertools.pairwise(xs)}
    assert len(gaps) == 1
    assert gaps.pop() > 0
    zero_y = number(points[2], "cy")
    heights = [zero_y - number(p, "cy") for p in points]
    assert heights[2] == heights[3] == 0
    assert heights[1] / 30 == pytest.approx(heights[0] / 12, rel=0.02)
    assert heights[4] / 7 == pytest.approx(heights[0] / 12, rel=0.02)


def test_a_single_day_is_one_point_per_series() -> None:
    page = render_report(sample_report(enrollment_days=(EnrollmentDay(date(2026, 3, 1), 3, 0),)))
    assert [int(number(p, "data-value")) for p in drawn(page, "enrollments", "circle")] == [3, 0]


def test_grade_buckets_are_ten_bars_with_heights_proportional_to_learners() -> None:
    page = render_report(sample_report())
    bars = drawn(page, "grades", "rect")
    assert [int(number(bar, "data-value")) for bar in bars] == [5, 0, 0, 0, 0, 40, 0, 80, 0, 20]
    heights = [number(bar, "height") for bar in bars]
    assert heights[1] == 0
    assert heights[7] / 80 == pytest.approx(heights[0] / 5, rel=0.02)
    assert heights[5] / 40 == pytest.approx(heights[0] / 5, rel=0.02)
    bottoms = {round(number(bar, "y") + number(bar, "height"), 1) for bar in bars}
    assert len(bottoms) == 1


@pytest.mark.parametrize(
    ("chart", "values"), [("modes", [412, 230, 9]), ("certificates", [140, 35])]
)
def test_category_bars_have_widths_proportional_to_learners(chart: str, values: list[int]) -> None:
    page = render_report(sample_report())
    bars = drawn(page, chart, "rect")
    assert [int(number(bar, "data-value")) for bar in bars] == values
    widths = [number(bar, "width") for bar in bars]
    for width, value in zip(widths, values, strict=True):
        assert width / value == pytest.approx(widths[0] / values[0], rel=0.02)


def test_values_are_printed_on_the_charts() -> None:
    page = render_report(sample_report())
    for chart, value in [("grades", "80"), ("modes", "412"), ("certificates", "140")]:
        printed = [
            e.text
            for e in elements(page)
            if e.chart == chart and e.attributes.get("class") == "value"
        ]
        assert value in printed, chart


def test_text_from_events_is_escaped() -> None:
    page = render_report(sample_report(course=HOSTILE))
    assert "<script" not in page
    assert "alert('x')" not in page
    assert not [element for element in elements(page) if element.tag == "script"]
    assert HOSTILE in texts(page, "td")
    assert HOSTILE in texts(page, "dd")
    mode_tips = [e.text for e in elements(page) if e.chart == "modes" and e.tag == "title"]
    assert f"{HOSTILE}: 9" in mode_tips


def test_long_labels_are_cut_but_kept_whole_in_the_tooltip() -> None:
    long_mode = "professional-with-a-remarkably-long-mode-name"
    page = render_report(sample_report(modes=(CategoryCount(long_mode, 3),)))
    ticks = [
        e.text for e in elements(page) if e.chart == "modes" and e.attributes.get("class") == "tick"
    ]
    assert long_mode not in ticks
    assert any(tick.endswith("…") and long_mode.startswith(tick[:-1]) for tick in ticks)
    assert f"{long_mode}: 3" in [
        e.text for e in elements(page) if e.chart == "modes" and e.tag == "title"
    ]


def test_no_data_is_said_for_every_chart_and_the_table() -> None:
    page = render_report(empty_report())
    assert not [element for element in elements(page) if element.tag == "svg"]
    states = [
        e.attributes["data-no-data"] for e in elements(page) if "data-no-data" in e.attributes
    ]
    assert states == ["enrollments", "grades", "modes", "certificates"]
    assert any(text.startswith("No data") for text in texts(page, "td"))


def test_grades_all_in_empty_buckets_are_no_data() -> None:
    page = render_report(sample_report(grade_buckets=(GradeBucket(10, 0),)))
    states = [
        e.attributes["data-no-data"] for e in elements(page) if "data-no-data" in e.attributes
    ]
    assert states == ["grades"]


def test_header_names_the_database_kind_time_and_filters() -> None:
    page = render_report(empty_report())
    facts = dict(zip(texts(page, "dt"), texts(page, "dd"), strict=True))
    assert facts == {
        "Generated": "2026-11-27 07:30 UTC",
        "Warehouse": "SQLite",
        "Course": "course-v1:Org+None+2026",
        "Enrollments since": "2026-01-01",
    }


def test_course_table_rows() -> None:
    page = render_report(sample_report())
    cells = texts(page, "td")
    assert cells[:7] == ["course-v1:Org+C1+2026", HOSTILE, "500", "420", "120", "130", "73.4%"]
    assert cells[7:] == ["course-v1:Org+C2+2026", "—", "154", "142", "20", "25", "—"]


@pytest.mark.parametrize("data", [sample_report(), empty_report()], ids=["data", "empty"])
def test_the_page_needs_nothing_from_outside(data: ReportData) -> None:
    page = render_report(data)
    assert not re.search(r"""\b(src|href|srcset|action|poster)\s*=""", page, re.IGNORECASE)
    assert not re.search(r"url\(|@import", page, re.IGNORECASE)
    assert not [element for element in elements(page) if element.tag in {"script", "link", "img"}]
    assert "Content-Security-Policy" in page
    assert "default-src 'none'" in page
    assert set(re.findall(r"https?://[^\s\"'<>]*", page)) <= {"http://www.w3.org/2000/svg"}


# --- chart pieces ---------------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=10**9))
def test_ticks_cover_the_maximum_in_even_round_steps(maximum: int) -> None:
    ticks = charts.nice_ticks(maximum)
    assert ticks[0] == 0
    assert ticks[-1] >= maximum
    steps = {b - a for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1
    step = steps.pop()
    assert re.fullmatch(r"[125]0*", str(step))
    assert 2 <= len(ticks) <= 6


def test_chart_labels_and_tooltips_are_escaped() -> None:
    svg = charts.bar_chart("x", [charts.Bar("<b>&", 2)], x_label="<i>", y_label="\"'")
    assert "<b>" not in svg
    assert "<i>" not in svg
    assert "&lt;b&gt;&amp;" in svg


# --- reading the views ----------------------------------------------------------------------------


VIEW_ROWS: dict[str, list[dict[str, object]]] = {
    "report_enrollment_daily": [
        {
            "day": "2026-03-01",
            "course_key": "c1",
            "mode": "audit",
            "enrollments": 3,
            "mode_changes": 0,
            "unenrollments": 1,
        },
        {
            "day": "2026-03-01",
            "course_key": "c1",
            "mode": "verified",
            "enrollments": 2,
            "mode_changes": 1,
            "unenrollments": 0,
        },
        {
            "day": "2026-03-01",
            "course_key": "c2",
            "mode": "audit",
            "enrollments": 5,
            "mode_changes": 0,
            "unenrollments": 2,
        },
        {
            "day": "2026-03-04",
            "course_key": "c2",
            "mode": "audit",
            "enrollments": 1,
            "mode_changes": 0,
            "unenrollments": 0,
        },
    ],
    "report_course_modes": [
        {"course_key": "c1", "mode": "audit", "active_learners": 2},
        {"course_key": "c1", "mode": "verified", "active_learners": 2},
        {"course_key": "c2", "mode": "audit", "active_learners": 4},
    ],
    "report_grade_distribution": [
        {"course_key": "c1", "bucket": 90, "learners": 1},
        {"course_key": "c2", "bucket": 90, "learners": 2},
        {"course_key": "c2", "bucket": 40, "learners": 1},
    ],
    "report_certificates_by_status": [
        {"course_key": "c1", "status": "downloadable", "learners": 1},
        {"course_key": "c2", "status": "notpassing", "learners": 3},
    ],
    "report_course_summary": [
        {
            "course_key": "c2",
            "course_name": "Two",
            "enrolled_learners": 6,
            "active_learners": 4,
            "certificates_downloadable": 0,
            "passing_learners": 2,
            "average_grade": 0.5,
        },
        {
            "course_key": "c1",
            "course_name": None,
            "enrolled_learners": 3,
            "active_learners": 4,
            "certificates_downloadable": 1,
            "passing_learners": 1,
            "average_grade": None,
        },
    ],
}


@pytest.fixture
def views() -> Iterator[sa.Connection]:
    """A SQLite database with tables shaped like the reporting views (days as text, as there)."""
    engine = sa.create_engine("sqlite://")
    with engine.begin() as connection:
        for name, rows in VIEW_ROWS.items():
            columns = ", ".join(rows[0])
            connection.execute(sa.text(f"CREATE TABLE {name} ({columns})"))
            marks = ", ".join(f":{column}" for column in rows[0])
            connection.execute(sa.text(f"INSERT INTO {name} VALUES ({marks})"), rows)
    with engine.connect() as connection:
        yield connection
    engine.dispose()


def test_collect_sums_over_courses(views: sa.Connection) -> None:
    data = collect_report(views)
    assert data.dialect == "sqlite"
    assert data.generated_at.tzinfo is not None
    assert data.enrollment_days == (
        EnrollmentDay(date(2026, 3, 1), 10, 3),
        EnrollmentDay(date(2026, 3, 4), 1, 0),
    )
    assert data.modes == (CategoryCount("audit", 6), CategoryCount("verified", 2))
    assert data.grade_buckets == (GradeBucket(40, 1), GradeBucket(90, 3))
    assert data.certificate_statuses == (
        CategoryCount("notpassing", 3),
        CategoryCount("downloadable", 1),
    )
    assert [course.course_key for course in data.courses] == ["c1", "c2"]
    assert data.courses[0] == CourseSummary("c1", "", 3, 4, 1, 1, None)
    assert data.courses[1].average_grade == pytest.approx(0.5)


def test_collect_for_one_course(views: sa.Connection) -> None:
    data = collect_report(views, course="c1")
    assert data.course == "c1"
    assert data.enrollment_days == (EnrollmentDay(date(2026, 3, 1), 5, 1),)
    assert data.modes == (CategoryCount("audit", 2), CategoryCount("verified", 2))
    assert data.grade_buckets == (GradeBucket(90, 1),)
    assert data.certificate_statuses == (CategoryCount("downloadable", 1),)
    assert [course.course_key for course in data.courses] == ["c1"]


def test_collect_since_limits_the_days_only(views: sa.Connection) -> None:
    data = collect_report(views, since=date(2026, 3, 2))
    assert data.since == date(2026, 3, 2)
    assert data.enrollment_days == (EnrollmentDay(date(2026, 3, 4), 1, 0),)
    assert len(data.courses) == 2


def test_collect_binds_the_course_instead_of_splicing_it(views: sa.Connection) -> None:
    data = collect_report(views, course="c1' OR '1'='1")
    assert data.courses == ()
    assert data.enrollment_days == ()


def test_collect_finds_nothing_in_empty_views(views: sa.Connection) -> None:
    data = collect_report(views, course="nowhere", since=date(2027, 1, 1))
    page = render_report(data)
    assert page.count("data-no-data=") == 4


# --- writing the file -----------------------------------------------------------------------------


def test_an_unmigrated_warehouse_is_refused(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(SchemaOutOfDateError, match="sink migrate"):
        write_html_report(engine, tmp_path / "report.html")
    engine.dispose()
    assert not (tmp_path / "report.html").exists()
