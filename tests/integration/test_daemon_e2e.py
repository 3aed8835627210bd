"""End to end: real Open edX messages → `sink run` (a subprocess) → PostgreSQL.

Every test asserts the delivery guarantee the hard way: after the stream is done, each produced
``ce_id`` is stored exactly once, and the stored positions equal the partitions' end offsets.
"""

from __future__ import annotations

import random
import signal
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from confluent_kafka import Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from confluent_kafka.schema_registry import SchemaRegistryClient

from sink import catalog, tables
from sink.decoder import Decoder
from sink.errors import MessageLocation
from sink.flatten import flattener_for
from tests import producer
from tests.cells import comparable, holds_nul
from tests.integration.conftest import SERVICES, Services
from tests.integration.sinkproc import (
    NO_ACCESS_PASSWORD,
    NO_ACCESS_USER,
    SASL_PASSWORD,
    SASL_USER,
    SinkRunner,
    end_offsets,
    kill,
    produce_stream,
    sasl_settings,
    stored_event_ids,
    stored_positions,
)

ENROLLMENT = "org.openedx.learning.course.enrollment.created.v1"
MIXED = [
    ENROLLMENT,
    "org.openedx.learning.course.unenrollment.completed.v1",
    "org.openedx.learning.certificate.created.v1",
    "org.openedx.learning.course.persistent_grade_summary.changed.v1",
    "org.openedx.learning.auth.session.login.completed.v1",
    "org.openedx.analytics.tracking.event.emitted.v1",
]
# Avro names cannot hold "-": no registry accepts this type's schema, so no producer can send it.
UNREGISTRABLE = {"org.openedx.enterprise.subsidy.redemption-reversed.v1"}


@pytest.fixture
def runner(
    services: Services,
    pg_schema: str,
    group_id: str,
    make_topic: Callable[..., str],
    tmp_path: Path,
) -> Callable[..., SinkRunner]:
    def make(*topics: str) -> SinkRunner:
        sink = SinkRunner(services, pg_schema, group_id, topics, tmp_path)
        sink.run("migrate")
        return sink

    return make


def _all_event_tables() -> list[str]:
    """The parent table of every event type (child tables hold event ids too)."""
    return sorted({spec.table for spec in catalog.all_specs()})


def _unstorable(sent: dict[str, Any]) -> set[str]:
    return {i for i, message in sent.items() if holds_nul(producer.comparable(message.data))}


def _assert_exactly_once(
    engine: sa.Engine, sink: SinkRunner, sent: dict[str, Any], dead: int = 0
) -> None:
    """Each sent event stored once, except those PostgreSQL cannot store: dead letters instead."""
    unstorable = _unstorable(sent)
    sent = {i: message for i, message in sent.items() if i not in unstorable}
    dead += len(unstorable)
    ids = stored_event_ids(engine, _all_event_tables())
    assert len(ids) == len(set(ids)), "an event was stored twice"
    lost = sorted({sent[event_id].event_type for event_id in set(sent) - set(ids)})
    assert set(ids) == set(sent), (
        f"lost {len(set(sent) - set(ids))} (types {lost}), unexpected {len(set(ids) - set(sent))}"
    )
    assert stored_positions(engine, sink.group_id) == end_offsets(sink.services, sink.topics)
    with engine.connect() as connection:
        letters = connection.execute(sa.text("SELECT count(*) FROM sink_dead_letter")).scalar()
    assert letters == dead


def test_every_event_type_lands_with_its_rows(
    services: Services,
    registry_client: SchemaRegistryClient,
    make_topic: Callable[..., str],
    runner: Callable[..., SinkRunner],
    pg_engine: sa.Engine,
) -> None:
    topics = tuple(make_topic(name, partitions=3) for name in ("learning", "analytics", "misc"))
    event_types = [t for t in producer.serializable_event_types() if t not in UNREGISTRABLE]
    sent = produce_stream(services, registry_client, topics, event_types, len(event_types) * 8, 8)
    sink = runner(*topics)
    sink.run("run", "--stop-at-end")

    _assert_exactly_once(pg_engine, sink, sent)
    decoder = Decoder(registry_client)
    unstorable = _unstorable(sent)
    with pg_engine.connect() as connection:
        for event_id, message in sent.items():
            if event_id not in unstorable:
                _assert_rows_match(connection, decoder, message)


def _assert_rows_match(connection: sa.Connection, decoder: Decoder, message: Any) -> None:
    """The stored parent and child rows equal the flattening of the decoded message."""
    event = decoder.decode(message.value, message.headers, MessageLocation("t", 0, 0))
    expected = flattener_for(event.spec)(event.data, event.event_id)
    table = tables.table_for(event.spec.table)
    row = connection.execute(sa.select(table).where(table.c.event_id == event.event_id)).one()
    stored = row._asdict()
    assert stored["event_type"] == message.event_type
    for column, value in expected.row.items():
        assert comparable(stored[column]) == comparable(value), f"{event.spec.table}.{column}"
    for child_name, child_rows in expected.children.items():
        child = tables.table_for(child_name)
        found = connection.execute(
            sa.select(child).where(child.c.event_id == event.event_id).order_by(child.c.position)
        ).all()
        assert [{k: comparable(v) for k, v in r._asdict().items()} for r in found] == [
            {k: comparable(v) for k, v in r.items()} for r in child_rows
        ], child_name


def test_kill_9_at_random_moments_loses_and_duplicates_nothing(
    services: Services,
    registry_client: SchemaRegistryClient,
    make_topic: Callable[..., str],
    runner: Callable[..., SinkRunner],
    pg_engine: sa.Engine,
) -> None:
    topics = (make_topic("kill9", partitions=4),)
    sent = produce_stream(services, registry_client, topics, MIXED, 40_000)
    sink = runner(*topics)
    rng = random.Random(20261127)
    progress = []
    for round_ in range(4):
        process = sink.start(name="killed")
        # After a kill the group waits for the dead member's session (6 s) to expire.
        time.sleep(rng.uniform(1.5, 3.0) if round_ == 0 else rng.uniform(6.5, 9.0))
        assert process.poll() is None, "the sink exited by itself"
        kill(process)
        progress.append(len(stored_event_ids(pg_engine, _all_event_tables())))
    print(f"stored after each kill -9: {progress} of {len(sent)}")
    assert 0 < progress[0] < len(sent), "the first kill must land mid-stream"
    assert len(set(progress)) > 1, "restarted sinks must make progress between kills"
    sink.run("run", "--stop-at-end")
    _assert_exactly_once(pg_engine, sink, sent)


def test_sigterm_finishes_the_batch_and_exits_zero(
    services: Services,
    registry_client: SchemaRegistryClient,
    make_topic: Callable[..., str],
    runner: Callable[..., SinkRunner],
    pg_engine: sa.Engine,
) -> None:
    topics = (make_topic("sigterm", partitions=2),)
    sent = produce_stream(services, registry_client, topics, MIXED, 3_000)
    sink = runner(*topics)
    process = sink.start(name="terminated")
    time.sleep(4)
    started = time.monotonic()
    assert kill(process, signal.SIGTERM) == 0
    assert time.monotonic() - started < 15
    sink.run("run", "--stop-at-end")
    _assert_exactly_once(pg_engine, sink, sent)


def test_sink_reads_through_sasl_with_the_right_password(
    services: Services,
    registry_client: SchemaRegistryClient,
    make_topic: Callable[..., str],
    runner: Callable[..., SinkRunner],
    pg_engine: sa.Engine,
) -> None:
    topics = (make_topic("sasl", partitions=2),)
    sent = produce_stream(services, registry_client, topics, MIXED, 300)
    sink = runner(*topics)
    output = sink.run("run", "--stop-at-end", **sasl_settings(SASL_PASSWORD))
    _assert_exactly_once(pg_engine, sink, sent)
    assert SASL_PASSWORD not in output


def _allow_group(kafka_admin: AdminClient, group_id: str) -> AclBindingFilter:
    """Let the user without rights join ``group_id`` (and nothing more); returns the undo."""
    rule = (
        ResourceType.GROUP,
        group_id,
        ResourcePatternType.LITERAL,
        f"User:{NO_ACCESS_USER}",
        "*",
        AclOperation.READ,
        AclPermissionType.ALLOW,
    )
    for future in kafka_admin.create_acls([AclBinding(*rule)]).values():
        future.result(timeout=30)
    return AclBindingFilter(*rule)


@pytest.mark.parametrize(
    ("user", "password", "group_allowed", "refusal"),
    [
        (SASL_USER, "not-the-password", False, "SASL authentication error"),
        (NO_ACCESS_USER, NO_ACCESS_PASSWORD, False, "Group authorization failed"),
        (NO_ACCESS_USER, NO_ACCESS_PASSWORD, True, "Topic authorization failed"),
    ],
    ids=["wrong-password", "group-not-allowed", "topic-not-allowed"],
)
def test_kafka_refusing_the_sink_stops_it_with_a_clear_error(
    user: str,
    password: str,
    group_allowed: bool,
    refusal: str,
    kafka_admin: AdminClient,
    group_id: str,
    make_topic: Callable[..., str],
    runner: Callable[..., SinkRunner],
) -> None:
    """librdkafka retries a refused login forever; the sink must say so and exit instead."""
    sink = runner(make_topic("sasl-refused"))
    undo = _allow_group(kafka_admin, group_id) if group_allowed else None
    try:
        output = sink.refused("run", timeout=60, **sasl_settings(password, user))
    finally:
        if undo is not None:
            for future in kafka_admin.delete_acls([undo]).values():
                future.result(timeout=30)
    last = output.strip().splitlines()[-1]
    assert last.startswith("error: Kafka refused the sink"), last
    assert refusal in last
    assert "check the SINK_KAFKA_* settings" in last
    assert password not in output


@pytest.mark.parametrize(
    ("command", "wrong", "refusal"),
    [
        (("run",), ("sink", "not-the-password"), "password authentication failed"),
        (("run",), ("nosuchdb", None), 'database "nosuchdb" does not exist'),
        (("migrate",), ("sink", "not-the-password"), "password authentication failed"),
        (("report", "course-summary"), ("nosuchdb", None), "does not exist"),
        (("dlq", "list"), ("sink", "not-the-password"), "password authentication failed"),
    ],
    ids=["run-password", "run-database", "migrate-password", "report-database", "dlq-password"],
)
def test_database_refusing_the_sink_is_one_clear_line(
    command: tuple[str, ...],
    wrong: tuple[str, str | None],
    refusal: str,
    make_topic: Callable[..., str],
    runner: Callable[..., SinkRunner],
) -> None:
    """A wrong password or database: exit status 2, the server's reason, the setting to fix."""
    sink = runner(make_topic("db-refused"))
    database, password = wrong
    url = sa.make_url(sink.services.database_url).set(database=database)
    if password is not None:
        url = url.set(password=password)
    output = sink.refused(*command, SINK_DATABASE_URL=url.render_as_string(hide_password=False))
    last = output.strip().splitlines()[-1]
    assert last.startswith("error: the warehouse database refused the sink"), last
    assert refusal in last
    assert "check SINK_DATABASE_URL" in last
    assert "not-the-password" not in output


def test_sink_started_while_the_database_is_down_waits_for_it(
    services: Services,
    registry_client: SchemaRegistryClient,
    make_topic: Callable[..., str],
    runner: Callable[..., SinkRunner],
    pg_engine: sa.Engine,
) -> None:
    topics = (make_topic("db-late", partitions=2),)
    sent = produce_stream(services, registry_client, topics, MIXED, 500)
    sink = runner(*topics)
    subprocess.run([str(SERVICES), "down", "postgres"], check=True)
    try:
        process = sink.start("--stop-at-end", name="db-late", SINK_FAILURE_BUDGET="1000")
        time.sleep(4)
        assert process.poll() is None, sink.log_path("db-late").read_text()[-3000:]
    finally:
        subprocess.run([str(SERVICES), "up", "postgres"], check=True)
    assert process.wait(timeout=120) == 0, sink.log_path("db-late").read_text()[-3000:]
    pg_engine.dispose()  # its pooled connections died with the server
    _assert_exactly_once(pg_engine, sink, sent)
    assert "start: the warehouse database is unavailable" in sink.log_path("db-late").read_text()


OUTAGE_SIGNS = {"postgres": "recovered after", "kafka": "Connection refused"}


def _restart_service(name: str, down_s: float) -> None:
    subprocess.run([str(SERVICES), "down", name], check=True)
    time.sleep(down_s)
    subprocess.run([str(SERVICES), "up", name], check=True)


@pytest.mark.parametrize("service", ["postgres", "kafka"])
def test_service_restart_mid_stream_keeps_running_and_catches_up(
    service: str,
    services: Services,
    registry_client: SchemaRegistryClient,
    make_topic: Callable[..., str],
    runner: Callable[..., SinkRunner],
    pg_engine: sa.Engine,
) -> None:
    topics = (make_topic(f"restart-{service}", partitions=3),)
    sent = produce_stream(services, registry_client, topics, MIXED, 20_000)
    sink = runner(*topics)
    process = sink.start("--stop-at-end", name=f"outage-{service}", SINK_FAILURE_BUDGET="1000")
    time.sleep(2)
    assert process.poll() is None
    _restart_service(service, down_s=5)
    assert process.wait(timeout=240) == 0
    pg_engine.dispose()  # its pooled connections died with the server
    _assert_exactly_once(pg_engine, sink, sent)
    log = sink.log_path(f"outage-{service}").read_text()
    # The outage really hit the running sink: it noticed, and (for the database) retried.
    assert OUTAGE_SIGNS[service] in log, log[-3000:]


def test_two_replicas_one_killed_mid_stream(
    services: Services,
    registry_client: SchemaRegistryClient,
    make_topic: Callable[..., str],
    runner: Callable[..., SinkRunner],
    pg_engine: sa.Engine,
) -> None:
    topics = (make_topic("replicas", partitions=6),)
    sent = produce_stream(services, registry_client, topics, MIXED, 20_000)
    sink = runner(*topics)
    first = sink.start(name="replica-a")
    second = sink.start(name="replica-b")
    time.sleep(4)
    kill(first)
    sink.run("run", "--stop-at-end")  # joins the group next to the survivor
    kill(second, signal.SIGTERM)
    _assert_exactly_once(pg_engine, sink, sent)


def test_poison_messages_are_dead_lettered_and_the_stream_moves_on(
    services: Services,
    registry_client: SchemaRegistryClient,
    make_topic: Callable[..., str],
    runner: Callable[..., SinkRunner],
    pg_engine: sa.Engine,
) -> None:
    topic = make_topic("poison", partitions=1)
    good = produce_stream(services, registry_client, (topic,), [ENROLLMENT], 200)
    valid = next(iter(good.values()))

    def headers(event_type: str = ENROLLMENT, **replace: bytes | None) -> list[tuple[str, bytes]]:
        fresh: dict[str, bytes | None] = dict(producer.headers(event_type))
        fresh.update(replace)
        return [(k, v) for k, v in fresh.items() if v is not None]

    bad_key = valid.value.replace(b"course-v1:", b"course-v9:", 1)
    assert bad_key != valid.value
    garbage = random.Random(1).randbytes(64)
    poison = [  # (value, headers, expected error class; None: any decode error)
        (garbage, headers(), None),
        (b"\x07" + valid.value[1:], headers(), "FramingError"),
        (b"\x00" + struct.pack(">I", 987_654) + valid.value[5:], headers(), "UnknownSchemaIdError"),
        (valid.value, headers("org.openedx.learning.nothing.v1"), "UnknownEventTypeError"),
        (valid.value, headers(ce_id=None), "MissingHeaderError"),
        (bad_key, headers(), "InvalidValueError"),
    ]
    plain = Producer({"bootstrap.servers": services.bootstrap_servers})
    for value, message_headers, _expected in poison:
        plain.produce(topic, value, headers=producer.kafka_headers(message_headers))
    plain.flush(30)
    more = produce_stream(services, registry_client, (topic,), [ENROLLMENT], 200)

    sink = runner(topic)
    sink.run("run", "--stop-at-end")
    _assert_exactly_once(pg_engine, sink, {**good, **more}, dead=len(poison))
    with pg_engine.connect() as connection:
        letters = connection.execute(
            sa.text(
                'SELECT "offset", error_class, error_message, value FROM sink_dead_letter'
                ' WHERE "offset" BETWEEN 200 AND :last ORDER BY "offset"'
            ),
            {"last": 200 + len(poison) - 1},
        ).all()
    assert [offset for offset, *_ in letters] == list(range(200, 200 + len(poison)))
    for (value, _headers, expected), (_offset, error_class, reason, stored) in zip(
        poison, letters, strict=True
    ):
        assert stored == value  # the raw message is kept whole, for replay after a fix
        assert reason, error_class
        if expected is not None:
            assert error_class == expected, reason


def test_stop_at_end_with_empty_or_missing_topics_exits_at_once(
    make_topic: Callable[..., str],
    runner: Callable[..., SinkRunner],
    unique: Callable[[str], str],
) -> None:
    empty = make_topic("empty", partitions=2)
    sink = runner(empty, "^" + unique("nothing-matches"))
    started = time.monotonic()
    sink.run("run", "--stop-at-end", timeout=60)
    assert time.monotonic() - started < 30
