"""The HTML report in a real browser: Debian's Chromium driven by Playwright (no browser download).

The page is opened from its file with every other request blocked and counted; console messages
and page errors are collected. Each test asserts that nothing was requested, nothing went wrong,
the four charts are laid out with a size, they draw as many bars and points as the data has, and
the headings are there; a screenshot lands in the test's ``tmp_path``.

The data is the synthetic :func:`tests.unit.test_report_html.sample_report` (and its empty
variant).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Route, sync_playwright

from sink.reports.html import ReportData, render_report
from tests.unit.test_report_html import HOSTILE, empty_report, sample_report

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
