"""The warehouse writer on the harness's PostgreSQL, in this test's own schema.

Runs the shared contract of ``tests/unit/test_writer_sqlite.py``, then what only PostgreSQL has:
the NUL check before ``COPY``, values the server rejects (integer out of range, an index entry too
large), transient failures (closed port, a connection killed mid-transaction), concurrent writers
of the same batch, and concurrent ``sink migrate``.
"""

from __future__ import annotations

import functools
import random
import string
import threading
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from opaque_keys.edx.keys import CourseKey

from sink import events
from sink.errors import DatabaseUnavailableError, SchemaOutOfDateError
from sink.schema_check import current_revision, ensure_at_head, head_revision, migrate
from sink.writer import Warehouse
from sink.writer.postgres import PostgresDialect
from sink.writer.rows import TableRows
from tests.integration.conftest import Services
from tests.unit.test_writer_sqlite import (
    ENROLLMENT,
    GROUP,
    TOPIC,
    TRACKING_LOG,
    WriterContract,
    batch_of,
    count,
    counts,
    enrollment,
    random_events,
    stored_rows,
    tracking_log,
)


def schema_url(services: Services, schema: str) -> str:
    """The harness database, working in ``schema`` (first in the ``search_path``)."""
    return f"{services.database_url}?options=-csearch_path%3D{schema}"


@pytest.fixture
def url(services: Services, pg_schema: str) -> str:
    """This test's schema, migrated."""
    database = schema_url(services, pg_schema)
    migrate(database)
    return database


class TestPostgresWriter(WriterContract):
    rejects_nul = True

    def poison(self, event: Any, warehouse: Warehouse) -> Any:
        # Binary COPY into bigint staging, then the INSERT's cast into INTEGER refuses it.
        return attrs.evolve(event, metadata=attrs.evolve(event.metadata, minorversion=2**40))

    def test_the_server_rejection_names_the_postgresql_error(self, warehouse: Warehouse) -> None:
        warehouse.write(batch_of([self.poison(enrollment(1, "a", 0), warehouse)]), GROUP)
        [letter] = stored_rows(warehouse.engine, "sink_dead_letter")
        assert letter["error_class"] == "NumericValueOutOfRange"
        assert letter["error_message"] == f"{ENROLLMENT.table}: integer out of range"

    def test_a_nul_character_is_dead_lettered_before_copy(self, warehouse: Warehouse) -> None:
        good = enrollment(1, "good", 0)
        bad = enrollment(2, "nul\x00name", 1)
        bad_json = tracking_log({"key\x00": 1}, {"course_id": "c"}, 2)
        result = warehouse.write(batch_of([good, bad, bad_json]), GROUP)
        assert (result.stored, result.dead_letters) == (1, 2)
        letters = {row["offset"]: row for row in stored_rows(warehouse.engine, "sink_dead_letter")}
        assert letters[1]["error_class"] == "UnstorableValueError"
        assert letters[1]["error_message"] == (
            f"{ENROLLMENT.table}: column user__pii__username holds a NUL character,"
            " which PostgreSQL cannot store"
        )
        assert "column data holds a NUL" in letters[2]["error_message"]
        assert count(warehouse.engine, TRACKING_LOG.table) == 0

    def test_a_nul_character_in_a_dropped_value_is_no_problem(
        self, make_warehouse: Callable[..., Warehouse]
    ) -> None:
        warehouse = make_warehouse("drop")
        result = warehouse.write(batch_of([enrollment(2, "nul\x00name", 1)]), GROUP)
        assert (result.stored, result.dead_letters) == (1, 0)

    def test_an_index_entry_too_large_is_dead_lettered(self, warehouse: Warehouse) -> None:
        rng = random.Random(4)
        run = "".join(rng.choices(string.ascii_letters + string.digits, k=9000))
        course = events.CourseData(CourseKey.from_string(f"course-v1:Org+C+{run}"))
        big = enrollment(3, "big", 1)
        big = attrs.evolve(big, data=attrs.evolve(big.data, course=course))
        result = warehouse.write(batch_of([enrollment(1, "a", 0), big]), GROUP)
        assert (result.stored, result.dead_letters) == (1, 1)
        [letter] = stored_rows(warehouse.engine, "sink_dead_letter")
        assert letter["error_class"] == "ProgramLimitExceeded"
        assert "index row" in letter["error_message"]

    # --- transient failures ----------------------------------------------------------------

    def test_a_closed_port_is_a_transient_error(self, services: Services) -> None:
        closed = sa.make_url(services.database_url).set(host="127.0.0.1", port=1)
        warehouse = Warehouse(closed.render_as_string(hide_password=False))
        try:
            with pytest.raises(DatabaseUnavailableError) as raised:
                warehouse.write(batch_of([enrollment(1, "a", 0)]), GROUP)
            assert raised.value.transient
            with pytest.raises(DatabaseUnavailableError):
                warehouse.positions(GROUP, [(TOPIC, 0)])
        finally:
            warehouse.close()

    def test_a_connection_killed_mid_transaction_leaves_nothing_and_recovers(
        self, warehouse: Warehouse
    ) -> None:
        batch = batch_of(random_events(per_type=1))
        before = counts(warehouse.engine)
        warehouse.dialect = _DyingDialect()
        with pytest.raises(DatabaseUnavailableError):
            warehouse.write(batch, GROUP)
        assert counts(warehouse.engine) == before
        warehouse.dialect = PostgresDialect()
        result = warehouse.write(batch, GROUP)
        assert result.stored + result.dead_letters == len(batch.events)
        assert warehouse.positions(GROUP, [(TOPIC, 0)]) == {(TOPIC, 0): len(batch.events)}

    def test_a_killed_idle_connection_is_replaced(
        self, warehouse: Warehouse, pg_engine: sa.Engine
    ) -> None:
        warehouse.write(batch_of([enrollment(1, "a", 0)]), GROUP)
        with warehouse.engine.connect() as connection:
            pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with pg_engine.connect() as connection:
            connection.execute(sa.select(sa.func.pg_terminate_backend(pid)))
        assert warehouse.write(batch_of([enrollment(2, "b", 1)]), GROUP).stored == 1

    # --- concurrency -------------------------------------------------------------------------

    def test_concurrent_writers_store_a_batch_once(
        self, make_warehouse: Callable[..., Warehouse]
    ) -> None:
        batch = batch_of(random_events(per_type=3))
        writers = [make_warehouse() for _ in range(3)]
        results = _concurrently([functools.partial(w.write, batch, GROUP) for w in writers])
        stored = sum(result.stored for result in results)
        rejected = results[0].dead_letters
        assert stored + rejected == len(batch.events)
        assert all(r.stored + r.duplicates + r.dead_letters == len(batch) for r in results)
        assert sum(count(writers[0].engine, spec.table) for spec in _tables(batch)) == stored


def _tables(batch: Any) -> list[Any]:
    return list({event.spec.table: event.spec for event in batch.events}.values())


class _DyingDialect(PostgresDialect):
    """Stores the rows, then loses its connection before the transaction commits."""

    def store_events(self, connection: sa.Connection, groups: Sequence[TableRows]) -> Any:
        inserted = super().store_events(connection, groups)
        connection.exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())")
        return inserted


def _concurrently(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in threads started together; their results (errors re-raised)."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except Exception as error:  # noqa: BLE001 - handed to the main thread
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


# --- schema check and migrate ---------------------------------------------------------------------


@pytest.fixture
def empty_url(services: Services, pg_schema: str) -> str:
    """This test's schema, not migrated."""
    return schema_url(services, pg_schema)


def test_an_empty_schema_needs_migrate(empty_url: str, pg_engine: sa.Engine) -> None:
    assert current_revision(pg_engine) is None
    with pytest.raises(SchemaOutOfDateError, match=r"revision none .* run `sink migrate`"):
        ensure_at_head(pg_engine)
    warehouse = Warehouse(empty_url)
    try:
        with pytest.raises(SchemaOutOfDateError, match="run `sink migrate`"):
            warehouse.write(batch_of([enrollment(1, "a", 0)]), GROUP)
    finally:
        warehouse.close()


def test_concurrent_migrations_upgrade_once(empty_url: str, pg_engine: sa.Engine) -> None:
    revisions = _concurrently([lambda: migrate(empty_url) for _ in range(4)])
    assert revisions == [head_revision()] * 4
    assert current_revision(pg_engine) == head_revision()
    ensure_at_head(pg_engine)
