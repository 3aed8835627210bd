"""The warehouse writer on SQLite — and the contract every supported database must meet.

:class:`WriterContract` and :class:`ForgetContract` hold the tests shared by all databases; each
database's test module subclasses them and provides the ``url`` fixture (a migrated, empty
database) and the ways that database rejects a row. This module runs them on SQLite files in
``tmp_path``; ``test_writer_duckdb.py`` on DuckDB; ``tests/integration/test_writer_postgres.py``
and ``test_forget_postgres.py`` on PostgreSQL.

Events are built directly as :class:`~sink.decoder.DecodedEvent` (random payloads of every class,
the same strategies as the flattening tests); rows are read back through SQLAlchemy and compared
with :func:`sink.flatten.flatten` of the same payload.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import logging
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import attrs
import psycopg
import psycopg.errors
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from opaque_keys.edx.keys import CourseKey

from sink import catalog, events, flatten, pii, tables
from sink.batch import Batch, DeadLetter
from sink.catalog import EventSpec
from sink.decoder import DecodedEvent, RawMessage
from sink.demo import wire
from sink.errors import ConfigError, MessageLocation, SchemaOutOfDateError
from sink.forget import ERASED_NOTE, forget_user
from sink.headers import EventMetadata
from sink.schema_check import ensure_at_head, head_revision, migrate
from sink.writer import Warehouse, bookkeeping, failures
from sink.writer import rows as writer_rows
from sink.writer.bookkeeping import decode_headers
from sink.writer.dialects import dialect_for
from sink.writer.failures import Failure
from sink.writer.postgres import PostgresDialect
from sink.writer.sqlite import sqlite_datetime
from tests.cells import comparable, holds_nul
from tests.producer import samples
from tests.unit.test_flatten import payloads

TOPIC = "events"
GROUP = "sink-test"
WHEN = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
ENROLLMENT = catalog.spec_for("org.openedx.learning.course.enrollment.created.v1")
TRACKING_LOG = catalog.spec_for("org.openedx.analytics.tracking.event.emitted.v1")
ORA = catalog.spec_for("org.openedx.learning.ora.submission.created.v1")
HASH_KEY = b"test-hash-key"
SPECS = catalog.all_specs()

# --- building events ------------------------------------------------------------------------------


def metadata(event_type: str, event_id: str | None = None) -> EventMetadata:
    """CloudEvents metadata as edx-event-bus-kafka sends it."""
    return EventMetadata(
        id=event_id or str(uuid.uuid1()),
        type=event_type,
        time=WHEN,
        source="openedx/lms/web",
        specversion="1.0",
        minorversion=0,
        sourcehost="lms.example",
        sourcelib="11.2.0",
    )


def decoded(
    spec: EventSpec,
    data: Any,
    offset: int,
    *,
    event_id: str | None = None,
    partition: int = 0,
    **changes: Any,
) -> DecodedEvent:
    """A decoded event of ``spec`` carrying ``data`` (metadata fields overridable)."""
    meta = attrs.evolve(metadata(spec.event_type, event_id), **changes)
    return DecodedEvent(meta, 7, spec, data, MessageLocation(TOPIC, partition, offset))


def random_events(per_type: int, start: int = 0) -> list[DecodedEvent]:
    """``per_type`` random events of every event type, at consecutive offsets."""
    found: list[DecodedEvent] = []
    for spec in SPECS:
        for data in samples(payloads(spec.data_class), per_type):
            found.append(decoded(spec, data, start + len(found)))
    return found


def batch_of(items: Sequence[DecodedEvent], letters: Sequence[DeadLetter] = ()) -> Batch:
    """A batch with positions past the last offset of every partition in it."""
    batch = Batch(events=list(items), dead_letters=list(letters))
    located: list[DecodedEvent | DeadLetter] = [*items, *letters]
    for item in sorted(located, key=lambda item: item.location.offset):
        batch.advance(item.location)
    return batch


def enrollment(user_id: int, username: str, offset: int, **changes: Any) -> DecodedEvent:
    """A course enrollment of one user (``created_by`` the user too)."""
    user = events.UserData(
        id=user_id,
        is_active=True,
        pii=events.UserPersonalData(username, f"{username}@example.org", f"Name {username}"),
    )
    course = events.CourseData(CourseKey.from_string("course-v1:Org+C1+2026"), "Course One")
    data = events.CourseEnrollmentData(user, course, "audit", True, WHEN, created_by=user)
    return decoded(ENROLLMENT, data, offset, **changes)


def tracking_log(document: dict[str, Any], context: dict[str, Any], offset: int) -> DecodedEvent:
    data = events.TrackingLogData("problem_check", WHEN, json.dumps(document), json.dumps(context))
    return decoded(TRACKING_LOG, data, offset)


def ora_submission(anonymous_id: str, offset: int, files: int = 1) -> DecodedEvent:
    """An ORA submission with ``files`` files (every list of its answer a child table)."""
    answer = events.ORASubmissionAnswer(
        parts=[{"text": "my essay"}],
        file_keys=[f"{anonymous_id}/file{n}" for n in range(files)],
        file_descriptions=["scan"] * files,
        file_names=[f"essay{n}.pdf" if n else "essay.pdf" for n in range(files)],
        file_sizes=[1234] * files,
        file_urls=[f"https://files.example/essay{n}.pdf" for n in range(files)],
    )
    data = events.ORASubmissionData(
        uuid="7b5d4c5e-0a4f-4c47-9b1e-6c9b0e4f2a11",
        anonymous_user_id=anonymous_id,
        location="block-v1:Org+C1+2026+type@openassessment+block@ora",
        attempt_number=1,
        created_at=WHEN,
        submitted_at=WHEN,
        answer=answer,
    )
    return decoded(ORA, data, offset)


# --- reading back ---------------------------------------------------------------------------------


def count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as connection:
        query = sa.select(sa.func.count()).select_from(tables.table_for(table))
        return int(connection.execute(query).scalar_one())


def counts(engine: sa.Engine) -> dict[str, int]:
    """Rows of every table of the warehouse."""
    return {name: count(engine, name) for name in tables.metadata.tables}


def stored_rows(engine: sa.Engine, table: str, **where: Any) -> list[dict[str, Any]]:
    """Rows of ``table`` (matching ``column=value`` conditions), values made comparable."""
    sql_table = tables.table_for(table)
    query = sa.select(sql_table).where(*(sql_table.c[k] == v for k, v in where.items()))
    if "position" in sql_table.c:
        query = query.order_by(sql_table.c.event_id, sql_table.c.position)
    with engine.connect() as connection:
        return [
            {key: comparable(value) for key, value in row._mapping.items()}
            for row in connection.execute(query)
        ]


def expected_envelope(event: DecodedEvent) -> dict[str, Any]:
    meta = event.metadata
    return {
        "event_id": meta.id,
        "event_type": meta.type,
        "event_time": meta.time,
        "event_source": meta.source,
        "source_host": meta.sourcehost,
        "source_lib": meta.sourcelib,
        "minor_version": meta.minorversion,
        "kafka_topic": event.location.topic,
        "kafka_partition": event.location.partition,
        "kafka_offset": event.location.offset,
        "schema_id": event.schema_id,
    }


def flat_has_nul(flat: flatten.Flattened) -> bool:
    rows = [flat.row, *(row for rows in flat.children.values() for row in rows)]
    return any(holds_nul(value) for row in rows for value in row.values())


def hashed(text: str) -> str:
    return hmac.new(HASH_KEY, text.encode(), hashlib.sha256).hexdigest()


# --- the contract ---------------------------------------------------------------------------------


class WriterContract:
    """What :class:`Warehouse` does on every database (subclasses provide ``url``)."""

    #: Whether the database refuses NUL characters in text (the writer then dead-letters them).
    rejects_nul: ClassVar[bool] = False

    @pytest.fixture
    def make_warehouse(self, url: str) -> Iterator[Any]:
        """``make_warehouse(policy="keep", key=None)``: a warehouse closed after the test."""
        made: list[Warehouse] = []

        def make(policy: Any = "keep", key: bytes | None = None) -> Warehouse:
            made.append(Warehouse(url, policy, key))
            return made[-1]

        yield make
        for warehouse in made:
            warehouse.close()

    @pytest.fixture
    def warehouse(self, make_warehouse: Any) -> Warehouse:
        made: Warehouse = make_warehouse()
        return made

    def poison(self, event: DecodedEvent, warehouse: Warehouse) -> DecodedEvent:
        """``event`` changed (or the database changed) so that the database rejects its row."""
        raise NotImplementedError

    # --- rows ---------------------------------------------------------------------------------

    def test_every_event_type_writes_its_rows(self, warehouse: Warehouse) -> None:
        written = random_events(per_type=4)
        result = warehouse.write(batch_of(written), GROUP)
        unstorable = 0
        for event in written:
            flat = flatten.flatten(event.spec, event.data, event.event_id)
            stored = stored_rows(warehouse.engine, event.spec.table, event_id=event.event_id)
            if self.rejects_nul and flat_has_nul(flat):
                assert stored == []
                unstorable += 1
                continue
            assert len(stored) == 1, event.event_type
            row = stored[0]
            assert {k: row[k] for k in expected_envelope(event)} == expected_envelope(event)
            assert row["ingested_at"] >= datetime.now(UTC) - timedelta(minutes=5)
            assert {k: comparable(row[k]) for k in flat.row} == {
                k: comparable(v) for k, v in flat.row.items()
            }
            for child, rows in flat.children.items():
                found = stored_rows(warehouse.engine, child, event_id=event.event_id)
                assert [{k: comparable(v) for k, v in r.items()} for r in found] == [
                    {k: comparable(v) for k, v in r.items()} for r in rows
                ], child
        assert result.stored == len(written) - unstorable
        assert result.dead_letters == unstorable
        assert result.duplicates == 0
        assert {spec.table for spec in SPECS} <= set(result.rows)

    def test_result_counts_rows_per_table(self, warehouse: Warehouse) -> None:
        result = warehouse.write(batch_of(random_events(per_type=3)), GROUP)
        stored = {table: n for table, n in counts(warehouse.engine).items() if n}
        stored.pop("sink_offset")
        stored.pop("sink_dead_letter", None)
        assert result.rows == stored
        parents = {spec.table for spec in SPECS}
        assert sum(n for table, n in result.rows.items() if table in parents) == result.stored

    def test_same_batch_twice_is_stored_once(self, warehouse: Warehouse) -> None:
        batch = batch_of(random_events(per_type=2))
        first = warehouse.write(batch, GROUP)
        before = counts(warehouse.engine)
        second = warehouse.write(batch, GROUP)
        assert counts(warehouse.engine) == before
        assert second.stored == 0
        assert second.duplicates == first.stored
        assert second.dead_letters == first.dead_letters
        assert second.rows == {}

    def test_same_event_twice_in_a_batch_is_stored_once(self, warehouse: Warehouse) -> None:
        event = ora_submission("anon-1", offset=0)
        again = attrs.evolve(event, location=MessageLocation(TOPIC, 0, 1))
        result = warehouse.write(batch_of([event, again]), GROUP)
        assert (result.stored, result.duplicates) == (1, 1)
        assert count(warehouse.engine, ORA.table) == 1
        assert count(warehouse.engine, "learning_ora_submission__answer__file_sizes") == 1

    def test_first_write_wins(self, warehouse: Warehouse) -> None:
        first = enrollment(1, "first", offset=0)
        second = enrollment(1, "second", offset=2, event_id=first.event_id)
        submission = ora_submission("anon", offset=3, files=1)
        replay = attrs.evolve(
            ora_submission("other", offset=4, files=3), metadata=submission.metadata
        )
        warehouse.write(batch_of([first, submission]), GROUP)
        result = warehouse.write(batch_of([second, replay]), GROUP)
        assert (result.stored, result.duplicates, result.rows) == (0, 2, {})
        [row] = stored_rows(warehouse.engine, ENROLLMENT.table)
        assert (row["user__pii__username"], row["kafka_offset"]) == ("first", 0)
        [stored] = stored_rows(warehouse.engine, ORA.table)
        assert stored["anonymous_user_id"] == "anon"
        assert count(warehouse.engine, "learning_ora_submission__answer__file_sizes") == 1

    def test_batch_is_not_modified(self, warehouse: Warehouse) -> None:
        batch = batch_of(random_events(per_type=1))
        before = copy.deepcopy(batch)
        warehouse.write(batch, GROUP)
        assert batch == before

    # --- positions and dead letters -----------------------------------------------------------

    def test_positions_are_upserted_and_read_back(self, warehouse: Warehouse) -> None:
        warehouse.write(Batch(positions={("a", 0): 5, ("a", 1): 7, ("b", 0): 1}), GROUP)
        warehouse.write(Batch(positions={("a", 0): 9}), GROUP)
        warehouse.write(Batch(positions={("a", 0): 100}), "other-group")
        asked = [("a", 0), ("a", 1), ("a", 2), ("c", 0)]
        assert warehouse.positions(GROUP, asked) == {("a", 0): 9, ("a", 1): 7}
        assert warehouse.positions("other-group", asked) == {("a", 0): 100}
        assert warehouse.positions("nobody", asked) == {}

    def test_dead_letters_are_stored_once_with_raw_headers(self, warehouse: Warehouse) -> None:
        headers = (("ce_type", b"org.openedx.x.v1"), ("binary", b"\xff\x00"), ("nul", b"a\x00b"))
        letter = DeadLetter(
            location=MessageLocation(TOPIC, 3, 42),
            key=b"key",
            value=b"\x00\x01garbage",
            headers=headers,
            event_type="org.openedx.x.v1",
            error_class="FramingError",
            error_message="not Confluent-framed \x00 Avro",
        )
        batch = batch_of([], [letter])
        assert warehouse.write(batch, GROUP).dead_letters == 1
        assert warehouse.write(batch, GROUP).dead_letters == 1
        [row] = stored_rows(warehouse.engine, "sink_dead_letter")
        assert (row["topic"], row["partition"], row["offset"]) == (TOPIC, 3, 42)
        assert (row["key"], row["value"]) == (b"key", b"\x00\x01garbage")
        assert decode_headers(row["headers"]) == list(headers)
        assert row["error_class"] == "FramingError"
        assert row["error_message"] == "not Confluent-framed \\x00 Avro"
        assert warehouse.positions(GROUP, [(TOPIC, 3)]) == {(TOPIC, 3): 43}

    # --- rejected rows ----------------------------------------------------------------------------

    def test_a_rejected_row_is_dead_lettered_alone(self, warehouse: Warehouse) -> None:
        good = [enrollment(n, f"user{n}", offset=n) for n in range(20)]
        bad = self.poison(enrollment(99, "poison", offset=20), warehouse)
        written = [*good[:7], bad, *good[7:]]
        result = warehouse.write(batch_of(written), GROUP)
        assert (result.stored, result.dead_letters, result.duplicates) == (20, 1, 0)
        stored_ids = {row["event_id"] for row in stored_rows(warehouse.engine, ENROLLMENT.table)}
        assert stored_ids == {event.event_id for event in good}
        [letter] = stored_rows(warehouse.engine, "sink_dead_letter")
        assert (letter["topic"], letter["partition"], letter["offset"]) == (TOPIC, 0, 20)
        assert letter["event_type"] == ENROLLMENT.event_type
        assert letter["value"] is None
        assert letter["error_message"].startswith(f"{ENROLLMENT.table}: ")
        assert dict(decode_headers(letter["headers"]))["ce_id"] == bad.event_id.encode()
        assert warehouse.positions(GROUP, [(TOPIC, 0)]) == {(TOPIC, 0): 21}
        again = warehouse.write(batch_of(written), GROUP)
        assert (again.stored, again.duplicates, again.dead_letters) == (0, 20, 1)
        assert count(warehouse.engine, "sink_dead_letter") == 1

    def test_a_rejected_event_keeps_its_raw_message_for_replay(self, warehouse: Warehouse) -> None:
        bad = self.poison(enrollment(99, "poison", offset=3), warehouse)
        headers = [("ce_id", bad.event_id.encode()), ("trace", b"\xff\x00"), ("none", None)]
        raw = RawMessage(b"key", b"\x00raw value", headers)
        result = warehouse.write(batch_of([attrs.evolve(bad, raw=raw)]), GROUP)
        assert result.dead_letters == 1
        [letter] = stored_rows(warehouse.engine, "sink_dead_letter")
        assert (letter["key"], letter["value"]) == (b"key", b"\x00raw value")
        assert decode_headers(letter["headers"]) == headers
        assert letter["event_type"] == ENROLLMENT.event_type

    def test_several_rejected_rows(self, warehouse: Warehouse) -> None:
        good = [enrollment(n, f"user{n}", offset=n) for n in range(40)]
        bad = [self.poison(enrollment(90 + n, "poison", offset=40 + n), warehouse) for n in (0, 1)]
        result = warehouse.write(batch_of([bad[0], *good, bad[1]]), GROUP)
        assert (result.stored, result.dead_letters) == (40, 2)
        letters = stored_rows(warehouse.engine, "sink_dead_letter")
        assert sorted(letter["offset"] for letter in letters) == [40, 41]

    # --- PII ------------------------------------------------------------------------------------

    def test_pii_keep(self, make_warehouse: Any) -> None:
        warehouse = make_warehouse("keep")
        warehouse.write(batch_of([enrollment(5, "alice", 0)]), GROUP)
        [row] = stored_rows(warehouse.engine, ENROLLMENT.table)
        assert row["user__pii__email"] == "alice@example.org"
        assert row["created_by__pii__username"] == "alice"

    def test_pii_drop(self, make_warehouse: Any) -> None:
        warehouse = make_warehouse("drop")
        context = {"user_id": 5, "username": "alice", "ip": "10.0.0.1", "course_id": "c"}
        written = [
            enrollment(5, "alice", 0),
            tracking_log({"answer": 42, "email": "a@x"}, context, 1),
            ora_submission("anon-5", 2),
        ]
        warehouse.write(batch_of(written), GROUP)
        [row] = stored_rows(warehouse.engine, ENROLLMENT.table)
        assert row["user__id"] == 5
        assert row["user__pii__username"] is None  # dropped: personal columns are nullable
        assert row["created_by__pii__username"] is None
        [log] = stored_rows(warehouse.engine, TRACKING_LOG.table)
        assert log["context"] == {"user_id": 5, "username": None, "ip": None, "course_id": "c"}
        assert log["data"] == {"answer": 42, "email": None}
        [submission] = stored_rows(warehouse.engine, ORA.table)
        assert submission["anonymous_user_id"] is None
        assert count(warehouse.engine, "learning_ora_submission__answer__file_names") == 0
        assert count(warehouse.engine, "learning_ora_submission__answer__parts") == 0
        assert count(warehouse.engine, "learning_ora_submission__answer__file_sizes") == 1

    def test_pii_hash(self, make_warehouse: Any) -> None:
        warehouse = make_warehouse("hash", HASH_KEY)
        context = {"user_id": 5, "username": "alice", "nested": {"ip": "10.0.0.1"}}
        written = [
            enrollment(5, "alice", 0),
            tracking_log({"answer": "x"}, context, 1),
            ora_submission("anon-5", 2),
        ]
        warehouse.write(batch_of(written), GROUP)
        [row] = stored_rows(warehouse.engine, ENROLLMENT.table)
        assert row["user__pii__username"] == hashed("alice")
        assert row["created_by__pii__username"] == hashed("alice")
        assert row["user__pii__email"] == hashed("alice@example.org")
        [log] = stored_rows(warehouse.engine, TRACKING_LOG.table)
        assert log["context"] == {
            "user_id": 5,
            "username": hashed("alice"),
            "nested": {"ip": hashed("10.0.0.1")},
        }
        [name] = stored_rows(warehouse.engine, "learning_ora_submission__answer__file_names")
        assert name["value"] == hashed("essay.pdf")
        [part] = stored_rows(warehouse.engine, "learning_ora_submission__answer__parts")
        assert part["value"] == {"text": hashed("my essay")}

    # --- schema -----------------------------------------------------------------------------------

    def test_schema_is_at_head_after_migrate(self, warehouse: Warehouse) -> None:
        ensure_at_head(warehouse.engine)


class ForgetContract:
    """What :func:`forget_user` does on every database (subclasses provide ``url``)."""

    user_id: ClassVar[int] = 987_654_321_012
    username: ClassVar[str] = "forget-me"

    @pytest.fixture
    def policy(self) -> tuple[Any, bytes | None]:
        return ("keep", None)

    @pytest.fixture
    def warehouse(self, url: str, policy: tuple[Any, bytes | None]) -> Iterator[Warehouse]:
        made = Warehouse(url, *policy)
        yield made
        made.close()

    def user_events(self, start: int) -> list[DecodedEvent]:
        """Random events of every type, every user in them made the forgotten user."""
        return [
            attrs.evolve(event, data=personalize(event.data, self.user_id, self.username))
            for event in random_events(per_type=2, start=start)
        ]

    def tracking_logs(self, start: int) -> list[DecodedEvent]:
        mine = {"user_id": self.user_id, "username": self.username, "ip": "10.1.1.1"}
        by_name = {"username": self.username, "session": "s1"}
        other = {"user_id": 1, "username": "someone", "ip": "10.2.2.2"}
        data = {"answer": 1, "email": f"{self.username}@example.org"}
        return [
            tracking_log(data, mine, start),
            tracking_log(data, by_name, start + 1),
            tracking_log({"email": "someone@example.org"}, other, start + 2),
        ]

    def write_world(self, warehouse: Warehouse) -> list[DecodedEvent]:
        others = random_events(per_type=2)
        mine = self.user_events(start=len(others))
        logs = self.tracking_logs(start=len(others) + len(mine))
        ora = ora_submission("anon-forget", offset=len(others) + len(mine) + len(logs))
        warehouse.write(batch_of([*others, *mine, *logs, ora]), GROUP)
        return others

    def forgotten_values(self, key: bytes | None) -> set[str]:
        values = {self.username, f"{self.username}@example.org", "anon-forget"}
        return values | {hashed(value) for value in values} if key else values

    def test_dead_letters_naming_the_user_lose_their_raw_message(
        self, warehouse: Warehouse, policy: tuple[Any, bytes | None], caplog: Any
    ) -> None:
        mine = enrollment(self.user_id, "dl-user", offset=9_000)
        theirs = [enrollment(self.user_id + 1, "dl-other", offset=9_000 + n) for n in (1, 2, 3)]
        letters = [
            raw_letter(mine),  # decodes to an event of the user: found by user id
            raw_letter(theirs[0]),  # another user's: kept
            raw_letter(theirs[1], value=b"\x00\x00\x00\x00\x07 anon-forget trailing garbage"),
            raw_letter(theirs[2], value=b"\x00\x00\x00\x00\x07 unreadable, names nobody"),
        ]
        warehouse.write(batch_of([], letters), GROUP)
        with caplog.at_level(logging.WARNING, logger="sink.forget"):
            report = forget_user(
                warehouse.engine, self.user_id, also=["anon-forget"], pii_key=policy[1]
            )
        assert report["sink_dead_letter"] == 2
        stored = {row["offset"]: row for row in stored_rows(warehouse.engine, "sink_dead_letter")}
        for offset in (9_000, 9_002):
            assert stored[offset]["key"] is None
            assert stored[offset]["value"] is None
            assert stored[offset]["error_message"].endswith(ERASED_NOTE)
            assert decode_headers(stored[offset]["headers"])  # location and headers are kept
        assert stored[9_001]["value"] == letters[1].value
        assert stored[9_003]["value"] == letters[3].value
        assert "1 dead letter(s) cannot be decoded" in caplog.text
        assert forget_user(warehouse.engine, self.user_id, pii_key=policy[1]).get(
            "sink_dead_letter", 0
        ) == 0  # fmt: skip

    def test_forget_leaves_no_personal_value_of_the_user(
        self, warehouse: Warehouse, policy: tuple[Any, bytes | None]
    ) -> None:
        others = self.write_world(warehouse)
        snapshot = other_rows(warehouse.engine, others)
        report = forget_user(
            warehouse.engine, self.user_id, also=["anon-forget"], pii_key=policy[1]
        )
        assert report[ENROLLMENT.table] > 0
        assert report[TRACKING_LOG.table] == 2
        assert "learning_ora_submission__answer__file_names" in report
        assert_forgotten(warehouse.engine, self.user_id, self.forgotten_values(policy[1]))
        assert other_rows(warehouse.engine, others) == snapshot
        again = forget_user(warehouse.engine, self.user_id, also=["anon-forget"], pii_key=policy[1])
        assert again == {}
        [other_log] = [
            row
            for row in stored_rows(warehouse.engine, TRACKING_LOG.table)
            if isinstance(row["context"], dict) and row["context"].get("user_id") == 1
        ]
        assert other_log["context"]["username"] in ("someone", hashed("someone"))


# --- forget helpers -------------------------------------------------------------------------------


def raw_letter(event: DecodedEvent, value: bytes | None = None) -> DeadLetter:
    """A dead letter holding ``event`` as Open edX sends it (or ``value`` instead)."""
    framed = wire.frame(7) + wire.avro_payload(event.event_type, event.data)
    return DeadLetter(
        location=event.location,
        key=None,
        value=framed if value is None else value,
        headers=bookkeeping.event_headers(event.metadata),
        event_type=event.event_type,
        error_class="WarehouseError",
        error_message="rejected by the database (test)",
    )


def personalize(value: Any, user_id: int, username: str) -> Any:
    """``value`` with every user in it (ids, usernames, e-mail addresses) made one user."""
    if isinstance(value, list):
        return [personalize(item, user_id, username) for item in value]
    if not attrs.has(type(value)):
        return value
    changes: dict[str, Any] = {}
    for field in attrs.fields(type(value)):
        current = getattr(value, field.name)
        if isinstance(value, events.UserPersonalData) and field.name in ("username", "email"):
            changes[field.name] = (
                username if field.name == "username" else f"{username}@example.org"
            )
        elif field.name == "id" and isinstance(value, events.UserNonPersonalData):
            changes["id"] = user_id
        elif field.name in ("user_id", "lms_user_id") and type(current) is int:
            changes[field.name] = user_id
        elif field.name == "user_ids":
            changes[field.name] = [user_id, *(current or [])]
        else:
            changes[field.name] = personalize(current, user_id, username)
    return attrs.evolve(value, **changes)


def _event_tables() -> list[str]:
    return [name for name in tables.metadata.tables if not name.startswith("sink_")]


def _users_event_ids(engine: sa.Engine, user_id: int) -> set[str]:
    """Ids of events naming the user in a user-id column (parent or child table)."""
    found: set[str] = set()
    with engine.connect() as connection:
        for name in _event_tables():
            table = tables.table_for(name)
            for column, model in tables.columns_of(name).items():
                if model.user_id:
                    query = sa.select(table.c.event_id).where(table.c[column] == user_id)
                    found.update(connection.execute(query).scalars())
    return found


def _mentions(value: Any, forgotten: set[str]) -> bool:
    if isinstance(value, str):
        return any(text in value for text in forgotten)
    if isinstance(value, dict | list):
        return _mentions(json.dumps(value), forgotten)
    return False


def assert_forgotten(engine: sa.Engine, user_id: int, forgotten: set[str]) -> None:
    """No personal column holds the user's values; the user's rows hold no personal value."""
    users_events = _users_event_ids(engine, user_id)
    assert users_events
    for name in _event_tables():
        columns = tables.columns_of(name)
        for row in stored_rows(engine, name):
            for column, model in columns.items():
                if not model.personal:
                    continue
                value = row[column]
                assert not _mentions(value, forgotten), (name, column, value)
                if pii.is_json_key_column(name, column):
                    if _mentions(row.get("context"), {f'"user_id": {user_id}'}):
                        assert not pii.json_has_personal_value(value), (name, column, value)
                elif row["event_id"] in users_events:
                    assert value is None, (name, column, value)


def other_rows(engine: sa.Engine, others: Sequence[DecodedEvent]) -> dict[str, list[Any]]:
    """The stored rows of events not about the user, for comparing before and after."""
    ids = {event.event_id for event in others}
    return {
        name: [row for row in stored_rows(engine, name) if row["event_id"] in ids]
        for name in _event_tables()
    }


# --- SQLite ---------------------------------------------------------------------------------------


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A migrated, empty SQLite warehouse."""
    database = f"sqlite:///{tmp_path / 'sink.db'}"
    migrate(database)
    return database


class TestSqliteWriter(WriterContract):
    def poison(self, event: DecodedEvent, warehouse: Warehouse) -> DecodedEvent:
        # SQLite stores almost anything; a trigger makes it refuse one value, as a CHECK would.
        with warehouse.engine.begin() as connection:
            connection.exec_driver_sql(
                "CREATE TRIGGER IF NOT EXISTS refuse_poison BEFORE INSERT ON"
                " learning_course_enrollment WHEN NEW.user__pii__username = 'poison'"
                " BEGIN SELECT RAISE(ABORT, 'poison refused'); END"
            )
        return event

    def test_a_trigger_rejection_names_the_sqlite_error(self, warehouse: Warehouse) -> None:
        bad = self.poison(enrollment(1, "poison", 0), warehouse)
        warehouse.write(batch_of([bad]), GROUP)
        [letter] = stored_rows(warehouse.engine, "sink_dead_letter")
        assert letter["error_class"] == "IntegrityError"
        assert letter["error_message"] == f"{ENROLLMENT.table}: poison refused"

    def test_wal_mode(self, warehouse: Warehouse) -> None:
        with warehouse.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


class TestSqliteForget(ForgetContract):
    pass


class TestSqliteForgetHashed(ForgetContract):
    @pytest.fixture
    def policy(self) -> tuple[Any, bytes | None]:
        return ("hash", HASH_KEY)


def test_empty_database_needs_migrate(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(SchemaOutOfDateError) as raised:
            ensure_at_head(engine)
    finally:
        engine.dispose()
    assert str(raised.value) == (
        "database schema is at revision none (empty database) but this sink needs"
        f" {head_revision()}: run `sink migrate`"
    )


def test_writing_to_an_unmigrated_database_says_to_migrate(tmp_path: Path) -> None:
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(SchemaOutOfDateError, match="run `sink migrate`"):
            warehouse.write(batch_of([enrollment(1, "a", 0)]), GROUP)
    finally:
        warehouse.close()


# --- pieces of the writer -------------------------------------------------------------------------


def test_envelope_fills_exactly_the_envelope_columns() -> None:
    event = enrollment(1, "a", 0)
    assert tuple(writer_rows.envelope(event, WHEN)) == flatten.envelope_column_names()


def test_absent_headers_get_stand_ins() -> None:
    bare = enrollment(1, "a", 0, time=None, source=None, sourcehost=None, minorversion=None)
    envelope = writer_rows.envelope(bare, WHEN + timedelta(hours=1))
    assert envelope["event_time"] == WHEN + timedelta(hours=1)
    assert (envelope["event_source"], envelope["source_host"], envelope["minor_version"]) == (
        "",
        "",
        0,
    )


def test_rows_are_in_table_column_order() -> None:
    builder = writer_rows.RowBuilder(pii.Pii("keep"))
    for event in random_events(per_type=1):
        built = builder.build(event, WHEN)
        assert list(built.row) == list(tables.table_for(built.table).columns.keys())
        for child, child_rows in built.children.items():
            for row in child_rows:
                assert list(row) == list(tables.table_for(child).columns.keys())


def test_headers_round_trip() -> None:
    headers = [("a", b"text"), ("b", b"\xff\xfe"), ("c", b"nul\x00"), ("d", None)]
    encoded = bookkeeping.encode_headers(headers)
    assert json.loads(json.dumps(encoded)) == encoded
    assert encoded[0] == {"name": "a", "value": "text"}
    assert "base64" in encoded[1]
    assert bookkeeping.decode_headers(encoded) == headers


def _sqlite_error(code: int, message: str = "error") -> sqlite3.Error:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code
    return error


def _pg_error(sqlstate: str | None) -> psycopg.Error:
    """A psycopg error of this SQLSTATE (None: a client-side connection failure)."""
    if sqlstate is None:
        return psycopg.OperationalError("connection refused")
    error_class: type[psycopg.Error] = psycopg.errors.lookup(sqlstate)
    return error_class("boom")


def _refused_login(reason: str) -> psycopg.Error:
    """The error psycopg raises when the server turns a connection down (no SQLSTATE)."""
    server = 'connection to server at "127.0.0.1", port 5432'
    return psycopg.OperationalError(f"connection failed: {server} failed: FATAL:  {reason}")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (_pg_error("40P01"), Failure.TRANSIENT),  # deadlock
        (_pg_error("40001"), Failure.TRANSIENT),  # serialization failure
        (_pg_error("57P01"), Failure.TRANSIENT),  # admin shutdown
        (_pg_error("08006"), Failure.TRANSIENT),  # connection failure
        (_pg_error("53300"), Failure.TRANSIENT),  # too many connections
        (_pg_error(None), Failure.TRANSIENT),  # connection refused (client side)
        (_pg_error("22021"), Failure.REJECTED),  # NUL / bad encoding
        (_pg_error("22003"), Failure.REJECTED),  # numeric value out of range
        (_pg_error("54000"), Failure.REJECTED),  # index row too large
        (_pg_error("23502"), Failure.REJECTED),  # not null violation
        (_pg_error("42P01"), Failure.SCHEMA),  # undefined table
        (_pg_error("42703"), Failure.SCHEMA),  # undefined column
        (_pg_error("28P01"), Failure.ACCESS),  # bad password
        (_pg_error("28000"), Failure.ACCESS),  # role not allowed
        (_pg_error("3D000"), Failure.ACCESS),  # no such database
        (_pg_error("42501"), Failure.ACCESS),  # permission denied
        # Refused logins come from libpq without a SQLSTATE: the server's words tell.
        (_refused_login('password authentication failed for user "sink"'), Failure.ACCESS),
        (_refused_login('database "nosuch" does not exist'), Failure.ACCESS),
        (_refused_login('role "nobody" does not exist'), Failure.ACCESS),
        (_refused_login('no pg_hba.conf entry for host "10.0.0.9"'), Failure.ACCESS),
        (_refused_login("the database system is starting up"), Failure.TRANSIENT),
        (_refused_login("sorry, too many clients already"), Failure.TRANSIENT),
        (_sqlite_error(sqlite3.SQLITE_BUSY, "database is locked"), Failure.TRANSIENT),
        (_sqlite_error(sqlite3.SQLITE_IOERR_WRITE), Failure.TRANSIENT),
        (_sqlite_error(sqlite3.SQLITE_CONSTRAINT_NOTNULL), Failure.REJECTED),
        (_sqlite_error(sqlite3.SQLITE_ERROR, "no such table: x"), Failure.SCHEMA),
        (_sqlite_error(sqlite3.SQLITE_READONLY), Failure.ACCESS),
        (_sqlite_error(sqlite3.SQLITE_CORRUPT), Failure.OTHER),
        (UnicodeEncodeError("utf-8", "\udc80", 0, 1, "surrogates"), Failure.REJECTED),
        (sa.exc.TimeoutError(), Failure.TRANSIENT),
        (ValueError("a bug"), Failure.OTHER),
    ],
)
def test_failures_are_classified(error: BaseException, kind: Failure) -> None:
    wrapped = (
        sa.exc.DBAPIError("INSERT …", None, error)
        if not isinstance(error, sa.exc.SQLAlchemyError)
        else error
    )
    assert failures.classify(wrapped) is kind


def test_unsupported_databases_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unsupported database 'mysql'"):
        dialect_for("mysql://u:p@host/db")
    with pytest.raises(ConfigError, match="psycopg"):
        dialect_for("postgresql+asyncpg://u:secret@host/db")
    assert isinstance(dialect_for("postgresql://u:p@host/db"), PostgresDialect)


@given(st.datetimes(timezones=st.just(UTC)) | st.datetimes())
def test_sqlite_datetimes_are_stored_as_sqlalchemy_stores_them(value: datetime) -> None:
    dialect = sa.create_engine("sqlite://").dialect
    process = sa.DateTime(timezone=True).dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    assert sqlite_datetime(value) == process(value)


def test_check_schema(tmp_path: Path) -> None:
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'sink.db'}")
    try:
        with pytest.raises(SchemaOutOfDateError, match="run `sink migrate`"):
            warehouse.check_schema()
        migrate(f"sqlite:///{tmp_path / 'sink.db'}")
        warehouse.check_schema()
    finally:
        warehouse.close()
