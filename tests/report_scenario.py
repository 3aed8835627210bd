"""A small hand-made history of events, and what every reporting view must say about it.

Two courses, five learners (LMS ids 101-105), two days (2026-03-04 and 2026-03-05, UTC) with events
on both sides of midnight. The events go the real way into a warehouse: openedx-events serializes
them (:mod:`tests.producer`), the sink's :class:`~sink.decoder.Decoder` decodes them with its
local schemas, and :meth:`~sink.writer.Warehouse.write` stores them.

Each expected row in :data:`EXPECTED` follows from the comments next to the events; ``E<n>`` is
the event with id ``n`` (event ids are ``UUID(int=n)``, so their order is ``n``'s).

:func:`tz_engine` gives an engine whose sessions run in Tokyo time (UTC+9) on PostgreSQL and
DuckDB: a view that took the session's date instead of the UTC date would move the events of
23:59 UTC to the next day, and the expected rows would not match.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

import attrs
import sqlalchemy as sa
from opaque_keys.edx.keys import CourseKey, UsageKey
from openedx_events.enterprise import data as enterprise
from openedx_events.learning import data as learning

from sink.batch import Batch
from sink.decoder import Decoder
from sink.errors import MessageLocation
from sink.reports.query import Filters, read_report
from sink.reports.views import report_named
from sink.writer import Warehouse
from tests import producer

C1: Final = "course-v1:Demo+C1+2026"
C2: Final = "course-v1:Demo+C2+2026"
L1: Final = UUID("11111111-1111-4111-8111-111111111111")
L2: Final = UUID("22222222-2222-4222-8222-222222222222")
TOPIC: Final = "scenario"
#: The session time zone of :func:`tz_engine`.
SESSION_TIME_ZONE: Final = "Asia/Tokyo"

_PREFIX: Final = "org.openedx.learning."
ENROLLED = _PREFIX + "course.enrollment.created.v1"
CHANGED = _PREFIX + "course.enrollment.changed.v1"
UNENROLLED = _PREFIX + "course.unenrollment.completed.v1"
GRADED = _PREFIX + "course.persistent_grade_summary.changed.v1"
CERT_CREATED = _PREFIX + "certificate.created.v1"
CERT_CHANGED = _PREFIX + "certificate.changed.v1"
CERT_REVOKED = _PREFIX + "certificate.revoked.v1"
REGISTERED = _PREFIX + "student.registration.completed.v1"
LOGGED_IN = _PREFIX + "auth.session.login.completed.v1"
THREAD = _PREFIX + "forum.thread.created.v1"
RESPONSE = _PREFIX + "forum.thread.response.created.v1"
COMMENT = _PREFIX + "forum.thread.response.comment.created.v1"
LEDGER = "org.openedx.enterprise.subsidy_ledger_transaction."
V, OK = "verified", "downloadable"


def exam(status: str) -> str:
    """The exam attempt event type of ``status`` (submitted, verified, …)."""
    return f"{_PREFIX}exam.attempt.{status}.v1"


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A UTC time on day 1 (2026-03-04) or day 2 (2026-03-05)."""
    return datetime(2026, 3, 3 + day, hour, minute, second, tzinfo=UTC)


D1, D2 = at(1, 0).date(), at(2, 0).date()


@attrs.frozen
class Event:
    """One event of the scenario: its id number, type, time (``ce_time``) and upstream payload."""

    number: int
    event_type: str
    time: datetime
    data: Any

    @property
    def event_id(self) -> UUID:
        return UUID(int=self.number)


def _user(user_id: int) -> Any:
    name = f"learner{user_id}"
    pii = learning.UserPersonalData(username=name, email=f"{name}@example.org", name=name)
    return learning.UserData(id=user_id, is_active=True, pii=pii)


def _course(key: str, name: str | None = None) -> Any:
    default = "Course One" if key == C1 else "Course Two"
    return learning.CourseData(course_key=CourseKey.from_string(key), display_name=name or default)


def _enrollment(
    user_id: int, key: str, mode: str, active: bool, created: datetime, name: str | None = None
) -> Any:
    return learning.CourseEnrollmentData(
        user=_user(user_id),
        course=_course(key, name),
        mode=mode,
        is_active=active,
        creation_date=created,
    )


def _grade(user_id: int, key: str, percent: float, letter: str) -> Any:
    when = at(1, 0)
    return learning.PersistentCourseGradeData(
        user_id=user_id,
        course=_course(key),
        course_edited_timestamp=when,
        course_version="v1",
        grading_policy_hash="hash",
        percent_grade=percent,
        letter_grade=letter,
        passed_timestamp=when,
    )


def _certificate(user_id: int, key: str, mode: str, grade: str, status: str, before: str) -> Any:
    return learning.CertificateData(
        user=_user(user_id),
        course=_course(key),
        mode=mode,
        grade=grade,
        download_url="https://lms.example/certificates/x",
        name=f"learner{user_id}",
        current_status=status,
        previous_status=before,
    )


def _exam(user_id: int, key: str, exam_type: str) -> Any:
    usage = UsageKey.from_string(f"block-v1:{key.split(':')[1]}+type@sequential+block@final")
    return learning.ExamAttemptData(
        student_user=_user(user_id),
        course_key=CourseKey.from_string(key),
        usage_key=usage,
        exam_type=exam_type,
    )


def _post(user_id: int, key: str, post_id: str) -> Any:
    return learning.DiscussionThreadData(
        body="text",
        commentable_id="general",
        id=post_id,
        truncated=False,
        url=f"https://lms.example/forum/{post_id}",
        user=_user(user_id),
        course_id=CourseKey.from_string(key),
    )


def _transaction(number: int, ledger: UUID, quantity: int, state: str, reversed_: bool) -> Any:
    when = at(1, 0)
    reversal = None
    if reversed_:
        reversal = enterprise.LedgerTransactionReversal(
            uuid=UUID(int=1000 + number),
            created=when,
            modified=when,
            idempotency_key=f"reversal-{number}",
            quantity=-quantity,
            state="committed",
        )
    return enterprise.LedgerTransaction(
        uuid=UUID(int=number),
        created=when,
        modified=when,
        idempotency_key=f"transaction-{number}",
        quantity=quantity,
        state=state,
        ledger_uuid=ledger,
        subsidy_access_policy_uuid=UUID(int=99),
        lms_user_id=101,
        content_key=CourseKey.from_string(C1),
        reversal=reversal,
    )


def _enrollments() -> list[Event]:
    e = _enrollment
    return [
        # 101 in C1: audit, then verified the same day.
        Event(1, ENROLLED, at(1, 9), e(101, C1, "audit", True, at(1, 9))),
        Event(2, CHANGED, at(1, 12), e(101, C1, "verified", True, at(1, 9))),
        # 102 in C1: enrolls, unenrolls one second before midnight, re-enrolls after it.
        Event(3, ENROLLED, at(1, 10), e(102, C1, "audit", True, at(1, 10))),
        Event(4, UNENROLLED, at(1, 23, 59, 59), e(102, C1, "audit", False, at(1, 10))),
        Event(5, ENROLLED, at(2, 0, 0, 1), e(102, C1, "audit", True, at(1, 10))),
        # 103 in C1: verified, then unenrolled.
        Event(6, ENROLLED, at(2, 8), e(103, C1, "verified", True, at(2, 8))),
        Event(7, UNENROLLED, at(2, 9), e(103, C1, "verified", False, at(2, 8))),
        # 105 in C1: verified.
        Event(8, ENROLLED, at(1, 13), e(105, C1, "verified", True, at(1, 13))),
        # 101 in C2: honor.
        Event(9, ENROLLED, at(1, 11), e(101, C2, "honor", True, at(1, 11))),
        # 104 in C2: audit, then two changes at the same time: E12 (verified) wins over E11 by
        # its greater id, and carries the course's new name.
        Event(10, ENROLLED, at(2, 0, 0, 2), e(104, C2, "audit", True, at(2, 0, 0, 2))),
        Event(12, CHANGED, at(2, 1), e(104, C2, V, True, at(2, 0, 0, 2), name="Course Two (2026)")),
        Event(11, CHANGED, at(2, 1), e(104, C2, "audit", True, at(2, 0, 0, 2))),
    ]  # fmt: skip


def _grades() -> list[Event]:
    return [
        # 101 in C1: failing (empty letter) on day 1, B on day 2: only the B counts.
        Event(20, GRADED, at(1, 15), _grade(101, C1, 0.45, "")),
        Event(21, GRADED, at(2, 10), _grade(101, C1, 0.85, "B")),
        Event(22, GRADED, at(2, 11), _grade(102, C1, 0.8, "B")),
        Event(23, GRADED, at(2, 9, 30), _grade(103, C1, 0.3, "")),
        # 100% counts in the 90 bucket; exactly 70% in the 70 bucket.
        Event(24, GRADED, at(2, 12), _grade(105, C1, 1.0, "A")),
        Event(25, GRADED, at(2, 12), _grade(101, C2, 0.7, "Pass")),
        Event(26, GRADED, at(2, 12), _grade(104, C2, 0.0, "")),
    ]


def _certificates() -> list[Event]:
    c = _certificate
    return [
        Event(30, CERT_CREATED, at(2, 10, 5), c(101, C1, V, "0.85", OK, "")),
        # 105's certificate is revoked.
        Event(31, CERT_CREATED, at(2, 12, 5), c(105, C1, V, "1.0", OK, "")),
        Event(32, CERT_REVOKED, at(2, 13), c(105, C1, V, "1.0", "unavailable", OK)),
        Event(33, CERT_CREATED, at(2, 11), c(102, C1, V, "0.8", "generating", "")),
        Event(34, CERT_CHANGED, at(2, 11, 5), c(102, C1, V, "0.8", OK, "generating")),
        Event(35, CERT_CREATED, at(2, 12, 30), c(101, C2, "honor", "0.7", OK, "")),
    ]  # fmt: skip


def _users() -> list[Event]:
    return [
        Event(40, REGISTERED, at(1, 8), _user(101)),
        Event(41, REGISTERED, at(1, 8, 30), _user(102)),
        # 101 logs in twice just before midnight: 2 logins, 1 active user on day 1.
        Event(42, LOGGED_IN, at(1, 23, 59), _user(101)),
        Event(43, LOGGED_IN, at(1, 23, 59, 30), _user(101)),
        Event(44, REGISTERED, at(2, 0, 0, 30), _user(103)),
        Event(45, LOGGED_IN, at(2, 0, 0, 10), _user(102)),
        Event(46, LOGGED_IN, at(2, 0, 1), _user(101)),
    ]


def _exams() -> list[Event]:
    return [
        Event(50, exam("submitted"), at(1, 14), _exam(101, C1, "proctored")),
        Event(51, exam("verified"), at(1, 15), _exam(101, C1, "proctored")),
        Event(52, exam("submitted"), at(2, 10), _exam(102, C1, "proctored")),
        Event(53, exam("rejected"), at(2, 11), _exam(102, C1, "proctored")),
        # 103 submits, errors, is reset and submits again: 2 of the 4 submissions.
        Event(54, exam("submitted"), at(2, 10, 30), _exam(103, C1, "proctored")),
        Event(55, exam("errored"), at(2, 10, 40), _exam(103, C1, "proctored")),
        Event(56, exam("reset"), at(2, 10, 50), _exam(103, C1, "proctored")),
        Event(57, exam("submitted"), at(2, 11), _exam(103, C1, "proctored")),
        Event(58, exam("submitted"), at(2, 12), _exam(104, C2, "timed")),
    ]


def _forum() -> list[Event]:
    return [
        Event(60, THREAD, at(1, 23, 58), _post(101, C1, "t1")),
        Event(61, RESPONSE, at(1, 23, 59, 59), _post(102, C1, "r1")),
        Event(62, COMMENT, at(2, 0, 0, 5), _post(101, C1, "c1")),
        Event(63, COMMENT, at(2, 0, 10), _post(101, C1, "c2")),
        Event(64, RESPONSE, at(2, 8), _post(103, C1, "r2")),
        Event(65, THREAD, at(2, 9), _post(104, C2, "t2")),
    ]


def _ledger() -> list[Event]:
    t = _transaction
    return [
        # L1: T1 created → committed; T2 created → committed → reversed; T3 only created.
        Event(70, LEDGER + "created.v1", at(1, 10), t(1, L1, -100, "created", False)),
        Event(71, LEDGER + "committed.v1", at(1, 10, 1), t(1, L1, -100, "committed", False)),
        Event(72, LEDGER + "created.v1", at(1, 11), t(2, L1, -200, "created", False)),
        Event(73, LEDGER + "committed.v1", at(1, 11, 1), t(2, L1, -200, "committed", False)),
        Event(74, LEDGER + "reversed.v1", at(2, 9), t(2, L1, -200, "committed", True)),
        Event(75, LEDGER + "created.v1", at(2, 10), t(3, L1, -50, "created", False)),
        # L2: T4 created → failed; T5 created → committed.
        Event(76, LEDGER + "created.v1", at(1, 12), t(4, L2, -300, "created", False)),
        Event(77, LEDGER + "failed.v1", at(1, 12, 1), t(4, L2, -300, "failed", False)),
        Event(78, LEDGER + "created.v1", at(2, 13), t(5, L2, -25, "created", False)),
        Event(79, LEDGER + "committed.v1", at(2, 13, 1), t(5, L2, -25, "committed", False)),
    ]


def scenario_events() -> list[Event]:
    """Every event of the scenario, in the order they are written."""
    return [
        *_enrollments(),
        *_grades(),
        *_certificates(),
        *_users(),
        *_exams(),
        *_forum(),
        *_ledger(),
    ]


def write_scenario(url: str) -> None:
    """Serialize, decode and store every event of the scenario into the migrated ``url``."""
    decoder = Decoder()
    decoded = []
    for offset, event in enumerate(scenario_events()):
        value = producer.frame(1, producer.payload(event.event_type, event.data))
        headers = producer.headers(event.event_type, event_id=event.event_id, time=event.time)
        decoded.append(decoder.decode(value, headers, MessageLocation(TOPIC, 0, offset)))
    batch = Batch(events=decoded)
    batch.advance(decoded[-1].location)
    warehouse = Warehouse(url)
    try:
        result = warehouse.write(batch, "scenario")
    finally:
        warehouse.close()
    assert result.stored == len(decoded), result


_ENROLLMENT_CURRENT: Final = [
    (101, C1, "Course One", V, True, at(1, 9), at(1, 12), CHANGED),  # E2
    (102, C1, "Course One", "audit", True, at(1, 10), at(2, 0, 0, 1), ENROLLED),  # E5
    (103, C1, "Course One", V, False, at(2, 8), at(2, 9), UNENROLLED),  # E7
    (105, C1, "Course One", V, True, at(1, 13), at(1, 13), ENROLLED),  # E8
    (101, C2, "Course Two", "honor", True, at(1, 11), at(1, 11), ENROLLED),  # E9
    (104, C2, "Course Two (2026)", V, True, at(2, 0, 0, 2), at(2, 1), CHANGED),  # E12
]

#: Expected rows of every report, in its order, for the scenario.
EXPECTED: Final[dict[str, list[tuple[Any, ...]]]] = {
    "course-summary": [
        # enrolled 101 102 103 105; active 101 102 105; certificates 101 102 (105 revoked);
        # passing 101 102 105; mean of 0.85 0.8 0.3 1.0.
        (C1, "Course One", 4, 3, 2, 3, 0.7375),
        # name of E12, the course's latest enrollment event; mean of 0.7 and 0.0.
        (C2, "Course Two (2026)", 2, 2, 1, 1, 0.35),
    ],
    "enrollment-current": _ENROLLMENT_CURRENT,
    "enrollment-daily": [
        (D1, C1, "audit", 2, 0, 1),  # E1 E3, E4
        (D1, C1, V, 1, 1, 0),  # E8, E2
        (D1, C2, "honor", 1, 0, 0),  # E9
        (D2, C1, "audit", 1, 0, 0),  # E5
        (D2, C1, V, 1, 0, 1),  # E6, E7
        (D2, C2, "audit", 1, 1, 0),  # E10, E11
        (D2, C2, V, 0, 1, 0),  # E12
    ],
    "course-modes": [(C1, "audit", 1), (C1, V, 2), (C2, "honor", 1), (C2, V, 1)],
    "grades-current": [
        (101, C1, 0.85, "B", True, at(2, 10)),
        (102, C1, 0.8, "B", True, at(2, 11)),
        (103, C1, 0.3, "", False, at(2, 9, 30)),
        (105, C1, 1.0, "A", True, at(2, 12)),
        (101, C2, 0.7, "Pass", True, at(2, 12)),
        (104, C2, 0.0, "", False, at(2, 12)),
    ],
    "grade-distribution": [(C1, 30, 1), (C1, 80, 2), (C1, 90, 1), (C2, 0, 1), (C2, 70, 1)],
    "certificates-current": [
        (101, C1, V, OK, "0.85", at(2, 10, 5)),
        (102, C1, V, OK, "0.8", at(2, 11, 5)),
        (105, C1, V, "unavailable", "1.0", at(2, 13)),
        (101, C2, "honor", OK, "0.7", at(2, 12, 30)),
    ],
    "certificates-by-status": [(C1, OK, 2), (C1, "unavailable", 1), (C2, OK, 1)],
    "user-activity-daily": [(D1, 2, 2, 1), (D2, 1, 2, 2)],
    "exam-attempts": [
        (C1, "proctored", "errored", 1, 1),
        (C1, "proctored", "rejected", 1, 1),
        (C1, "proctored", "reset", 1, 1),
        (C1, "proctored", "submitted", 4, 3),
        (C1, "proctored", V, 1, 1),
        (C2, "timed", "submitted", 1, 1),
    ],
    "forum-activity-daily": [
        (D1, C1, 1, 1, 0, 2),  # E60 E61
        (D2, C1, 0, 1, 2, 2),  # E62 E63 (both 101), E64 (103)
        (D2, C2, 1, 0, 0, 1),  # E65
    ],
    "enterprise-ledger": [
        (str(L1), "committed", 2, -300, 1, -100),  # T1, T2 (reversed: +200)
        (str(L1), "created", 1, -50, 0, -50),  # T3
        (str(L2), "committed", 1, -25, 0, -25),  # T5
        (str(L2), "failed", 1, -300, 0, -300),  # T4
    ],
}  # fmt: skip


def rounded(rows: Any) -> list[tuple[Any, ...]]:
    """``rows`` with floats rounded to 9 places (sums of floats differ in the last bits)."""
    return [
        tuple(round(value, 9) if isinstance(value, float) else value for value in row)
        for row in rows
    ]


def report_rows(engine: sa.Engine, name: str, **filters: Any) -> list[tuple[Any, ...]]:
    """The rows of report ``name`` (its CLI name), floats rounded."""
    return rounded(read_report(engine, report_named(name), Filters(**filters)).rows)


def view_columns(engine: sa.Engine, view: str) -> list[str]:
    """The columns of ``view`` as the database reports them."""
    with engine.connect() as connection:
        return list(connection.execute(sa.text(f"SELECT * FROM {view} WHERE 1 = 0")).keys())


def tz_engine(url: str, **options: Any) -> sa.Engine:
    """An engine on ``url`` whose sessions use :data:`SESSION_TIME_ZONE` (PostgreSQL, DuckDB)."""
    backend = sa.make_url(url).get_backend_name()
    if backend == "postgresql":
        setting = f"-c timezone={SESSION_TIME_ZONE}"
        search_path = options.pop("search_path", None)
        if search_path is not None:
            setting += f" -c search_path={search_path}"
        return sa.create_engine(url, connect_args={"options": setting})
    engine = sa.create_engine(url)
    if backend == "duckdb":
        sa.event.listen(engine, "connect", _duckdb_time_zone)
    return engine


def _duckdb_time_zone(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute(f"SET TimeZone = '{SESSION_TIME_ZONE}'")
