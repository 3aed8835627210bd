"""The catalog of reports: one :class:`Report` per reporting view.

The views themselves are SQL frozen in an Alembic revision (``migrations/versions/…_reporting_views
.py``); this catalog says what each one answers, what its columns mean and how ``sink report``
filters and orders it. It is the single source for the CLI, for ``docs/reports.md`` and for the
test that compares it with the real view columns on every database.

Conventions of every view:

* user ids are the numeric LMS ids (never usernames or e-mail addresses);
* "latest" is the event with the greatest ``(event_time, event_id)`` for the key;
* ``day`` is the UTC calendar date of ``event_time`` (``DATE``; ``'YYYY-MM-DD'`` text on SQLite);
* times are UTC.
"""

from __future__ import annotations

import enum
from typing import Final

import attrs

from sink.errors import ReportError


class ColumnKind(enum.StrEnum):
    """What a report column holds; decides how it is bound, read back and printed."""

    TEXT = "text"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp"
    UUID = "uuid"


@attrs.frozen
class ReportColumn:
    """One column of a reporting view.

    Attributes:
        name: Column name in the view.
        kind: What it holds.
        description: One line for the docs and ``sink report --help`` readers.
    """

    name: str
    kind: ColumnKind
    description: str


@attrs.frozen
class Report:
    """One reporting view and how ``sink report`` shows it.

    Attributes:
        view: Name of the view (``report_…``).
        question: The one question the report answers.
        columns: The view's columns, in view order.
        order_by: Columns the rows are sorted by (ascending), so output is deterministic.
        course_column: The column ``--course`` filters on (equality), or None when the report has
            no course.
        since_column: The ``DATE`` or ``TIMESTAMP`` column ``--since`` filters on (on or after
            that UTC date), or None when the report has no time column.
    """

    view: str
    question: str
    columns: tuple[ReportColumn, ...]
    order_by: tuple[str, ...]
    course_column: str | None = None
    since_column: str | None = None

    @property
    def name(self) -> str:
        """The CLI name: the view name without ``report_``, underscores as dashes."""
        return self.view.removeprefix("report_").replace("_", "-")

    @property
    def column_names(self) -> tuple[str, ...]:
        """The column names, in view order."""
        return tuple(column.name for column in self.columns)

    def column(self, name: str) -> ReportColumn:
        """The column called ``name``.

        Raises:
            KeyError: The report has no such column.
        """
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


def _column(name: str, kind: ColumnKind, description: str) -> ReportColumn:
    return ReportColumn(name, kind, description)


def _user_id(description: str = "Numeric LMS user id of the learner.") -> ReportColumn:
    return _column("user_id", ColumnKind.INTEGER, description)


def _course_key(description: str = "Course key (course-v1:…).") -> ReportColumn:
    return _column("course_key", ColumnKind.TEXT, description)


def _day(description: str = "UTC calendar date of the events.") -> ReportColumn:
    return _column("day", ColumnKind.DATE, description)


_TEXT, _INTEGER, _FLOAT = ColumnKind.TEXT, ColumnKind.INTEGER, ColumnKind.FLOAT
_BOOLEAN, _TIMESTAMP = ColumnKind.BOOLEAN, ColumnKind.TIMESTAMP

#: Every report, in the order ``sink report`` lists them.
REPORTS: Final[tuple[Report, ...]] = (
    Report(
        view="report_course_summary",
        question="How is each course doing: learners, certificates, grades?",
        columns=(
            _course_key("Course key of every course seen in enrollment events."),
            _column("course_name", _TEXT, "Display name in the course's latest enrollment event."),
            _column("enrolled_learners", _INTEGER, "Learners who ever had an enrollment event."),
            _column("active_learners", _INTEGER, "Learners whose latest enrollment is active."),
            _column(
                "certificates_downloadable",
                _INTEGER,
                "Learners whose latest certificate status is 'downloadable'.",
            ),
            _column("passing_learners", _INTEGER, "Learners whose latest grade is passing."),
            _column(
                "average_grade",
                _FLOAT,
                "Mean of the learners' latest percent grades (0-1); NULL when none is known.",
            ),
        ),
        order_by=("course_key",),
        course_column="course_key",
    ),
    Report(
        view="report_enrollment_current",
        question="Who is enrolled in which course, in which mode, right now?",
        columns=(
            _user_id(),
            _course_key(),
            _column("course_name", _TEXT, "Course display name in the latest enrollment event."),
            _column("mode", _TEXT, "Enrollment mode (audit, verified, honor, …)."),
            _column("is_active", _BOOLEAN, "Whether the enrollment is active (false: unenrolled)."),
            _column("enrolled_at", _TIMESTAMP, "When the enrollment was first created (UTC)."),
            _column("updated_at", _TIMESTAMP, "Time of the latest enrollment event (UTC)."),
            _column("last_event_type", _TEXT, "Event type of the latest enrollment event."),
        ),
        order_by=("course_key", "user_id"),
        course_column="course_key",
        since_column="updated_at",
    ),
    Report(
        view="report_enrollment_daily",
        question="How many enrollments, mode changes and unenrollments per day, course and mode?",
        columns=(
            _day(),
            _course_key(),
            _column("mode", _TEXT, "Enrollment mode carried by the events."),
            _column("enrollments", _INTEGER, "course.enrollment.created events."),
            _column(
                "mode_changes",
                _INTEGER,
                "course.enrollment.changed events (a change of mode or of activation).",
            ),
            _column("unenrollments", _INTEGER, "course.unenrollment.completed events."),
        ),
        order_by=("day", "course_key", "mode"),
        course_column="course_key",
        since_column="day",
    ),
    Report(
        view="report_course_modes",
        question="How many active learners does each course have per enrollment mode?",
        columns=(
            _course_key(),
            _column("mode", _TEXT, "Enrollment mode."),
            _column("active_learners", _INTEGER, "Learners whose latest enrollment is active."),
        ),
        order_by=("course_key", "mode"),
        course_column="course_key",
    ),
    Report(
        view="report_grades_current",
        question="What is each learner's latest grade in each course?",
        columns=(
            _user_id(),
            _course_key(),
            _column("percent_grade", _FLOAT, "Latest percent grade, from 0 to 1."),
            _column("letter_grade", _TEXT, "Latest letter grade; empty below the pass mark."),
            _column("passed", _BOOLEAN, "Whether the latest letter grade is not empty."),
            _column("graded_at", _TIMESTAMP, "Time of the latest grade event (UTC)."),
        ),
        order_by=("course_key", "user_id"),
        course_column="course_key",
        since_column="graded_at",
    ),
    Report(
        view="report_grade_distribution",
        question="How are the learners' latest grades distributed in each course?",
        columns=(
            _course_key(),
            _column(
                "bucket",
                _INTEGER,
                "Lower bound of a 10-point band: 0, 10, …, 90 (100% counts in 90); "
                "bands without learners are absent.",
            ),
            _column("learners", _INTEGER, "Learners whose latest grade falls in the band."),
        ),
        order_by=("course_key", "bucket"),
        course_column="course_key",
    ),
    Report(
        view="report_certificates_current",
        question="What is the latest certificate status of each learner in each course?",
        columns=(
            _user_id(),
            _course_key(),
            _column("mode", _TEXT, "Certificate mode (verified, honor, …)."),
            _column(
                "status",
                _TEXT,
                "Latest certificate status (downloadable, unavailable, notpassing, …).",
            ),
            _column("grade", _TEXT, "Grade printed on the certificate."),
            _column("updated_at", _TIMESTAMP, "Time of the latest certificate event (UTC)."),
        ),
        order_by=("course_key", "user_id"),
        course_column="course_key",
        since_column="updated_at",
    ),
    Report(
        view="report_certificates_by_status",
        question="How many learners are in each certificate status, per course?",
        columns=(
            _course_key(),
            _column("status", _TEXT, "Latest certificate status."),
            _column("learners", _INTEGER, "Learners whose latest certificate has that status."),
        ),
        order_by=("course_key", "status"),
        course_column="course_key",
    ),
    Report(
        view="report_user_activity_daily",
        question="How many registrations, logins and active users per day?",
        columns=(
            _day(),
            _column("registrations", _INTEGER, "student.registration.completed events."),
            _column("logins", _INTEGER, "auth.session.login.completed events."),
            _column("active_users", _INTEGER, "Distinct users who logged in that day."),
        ),
        order_by=("day",),
        since_column="day",
    ),
    Report(
        view="report_exam_attempts",
        question="How many exam attempt events per course, exam type and status?",
        columns=(
            _course_key(),
            _column("exam_type", _TEXT, "Exam type (proctored, timed, practice, onboarding…)."),
            _column(
                "status",
                _TEXT,
                "Last word of the event type: submitted, verified, rejected, errored, reset.",
            ),
            _column("attempts", _INTEGER, "Exam attempt events."),
            _column("learners", _INTEGER, "Distinct learners (student user ids)."),
        ),
        order_by=("course_key", "exam_type", "status"),
        course_column="course_key",
    ),
    Report(
        view="report_forum_activity_daily",
        question="How many forum threads, responses and comments per day and course?",
        columns=(
            _day(),
            _course_key("Course key of the posts (their course_id)."),
            _column("threads", _INTEGER, "forum.thread.created events."),
            _column("responses", _INTEGER, "forum.thread.response.created events."),
            _column("comments", _INTEGER, "forum.thread.response.comment.created events."),
            _column("authors", _INTEGER, "Distinct user ids of the authors."),
        ),
        order_by=("day", "course_key"),
        course_column="course_key",
        since_column="day",
    ),
    Report(
        view="report_enterprise_ledger",
        question="Where do the enterprise ledger transactions stand, per ledger and state?",
        columns=(
            _column("ledger_uuid", ColumnKind.UUID, "UUID of the subsidy ledger."),
            _column("state", _TEXT, "State in each transaction's latest event."),
            _column("transactions", _INTEGER, "Transactions (by uuid) in that state."),
            _column("quantity", _INTEGER, "Sum of their quantities."),
            _column(
                "reversed", _INTEGER, "Of those, transactions whose latest event has a reversal."
            ),
            _column(
                "net_quantity",
                _INTEGER,
                "Sum of their quantities plus their reversals' quantities.",
            ),
        ),
        order_by=("ledger_uuid", "state"),
    ),
)


def report_names() -> tuple[str, ...]:
    """The CLI names of every report, in catalog order."""
    return tuple(report.name for report in REPORTS)


def report_named(name: str) -> Report:
    """The report whose CLI name (or view name) is ``name``.

    Raises:
        ReportError: No report has that name; the message lists the names.
    """
    for report in REPORTS:
        if name in (report.name, report.view):
            return report
    raise ReportError(f"unknown report {name!r}; the reports are: {', '.join(report_names())}")
