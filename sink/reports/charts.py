"""Charts as inline SVG, built from plain values: no script, no external resource.

Three builders, each a pure function returning one ``<svg>`` element as text:

* :func:`column_chart` — vertical bars over categories (a histogram);
* :func:`bar_chart` — horizontal bars, for categories with long names;
* :func:`line_chart` — one or more series over evenly spaced points (days), each point a marker.

Callers draw at least one bar or point (an empty chart is the page's "no data" state, not a
chart's). Every chart has axis labels, a value axis with gridlines on "nice" ticks
(:func:`nice_ticks`), and each bar or point carries its exact value twice: as a visible label where
it fits, and in a ``<title>`` (the browser's hover tooltip). Every text is escaped here, so callers
hand over raw values. Colours come from CSS classes (``bar``, ``series-<n>``, ``grid``,
``axis-label``…) that the page styles, so the charts follow its light or dark theme.

Bars and points are tagged for tests and scripts: ``data-value`` holds the drawn value, and
``data-chart`` on the ``<svg>`` names the chart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Final

import attrs

#: Width of every chart in SVG user units (the page scales it to its card).
WIDTH: Final = 560
#: Height of the plot area of column and line charts.
PLOT_HEIGHT: Final = 220
#: Height of one row of a horizontal bar chart with many bars.
ROW_HEIGHT: Final = 30
#: Least height of the plot area of a horizontal bar chart (a few bars get taller rows).
BARS_MIN_HEIGHT: Final = 132
#: Thickest bar of a horizontal bar chart.
BAR_THICKNESS: Final = 24
#: Longest category label shown whole; longer ones are cut with an ellipsis (full text on hover).
LABEL_CHARS: Final = 22


@attrs.frozen
class Bar:
    """One bar: a category and its count.

    Attributes:
        label: Category name shown on the category axis.
        value: The count (the bar's length); never negative.
    """

    label: str
    value: int


@attrs.frozen
class Series:
    """One line of a line chart.

    Attributes:
        name: Shown in the legend and in every point's tooltip.
        values: One count per point of the chart, in order.
    """

    name: str
    values: tuple[int, ...]


@attrs.frozen
class Frame:
    """Margins around the plot area, in SVG user units.

    Attributes:
        left: Room for the value ticks (or category labels) and the vertical axis label.
        right: Room for values printed past a bar's end.
        top: Room for a legend or values above a column.
        bottom: Room for category ticks and the horizontal axis label.
    """

    left: int
    right: int
    top: int
    bottom: int


def nice_ticks(maximum: int, count: int = 4) -> list[int]:
    """Value-axis ticks from 0 to at least ``maximum``: steps of 1, 2 or 5 times a power of ten.

    >>> nice_ticks(0), nice_ticks(7), nice_ticks(230)
    ([0, 1], [0, 2, 4, 6, 8], [0, 100, 200, 300])
    """
    if maximum <= 0:
        return [0, 1]
    raw = maximum / count
    power = 10 ** math.floor(math.log10(raw))
    step = max(1, next(m * power for m in (1, 2, 5, 10) if m * power >= raw))
    top = math.ceil(maximum / step) * step
    return list(range(0, int(top) + 1, int(step)))


def column_chart(name: str, bars: Sequence[Bar], *, x_label: str, y_label: str) -> str:
    """Vertical bars, one per category in order, their counts printed above them."""
    frame = Frame(left=64, right=16, top=24, bottom=56)
    ticks = nice_ticks(max(bar.value for bar in bars))
    band = (WIDTH - frame.left - frame.right) / len(bars)
    parts = [*_value_grid(frame, ticks), _axis_labels(frame, PLOT_HEIGHT, x_label, y_label)]
    for index, bar in enumerate(bars):
        height = bar.value / ticks[-1] * PLOT_HEIGHT
        x = frame.left + index * band + band * 0.15
        y = frame.top + PLOT_HEIGHT - height
        parts.append(_rect(x, y, band * 0.7, height, bar))
        centre = x + band * 0.35
        parts.append(_text(centre, frame.top + PLOT_HEIGHT + 18, _short(bar.label), "tick"))
        if bar.value:
            parts.append(_text(centre, y - 6, f"{bar.value:,}", "value"))
    return _svg(name, frame.top + PLOT_HEIGHT + frame.bottom, parts)


def bar_chart(name: str, bars: Sequence[Bar], *, x_label: str, y_label: str) -> str:
    """Horizontal bars, one row per category in order, their counts printed past their ends."""
    frame = Frame(left=170, right=56, top=8, bottom=52)
    ticks = nice_ticks(max(bar.value for bar in bars))
    plot_width = WIDTH - frame.left - frame.right
    plot_height = max(ROW_HEIGHT * len(bars), BARS_MIN_HEIGHT)
    row = plot_height / len(bars)
    thickness = min(row - 10, BAR_THICKNESS)
    parts = [
        *_count_grid(frame, ticks, plot_height),
        _axis_labels(frame, plot_height, x_label, y_label),
    ]
    for index, bar in enumerate(bars):
        width = bar.value / ticks[-1] * plot_width
        middle = frame.top + (index + 0.5) * row
        parts.append(_rect(frame.left, middle - thickness / 2, width, thickness, bar))
        baseline = middle + 4.5
        parts.append(_text(frame.left - 8, baseline, _short(bar.label), "tick", anchor="end"))
        parts.append(_text(frame.left + width + 6, baseline, f"{bar.value:,}", "value", "start"))
    return _svg(name, frame.top + plot_height + frame.bottom, parts)


def line_chart(
    name: str, labels: Sequence[str], series: Sequence[Series], *, x_label: str, y_label: str
) -> str:
    """Lines over evenly spaced points labelled ``labels``, a marker on every point, a legend."""
    frame = Frame(left=64, right=40, top=36, bottom=56)
    ticks = nice_ticks(max(max(line.values) for line in series))
    plot_width = WIDTH - frame.left - frame.right
    step = plot_width / (len(labels) - 1) if len(labels) > 1 else 0.0
    start = frame.left + (0.0 if len(labels) > 1 else plot_width / 2)
    xs = [start + index * step for index in range(len(labels))]
    parts = [*_value_grid(frame, ticks), _axis_labels(frame, PLOT_HEIGHT, x_label, y_label)]
    parts.extend(_text(xs[i], frame.top + PLOT_HEIGHT + 18, labels[i], "tick") for i in _shown(xs))
    radius = min(3.5, max(1.5, step / 3)) if step else 3.5
    for number, line in enumerate(series, start=1):
        ys = [frame.top + PLOT_HEIGHT - value / ticks[-1] * PLOT_HEIGHT for value in line.values]
        parts.append(_polyline(xs, ys, number))
        parts.extend(
            _point(x, y, radius, number, value, tip=f"{label} · {line.name}: {value:,}")
            for x, y, value, label in zip(xs, ys, line.values, labels, strict=True)
        )
    parts.append(_legend(frame, series))
    return _svg(name, frame.top + PLOT_HEIGHT + frame.bottom, parts)


# --- pieces ---------------------------------------------------------------------------------------


def _svg(name: str, height: float, parts: Sequence[str]) -> str:
    body = "\n".join(parts)
    return (
        f'<svg class="chart" data-chart="{escape(name)}" viewBox="0 0 {WIDTH} {_n(height)}"'
        f' role="img" xmlns="http://www.w3.org/2000/svg">\n{body}\n</svg>'
    )


def _value_grid(frame: Frame, ticks: Sequence[int]) -> list[str]:
    """Horizontal gridlines and tick values of a vertical value axis."""
    parts = []
    for tick in ticks:
        y = frame.top + PLOT_HEIGHT - tick / ticks[-1] * PLOT_HEIGHT
        parts.append(_line(frame.left, y, WIDTH - frame.right, y, "grid"))
        parts.append(_text(frame.left - 8, y + 4, f"{tick:,}", "tick", anchor="end"))
    return parts


def _count_grid(frame: Frame, ticks: Sequence[int], plot_height: float) -> list[str]:
    """Vertical gridlines and tick values of a horizontal value axis."""
    parts = []
    plot_width = WIDTH - frame.left - frame.right
    for tick in ticks:
        x = frame.left + tick / ticks[-1] * plot_width
        parts.append(_line(x, frame.top, x, frame.top + plot_height, "grid"))
        parts.append(_text(x, frame.top + plot_height + 18, f"{tick:,}", "tick"))
    return parts


def _axis_labels(frame: Frame, plot_height: float, x_label: str, y_label: str) -> str:
    """The horizontal axis label under the plot; the vertical one, turned, left of it."""
    middle = frame.left + (WIDTH - frame.left - frame.right) / 2
    horizontal = _text(middle, frame.top + plot_height + 44, x_label, "axis-label")
    vertical = _text(16, frame.top + plot_height / 2, y_label, "axis-label", rotate=True)
    return f"{horizontal}\n{vertical}"


def _legend(frame: Frame, series: Sequence[Series]) -> str:
    parts = []
    x = float(frame.left)
    for number, line in enumerate(series, start=1):
        caption = f"{line.name} ({sum(line.values):,})"
        parts.append(
            f'<rect class="swatch series-{number}" x="{_n(x)}" y="8" width="12" height="12"'
            ' rx="2"/>'
        )
        parts.append(_text(x + 18, 18, caption, "legend", anchor="start"))
        x += 36 + 7 * len(caption)
    return f'<g class="legend">{"".join(parts)}</g>'


def _shown(xs: Sequence[float]) -> list[int]:
    """Indexes of the points whose labels fit under the axis (about 90 units apart), last kept."""
    every = max(1, math.ceil(90 / (xs[1] - xs[0]))) if len(xs) > 1 else 1
    shown = list(range(0, len(xs), every))
    if shown[-1] != len(xs) - 1:
        shown[-1] = len(xs) - 1
    return shown


def _rect(x: float, y: float, width: float, height: float, bar: Bar) -> str:
    tip = f"{bar.label}: {bar.value:,}"
    return (
        f'<rect class="bar" x="{_n(x)}" y="{_n(y)}" width="{_n(width)}" height="{_n(height)}"'
        f' rx="2" data-value="{bar.value}"><title>{escape(tip)}</title></rect>'
    )


def _point(x: float, y: float, radius: float, number: int, value: int, *, tip: str) -> str:
    return (
        f'<circle class="point series-{number}" cx="{_n(x)}" cy="{_n(y)}" r="{_n(radius)}"'
        f' data-value="{value}"><title>{escape(tip)}</title></circle>'
    )


def _polyline(xs: Sequence[float], ys: Sequence[float], number: int) -> str:
    points = " ".join(f"{_n(x)},{_n(y)}" for x, y in zip(xs, ys, strict=True))
    return f'<polyline class="line series-{number}" points="{points}"/>'


def _line(x1: float, y1: float, x2: float, y2: float, css_class: str) -> str:
    return f'<line class="{css_class}" x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}"/>'


def _text(
    x: float,
    y: float,
    content: str,
    css_class: str,
    anchor: str = "middle",
    *,
    rotate: bool = False,
) -> str:
    turn = f' transform="rotate(-90 {_n(x)} {_n(y)})"' if rotate else ""
    return (
        f'<text class="{css_class}" x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}"{turn}>'
        f"{escape(content)}</text>"
    )


def _short(label: str) -> str:
    """``label`` cut to :data:`LABEL_CHARS` characters with an ellipsis (the tooltip has it all)."""
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def _n(number: float) -> str:
    """A coordinate with at most two decimals, no trailing zeros."""
    return f"{number:.2f}".rstrip("0").rstrip(".")
