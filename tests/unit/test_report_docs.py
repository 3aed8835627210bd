"""``docs/reports.md`` describes exactly the reports of the catalog.

The part of the page between the ``reports:begin`` and ``reports:end`` markers is rendered from
:data:`sink.reports.views.REPORTS` (question, columns with their descriptions, filters, an example
command). When the catalog changes, regenerate it with ``python -m tests.unit.test_report_docs``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from sink.reports.views import REPORTS, Report

DOC: Final = Path(__file__).resolve().parents[2] / "docs" / "reports.md"
BEGIN: Final = "<!-- reports:begin (generated from sink/reports/views.py) -->"
END: Final = "<!-- reports:end -->"
EXAMPLE_COURSE: Final = "course-v1:OpenedX+DemoX+2026"
EXAMPLE_SINCE: Final = "2026-03-01"


def render_report(report: Report) -> str:
    """The section of one report."""
    lines = [
        f"### `{report.name}`",
        "",
        f"{report.question} View `{report.view}`, sorted by {_code_list(report.order_by)}.",
        "",
        "| column | type | meaning |",
        "|---|---|---|",
        *(
            f"| `{column.name}` | {column.kind.value} | {column.description} |"
            for column in report.columns
        ),
        "",
        _filters(report),
        "",
        "```bash",
        _example(report),
        "```",
    ]
    return "\n".join(lines)


def _code_list(names: tuple[str, ...]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def _filters(report: Report) -> str:
    parts = []
    if report.course_column is not None:
        parts.append(f"`--course` filters on `{report.course_column}`")
    if report.since_column is not None:
        parts.append(f"`--since` filters on `{report.since_column}`")
    if not parts:
        return "Takes neither `--course` nor `--since`."
    return "; ".join(parts) + "."


def _example(report: Report) -> str:
    command = f"sink report {report.name}"
    if report.course_column is not None:
        command += f" --course {EXAMPLE_COURSE}"
    if report.since_column is not None:
        command += f" --since {EXAMPLE_SINCE}"
    return command


def render_reference() -> str:
    """Everything between the markers (markers included)."""
    sections = "\n\n".join(render_report(report) for report in REPORTS)
    return f"{BEGIN}\n\n{sections}\n\n{END}"


def _generated_part(text: str) -> str:
    match = re.search(re.escape(BEGIN) + ".*?" + re.escape(END), text, re.DOTALL)
    assert match is not None, f"{DOC} lacks the generated part's markers"
    return match.group(0)


def test_the_page_lists_exactly_the_catalog() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert _generated_part(text) == render_reference(), (
        "docs/reports.md is out of date: run python -m tests.unit.test_report_docs"
    )


def test_every_report_has_one_section() -> None:
    text = DOC.read_text(encoding="utf-8")
    for report in REPORTS:
        assert text.count(f"### `{report.name}`") == 1


def regenerate() -> None:
    """Replace the generated part of the page."""
    text = DOC.read_text(encoding="utf-8")
    DOC.write_text(text.replace(_generated_part(text), render_reference()), encoding="utf-8")


if __name__ == "__main__":
    regenerate()
