"""End to end: the operations commands (`sink dlq …`, `sink replay …`) against the real services.

Each test produces real Open edX messages, runs `sink run --stop-at-end` as a subprocess into
PostgreSQL, then runs the operations commands as subprocesses too and checks the database, the
stored positions and the group's offsets in Kafka. Payloads are built by hand (no random text),
so that the only values PostgreSQL refuses are the NUL characters put there on purpose.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from opaque_keys.edx.keys import CourseKey
from openedx_events.learning.data import (
    CourseData,
    CourseEnrollmentData,
    UserData,
    UserPersonalData,
)

from tests import producer
from tests.integration.conftest import Services
from tests.integration.sinkproc import REPO, SinkRunner, end_offsets, kill, stored_positions

ENROLLMENT = "org.openedx.learning.course.enrollment.created.v1"
TABLE = "learning_course_enrollment"


@pytest.fixture
def runner(
    services: Services, pg_schema: str, group_id: str, tmp_path: Path
) -> Callable[..., SinkRunner]:
    def make(*topics: str) -> SinkRunner:
        sink = SinkRunner(services, pg_schema, group_id, topics, tmp_path)
        sink.run("migrate")
        return sink

    return make


def run_status(sink: SinkRunner, *arguments: str, **overrides: str) -> tuple[int, str]:
    """Run `sink ARGUMENTS` (stdin not a terminal); its exit status and output (logs included)."""
    result = subprocess.run(
        sink.command(*arguments),
        env=sink.environment(**overrides),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO,
    )
    return result.returncode, result.stdout + result.stderr


def stdout_of(sink: SinkRunner, *arguments: str, **overrides: str) -> str:
    """`sink ARGUMENTS`' standard output (it must exit 0); logs (stderr) left out."""
    result = subprocess.run(
        sink.command(*arguments),
        env=sink.environment(**{"SINK_LOG_LEVEL": "error", **overrides}),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def enrollment(user_id: int, username: str | None = None) -> Any:
    """An upstream enrollment of user ``user_id`` with plain values (or the given username)."""
    pii = UserPersonalData(
        username=username or f"user{user_id}",
        email=f"user{user_id}@example.org",
        name=f"User {user_id}",
    )
    user = UserData(id=user_id, is_active=True, pii=pii)
    course = CourseData(course_key=CourseKey.from_string("course-v1:Org+C1+2026"), display_name="C")
    return CourseEnrollmentData(
        user=user, course=course, mode="audit", is_active=True, creation_date=datetime.now(UTC)
    )


def send(
    services: Services,
    registry: SchemaRegistryClient,
    topic: str,
    users: Sequence[int],
    username: Callable[[int], str | None] = lambda _user: None,
) -> dict[str, producer.Message]:
    """Produce one enrollment per user id, keyed by user; return them by ``ce_id``."""
    sender = producer.OpenEdxProducer(services.bootstrap_servers, registry)
    sent = {}
    for user_id in users:
        message = sender.send(topic, ENROLLMENT, enrollment(user_id, username(user_id)),
                              key=f"user{user_id}")  # fmt: skip
        sent[message.event_id] = message
    sender.flush(60)
    return sent


def stored(engine: sa.Engine) -> list[str]:
    """Every stored enrollment's event id (a duplicate would show twice)."""
    with engine.connect() as connection:
        return list(connection.execute(sa.text(f"SELECT event_id FROM {TABLE}")).scalars())


def letters(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT * FROM sink_dead_letter ORDER BY id"))
        return [dict(row._mapping) for row in rows]


def kafka_offsets(services: Services, group_id: str, topic: str) -> dict[int, int]:
    """The offsets the group has committed in Kafka, per partition of ``topic``."""
    ends = end_offsets(services, (topic,))
    consumer = Consumer({"bootstrap.servers": services.bootstrap_servers, "group.id": group_id})
    try:
        asked = [TopicPartition(topic, partition) for _topic, partition in ends]
        return {tp.partition: tp.offset for tp in consumer.committed(asked, timeout=10)}
    finally:
        consumer.close()


# --- dead letters ------------------------------------------------------------------------------


NUL_USERS = (7, 21, 33)
POISON = 2  # messages no fix makes storable


def test_dead_letters_are_listed_shown_and_replayed_after_a_fix(
    services: Services,
    registry_client: SchemaRegistryClient,
    make_topic: Callable[..., str],
    runner: Callable[..., SinkRunner],
    pg_engine: sa.Engine,
) -> None:
    topic = make_topic("dlq", partitions=2)
    sent = send(services, registry_client, topic, range(60),
                lambda user: f"nul\x00{user}" if user in NUL_USERS else None)  # fmt: skip
    valid = next(iter(sent.values()))
    plain = Producer({"bootstrap.servers": services.bootstrap_servers})
    plain.produce(topic, b"\x07" + b"garbage" * 10, headers=producer.kafka_headers(valid.headers),
                  partition=0)  # fmt: skip
    plain.produce(topic, valid.value,
                  headers=producer.kafka_headers(producer.headers("org.openedx.nothing.v1")),
                  partition=1)  # fmt: skip
    plain.flush(30)

    # SINK_PII=keep (the runner's default): PostgreSQL cannot store the NUL usernames.
    sink = runner(topic)
    sink.run("run", "--stop-at-end")
    assert len(stored(pg_engine)) == len(sent) - len(NUL_USERS)
    ends = end_offsets(services, (topic,))
    assert stored_positions(pg_engine, sink.group_id) == ends
    _check_dead_letters(pg_engine, sent)
    _check_list_and_show(sink, pg_engine)
    _check_replay(sink, pg_engine, sent)
    assert stored_positions(pg_engine, sink.group_id) == ends  # no position moved

    # A later `sink run` finds nothing new: the replayed events are not stored twice.
    stdout_of(sink, "run", "--stop-at-end", SINK_PII="drop")
    assert sorted(stored(pg_engine)) == sorted(sent)


def _check_dead_letters(engine: sa.Engine, sent: dict[str, producer.Message]) -> None:
    """The NUL events are dead letters with their raw message, next to the poison ones."""
    found = letters(engine)
    assert len(found) == len(NUL_USERS) + POISON
    assert {letter["error_class"] for letter in found} == {
        "UnstorableValueError",
        "FramingError",
        "UnknownEventTypeError",
    }
    for letter in found:
        if letter["error_class"] == "UnstorableValueError":
            ce_id = {h["name"]: h.get("value") for h in letter["headers"]}["ce_id"]
            assert bytes(letter["value"]) == sent[ce_id].value  # kept whole: replayable
            assert letter["key"] is not None
            assert "holds a NUL character" in letter["error_message"]


def _check_list_and_show(sink: SinkRunner, engine: sa.Engine) -> None:
    found = letters(engine)
    listed = stdout_of(sink, "dlq", "list").splitlines()
    assert listed[0].split()[:2] == ["ID", "MESSAGE"]
    assert len(listed) == 1 + len(found)
    assert len(stdout_of(sink, "dlq", "list", "--error-class", "FramingError").splitlines()) == 2
    assert len(stdout_of(sink, "dlq", "list", "--topic", "other").splitlines()) == 1

    rejected = next(letter for letter in found if letter["error_class"] == "UnstorableValueError")
    shown = stdout_of(sink, "dlq", "show", str(rejected["id"]))
    assert "error class  UnstorableValueError" in shown
    assert "framing      Confluent-framed Avro, schema id" in shown
    assert f"value        {len(rejected['value'])} bytes: 00 " in shown
    assert "@example.org" not in shown  # the value is never printed as text
    assert f"  ce_type: {ENROLLMENT}" in shown


def _check_replay(sink: SinkRunner, engine: sa.Engine, sent: dict[str, producer.Message]) -> None:
    status, output = run_status(sink, "dlq", "replay", "--all", "--dry-run")
    assert status == 1, output  # the poison messages would still fail
    assert f"dry run: {len(NUL_USERS)} would be replayed, {POISON} still failing" in output
    assert len(stored(engine)) == len(sent) - len(NUL_USERS)

    # The fix: drop personal values, so the NUL usernames are not stored at all.
    replayed = stdout_of(sink, "dlq", "replay", "--error-class", "UnstorableValueError",
                         SINK_PII="drop")  # fmt: skip
    count = len(NUL_USERS)
    assert f"replayed {count} ({count} stored, 0 already stored), 0 still failing" in replayed
    assert sorted(stored(engine)) == sorted(sent)
    with engine.connect() as connection:
        query = f"SELECT user__id, user__pii__username FROM {TABLE} WHERE user__id IN (7, 21, 33)"
        assert sorted(connection.execute(sa.text(query)).all()) == [(u, None) for u in NUL_USERS]
    for letter in letters(engine):
        replayed_at = letter["replayed_at"]
        assert (replayed_at is not None) == (letter["error_class"] == "UnstorableValueError")

    status, output = run_status(sink, "dlq", "replay", "--all", SINK_PII="drop")
    assert status == 1
    assert f"replayed 0 (0 stored, 0 already stored), {POISON} still failing" in output
    assert "FramingError: magic byte is 0x07" in output
    assert "UnknownEventTypeError" in output
    assert len(stdout_of(sink, "dlq", "list").splitlines()) == 1 + POISON
    assert len(stdout_of(sink, "dlq", "list", "--all").splitlines()) == 1 + len(letters(engine))


# --- replay -----------------------------------------------------------------------------------


def test_replay_from_offset_zero_re_reads_everything_and_stores_nothing_twice(
    services: Services,
    registry_client: SchemaRegistryClient,
    make_topic: Callable[..., str],
    runner: Callable[..., SinkRunner],
    pg_engine: sa.Engine,
) -> None:
    topic = make_topic("replay", partitions=3)
    sent = send(services, registry_client, topic, range(300))
    sink = runner(topic)
    sink.run("run", "--stop-at-end")
    ends = end_offsets(services, (topic,))
    assert sorted(stored(pg_engine)) == sorted(sent)
    assert stored_positions(pg_engine, sink.group_id) == ends

    # While a sink of the group runs, the replay refuses and changes nothing.
    running = sink.start(name="running")
    try:
        _wait_for_member(sink)
        status, output = run_status(sink, "replay", "--from-offset", "0", "--yes")
        assert status == 1, output
        assert "active member" in output
        assert stored_positions(pg_engine, sink.group_id) == ends
    finally:
        kill(running, signal.SIGTERM)

    # Without --yes and without a terminal, it shows the plan and refuses.
    status, output = run_status(sink, "replay", "--from-offset", "0")
    assert status == 1
    assert "pass --yes" in output
    assert "rewind: re-reads" in output
    assert stored_positions(pg_engine, sink.group_id) == ends

    # Events deleted from the warehouse come back when re-read; the others are not duplicated.
    with pg_engine.begin() as connection:
        connection.execute(sa.text(f"DELETE FROM {TABLE} WHERE user__id < 50"))
    applied = stdout_of(sink, "replay", "--from-offset", "0", "--yes")
    assert "moved 3 position(s)" in applied
    assert stored_positions(pg_engine, sink.group_id) == dict.fromkeys(ends, 0)
    assert kafka_offsets(services, sink.group_id, topic) == {p: 0 for _t, p in ends}

    sink.run("run", "--stop-at-end")
    ids = stored(pg_engine)
    assert len(ids) == len(set(ids)) == len(sent)
    assert set(ids) == set(sent)
    assert stored_positions(pg_engine, sink.group_id) == ends
    assert kafka_offsets(services, sink.group_id, topic) == {p: e for (_t, p), e in ends.items()}


def _wait_for_member(sink: SinkRunner, timeout: float = 60) -> None:
    """Wait until the sink started in the background logs its partition assignment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = sink.log_path("running")
        if log.exists() and "assigned" in log.read_text():
            return
        time.sleep(0.3)
    raise AssertionError("the background sink was never assigned partitions")


def test_replay_from_a_time_rewinds_to_the_first_message_at_or_after_it(
    services: Services,
    registry_client: SchemaRegistryClient,
    make_topic: Callable[..., str],
    runner: Callable[..., SinkRunner],
    pg_engine: sa.Engine,
) -> None:
    topic = make_topic("replay-time", partitions=2)
    first = send(services, registry_client, topic, range(100))
    after_first = end_offsets(services, (topic,))
    time.sleep(1.5)
    between = datetime.now(UTC)
    time.sleep(1.5)
    second = send(services, registry_client, topic, range(100, 200))
    sink = runner(topic)
    sink.run("run", "--stop-at-end")
    ends = end_offsets(services, (topic,))
    assert sorted(stored(pg_engine)) == sorted([*first, *second])

    with pg_engine.begin() as connection:
        connection.execute(sa.text(f"DELETE FROM {TABLE}"))
    applied = stdout_of(sink, "replay", "--from", between.isoformat(), "--yes")
    assert f"from {between.isoformat()}" in applied
    assert stored_positions(pg_engine, sink.group_id) == after_first

    # Only the second burst is re-read.
    sink.run("run", "--stop-at-end")
    assert sorted(stored(pg_engine)) == sorted(second)
    assert stored_positions(pg_engine, sink.group_id) == ends

    # A time before everything rewinds to the beginning; a time after everything changes nothing.
    later = stdout_of(sink, "replay", "--from", "2999-01-01T00:00:00Z", "--yes")
    assert "nothing to change" in later
    stdout_of(sink, "replay", "--from", "2000-01-01T00:00:00Z", "--yes")
    assert stored_positions(pg_engine, sink.group_id) == dict.fromkeys(ends, 0)
    sink.run("run", "--stop-at-end")
    ids = stored(pg_engine)
    assert len(ids) == len(set(ids))
    assert set(ids) == {*first, *second}
