"""The reporting views agree on the three databases, on the demo's traffic.

3,000 events of the demo generator (fixed seed and start) are encoded by the demo's offline
encoder, decoded by the sink's decoder and written by the warehouse writer into SQLite, DuckDB
and PostgreSQL (a schema of its own). Every report must then give the same rows on all three —
read in a Tokyo-time session where the database has session time zones — and a few reports must
equal what this module computes from the generated events in plain Python.
"""

from __future__ import annotations

import collections
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

import pytest
import sqlalchemy as sa

from sink.batch import Batch
from sink.decoder import Decoder
from sink.demo.traffic import DemoEvent, generate
from sink.demo.wire import Encoder
from sink.errors import MessageLocation
from sink.reports.views import REPORTS
from sink.schema_check import migrate
from sink.writer import Warehouse
from tests.integration.conftest import Services
from tests.integration.test_writer_postgres import schema_url
from tests.report_scenario import report_rows, tz_engine

pytest.importorskip("duckdb_engine")

SEED: Final = 20261127
EVENTS: Final = 3_000
START: Final = datetime(2026, 1, 5, tzinfo=UTC)
BATCH: Final = 1_000
LEARNING: Final = "org.openedx.learning."
ENROLLMENT_TYPES: Final = tuple(
    LEARNING + name
    for name in (
        "course.enrollment.created.v1",
        "course.enrollment.changed.v1",
        "course.unenrollment.completed.v1",
    )
)
LOGIN: Final = LEARNING + "auth.session.login.completed.v1"
REGISTRATION: Final = LEARNING + "student.registration.completed.v1"
GRADE: Final = LEARNING + "course.persistent_grade_summary.changed.v1"
CERTIFICATE_PREFIX: Final = LEARNING + "certificate."
LEDGER_PREFIX: Final = "org.openedx.enterprise.subsidy_ledger_transaction."


@pytest.fixture(scope="module")
def demo_events() -> list[DemoEvent]:
    return list(generate(SEED, EVENTS, START))


def write_demo(url: str, demo_events: list[DemoEvent]) -> None:
    """Encode, decode and store ``demo_events`` into the migrated warehouse at ``url``."""
    decoder, encoder = Decoder(), Encoder()
    decoded = []
    for offset, message in enumerate(encoder.encode_all(demo_events)):
        location = MessageLocation(message.topic, 0, offset)
        decoded.append(decoder.decode(message.value, message.headers, location, message.key))
    warehouse = Warehouse(url)
    try:
        for start in range(0, len(decoded), BATCH):
            batch = Batch(events=decoded[start : start + BATCH])
            batch.advance(batch.events[-1].location)
            assert warehouse.write(batch, "demo").stored == len(batch.events)
    finally:
        warehouse.close()


def every_report(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    return {report.name: report_rows(engine, report.name) for report in REPORTS}


@pytest.fixture(scope="module")
def sqlite_reports(
    tmp_path_factory: pytest.TempPathFactory, demo_events: list[DemoEvent]
) -> dict[str, list[tuple[Any, ...]]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('demo-sqlite') / 'sink.db'}"
    return _reports_of(url, demo_events)


@pytest.fixture(scope="module")
def duckdb_reports(
    tmp_path_factory: pytest.TempPathFactory, demo_events: list[DemoEvent]
) -> dict[str, list[tuple[Any, ...]]]:
    folder: Path = tmp_path_factory.mktemp("demo-duckdb")
    return _reports_of(f"duckdb:///{folder / 'sink.duckdb'}", demo_events)


def _reports_of(url: str, demo_events: list[DemoEvent]) -> dict[str, list[tuple[Any, ...]]]:
    migrate(url)
    write_demo(url, demo_events)
    engine = tz_engine(url)
    try:
        return every_report(engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def postgres_reports(
    services: Services, demo_events: list[DemoEvent]
) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    schema = f"test_demo_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(services.database_url, poolclass=sa.pool.NullPool)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = schema_url(services, schema)
        migrate(url)
        write_demo(url, demo_events)
        engine = tz_engine(services.database_url, search_path=schema)
        try:
            yield every_report(engine)
        finally:
            engine.dispose()
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# --- the three databases agree ----------------------------------------------------------------


@pytest.mark.parametrize("name", [report.name for report in REPORTS])
def test_every_report_is_the_same_on_the_three_databases(
    name: str,
    sqlite_reports: dict[str, list[tuple[Any, ...]]],
    duckdb_reports: dict[str, list[tuple[Any, ...]]],
    postgres_reports: dict[str, list[tuple[Any, ...]]],
) -> None:
    assert sqlite_reports[name], f"the demo traffic leaves {name} empty"
    assert duckdb_reports[name] == sqlite_reports[name]
    assert postgres_reports[name] == sqlite_reports[name]


# --- and says what the events say -------------------------------------------------------------


def _latest(events: list[DemoEvent], key: Any) -> dict[Any, DemoEvent]:
    """The latest event per ``key(event)``: greatest (time, ce_id)."""
    latest: dict[Any, DemoEvent] = {}
    for event in sorted(events, key=lambda event: (event.time, str(event.event_id))):
        latest[key(event)] = event
    return latest


def _of_types(events: list[DemoEvent], *prefixes: str) -> list[DemoEvent]:
    return [event for event in events if event.event_type.startswith(prefixes)]


def test_user_activity_daily(
    demo_events: list[DemoEvent], sqlite_reports: dict[str, list[tuple[Any, ...]]]
) -> None:
    registrations: collections.Counter[date] = collections.Counter()
    logins: collections.Counter[date] = collections.Counter()
    users: dict[date, set[int]] = collections.defaultdict(set)
    for event in _of_types(demo_events, REGISTRATION, LOGIN):
        day = event.time.astimezone(UTC).date()
        if event.event_type == REGISTRATION:
            registrations[day] += 1
        else:
            logins[day] += 1
            users[day].add(event.data.id)
    days = sorted(set(registrations) | set(logins))
    expected = [(day, registrations[day], logins[day], len(users[day])) for day in days]
    assert sqlite_reports["user-activity-daily"] == expected


def test_course_summary(
    demo_events: list[DemoEvent], sqlite_reports: dict[str, list[tuple[Any, ...]]]
) -> None:
    enrollments = _of_types(demo_events, *ENROLLMENT_TYPES)
    by_learner = _latest(enrollments, lambda e: (e.data.user.id, str(e.data.course.course_key)))
    by_course = _latest(enrollments, lambda e: str(e.data.course.course_key))
    grades = _latest(
        _of_types(demo_events, GRADE), lambda e: (e.data.user_id, str(e.data.course.course_key))
    )
    certificates = _latest(
        _of_types(demo_events, CERTIFICATE_PREFIX),
        lambda e: (e.data.user.id, str(e.data.course.course_key)),
    )
    expected = []
    for course in sorted(by_course):
        learners = [event for (_, key), event in by_learner.items() if key == course]
        percents = [g.data.percent_grade for (_, key), g in grades.items() if key == course]
        passing = [g for (_, key), g in grades.items() if key == course and g.data.letter_grade]
        downloadable = [
            c
            for (_, key), c in certificates.items()
            if key == course and c.data.current_status == "downloadable"
        ]
        average = round(sum(percents) / len(percents), 9) if percents else None
        expected.append(
            (
                course,
                by_course[course].data.course.display_name,
                len(learners),
                sum(1 for event in learners if event.data.is_active),
                len(downloadable),
                len(passing),
                average,
            )
        )
    assert sqlite_reports["course-summary"] == expected


def test_enterprise_ledger(
    demo_events: list[DemoEvent], sqlite_reports: dict[str, list[tuple[Any, ...]]]
) -> None:
    latest = _latest(_of_types(demo_events, LEDGER_PREFIX), lambda e: e.data.uuid)
    totals: dict[tuple[str, str], list[int]] = collections.defaultdict(lambda: [0, 0, 0, 0])
    for event in latest.values():
        transaction = event.data
        total = totals[str(transaction.ledger_uuid), transaction.state]
        reversal = transaction.reversal
        total[0] += 1
        total[1] += transaction.quantity
        total[2] += reversal is not None
        total[3] += transaction.quantity + (0 if reversal is None else reversal.quantity)
    expected = [(ledger, state, *total) for (ledger, state), total in sorted(totals.items())]
    assert sqlite_reports["enterprise-ledger"] == expected
