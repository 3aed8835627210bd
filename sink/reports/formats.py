"""Printing report rows: an aligned text table, CSV, or JSON.

* ``table``: a header of column names, then one line per row, columns two spaces apart, numbers
  right-aligned; empty cells for NULL, ``true``/``false``, floats to 4 significant digits;
* ``csv``: RFC 4180 with a header line; floats in full precision;
* ``json``: a list of objects keyed by column name; numbers and booleans as JSON numbers and
  booleans, NULL as ``null``, dates and times as ISO 8601 strings (times in UTC, ``+00:00``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import date
from typing import Any, Final

from sink.reports.query import ReportRows
from sink.reports.views import ColumnKind

#: The ``--format`` choices.
FORMATS: Final = ("table", "csv", "json")

_NUMERIC: Final = frozenset({ColumnKind.INTEGER, ColumnKind.FLOAT})


def render(result: ReportRows, output_format: str) -> str:
    """``result`` in ``output_format`` (one of :data:`FORMATS`), ending with a newline.

    Raises:
        ValueError: Unknown format.
    """
    renderers: dict[str, Callable[[ReportRows], str]] = {
        "table": as_table,
        "csv": as_csv,
        "json": as_json,
    }
    if output_format not in renderers:
        raise ValueError(f"unknown format {output_format!r} (one of {', '.join(FORMATS)})")
    return renderers[output_format](result)


def as_table(result: ReportRows) -> str:
    """The rows as an aligned text table (``(no rows)`` under the header when empty)."""
    header = [column.name for column in result.columns]
    cells = [[_table_cell(value) for value in row] for row in result.rows]
    widths = [max(len(line[index]) for line in [header, *cells]) for index in range(len(header))]
    right = [column.kind in _NUMERIC for column in result.columns]
    lines = [_aligned(header, widths, right), *(_aligned(row, widths, right) for row in cells)]
    if not cells:
        lines.append("(no rows)")
    return "\n".join(lines) + "\n"


def _aligned(cells: list[str], widths: list[int], right: list[bool]) -> str:
    padded = (
        cell.rjust(width) if is_right else cell.ljust(width)
        for cell, width, is_right in zip(cells, widths, right, strict=True)
    )
    return "  ".join(padded).rstrip()


def _table_cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return _text(value)


def as_csv(result: ReportRows) -> str:
    """The rows as CSV with a header line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(column.name for column in result.columns)
    writer.writerows([_csv_cell(value) for value in row] for row in result.rows)
    return out.getvalue()


def _csv_cell(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return _text(value)


def _text(value: Any) -> str:
    """A cell as text: empty for NULL, ``true``/``false``, ISO 8601 for dates and times."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):  # datetimes too
        return value.isoformat()
    return str(value)


def as_json(result: ReportRows) -> str:
    """The rows as a JSON list of objects."""
    return json.dumps(result.as_dicts(), indent=2, default=_json_default) + "\n"


def _json_default(value: Any) -> str:
    if isinstance(value, date):  # datetimes too
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
