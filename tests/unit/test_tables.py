"""The SQLAlchemy metadata of the warehouse: tables, keys, indexes, types per dialect.

Besides the shape of :data:`sink.tables.metadata`, flattened random payloads of every table are
inserted into SQLite and DuckDB (``metadata.create_all``) and read back: flattening yields values
the databases take as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateTable

from sink import catalog, flatten, tables
from sink.flatten import TableModel
from tests import producer
from tests.unit.test_flatten import payloads

MODELS = flatten.all_models()
ENVELOPE = list(flatten.envelope_column_names())


def test_every_catalog_table_exists_with_the_envelope_first() -> None:
    for table_name in dict.fromkeys(spec.table for spec in catalog.all_specs()):
        table = tables.metadata.tables[table_name]
        assert [c.name for c in table.columns][: len(ENVELOPE)] == ENVELOPE
        assert [c.name for c in table.primary_key.columns] == ["event_id"]
        assert table.c.schema_id.nullable
        assert not table.c.ingested_at.nullable


def test_metadata_holds_exactly_the_event_child_and_bookkeeping_tables() -> None:
    expected = {"sink_offset", "sink_dead_letter"}
    for model in MODELS:
        expected |= {model.name, *(child.name for child in model.children)}
    assert set(tables.metadata.tables) == expected
    assert set(tables.event_tables) == expected - {"sink_offset", "sink_dead_letter"}


@pytest.mark.parametrize(
    ("child", "parent", "payload"),
    [
        ("learning_user_notification__user_ids", "learning_user_notification", ["value"]),
        (
            "learning_course_discussion_configuration__contexts",
            "learning_course_discussion_configuration",
            ["title", "usage_key", "group_id", "external_id", "ordering", "context"],
        ),
        ("learning_ora_submission__answer__file_names", "learning_ora_submission", ["value"]),
    ],
)
def test_child_tables(child: str, parent: str, payload: list[str]) -> None:
    table = tables.table_for(child)
    assert [c.name for c in table.columns] == ["event_id", "position", *payload]
    assert [c.name for c in table.primary_key.columns] == ["event_id", "position"]
    (foreign_key,) = table.foreign_keys
    assert foreign_key.target_fullname == f"{parent}.event_id"
    assert foreign_key.ondelete == "CASCADE"


def test_personal_columns_are_flagged() -> None:
    enrollment = tables.columns_of("learning_course_enrollment")
    assert enrollment["user__pii__email"].personal
    assert enrollment["created_by__pii__username"].personal
    assert not enrollment["user__id"].personal
    assert not enrollment["event_id"].personal
    assert tables.personal_columns("learning_ccx_course_passing_status") == (
        "user__pii__username",
        "user__pii__email",
        "user__pii__name",
        "course__coach_email",
    )
    assert tables.personal_columns("learning_ora_submission__answer__file_names") == ("value",)
    assert tables.personal_columns("learning_ora_submission__answer__file_sizes") == ()


def test_column_models_cover_every_column() -> None:
    for name, table in tables.event_tables.items():
        assert list(tables.columns_of(name)) == [c.name for c in table.columns]


def _indexed(table_name: str) -> set[tuple[str, ...]]:
    table = tables.table_for(table_name)
    return {tuple(c.name for c in index.columns) for index in table.indexes}


def test_reporting_indexes() -> None:
    assert _indexed("learning_course_enrollment") == {
        ("event_type", "event_time"),
        ("event_time",),
        ("user__id",),
        ("created_by__id",),
        ("course__course_key",),
    }
    assert ("lms_user_id",) in _indexed("enterprise_ledger_transaction")
    assert ("ece__ecu__user_id",) in _indexed("enterprise_learner_credit_course_enrollment")
    assert ("value",) in _indexed("learning_user_notification__user_ids")
    for model in MODELS:
        assert {("event_type", "event_time"), ("event_time",)} <= _indexed(model.name)


def test_constraint_and_index_names_fit() -> None:
    dialect = postgresql.dialect()
    for table in tables.metadata.tables.values():
        names: list[object] = [index.name for index in table.indexes]
        names += [constraint.name for constraint in table.constraints]
        for name in names:
            assert isinstance(name, str)
            assert len(name) <= 63, name
            assert dialect.identifier_preparer.format_constraint(
                sa.UniqueConstraint(name=name)
            ) in (name, f'"{name}"')


def test_shortened_columns_carry_their_full_path_as_comment() -> None:
    table = tables.table_for("enterprise_learner_credit_course_enrollment")
    column = table.c.ece__ecu__is_relinkable
    assert column.comment == (
        "full path: enterprise_course_enrollment__enterprise_customer_user__is_relinkable"
    )
    assert table.c.enterprise_course_enrollment__course_id.comment is None


def test_bookkeeping_tables() -> None:
    offset = tables.sink_offset
    assert [c.name for c in offset.columns] == [
        "consumer_group",
        "topic",
        "partition",
        "next_offset",
        "updated_at",
    ]
    assert [c.name for c in offset.primary_key.columns] == ["consumer_group", "topic", "partition"]
    dead = tables.sink_dead_letter
    assert [c.name for c in dead.primary_key.columns] == ["id"]
    assert dead.c.id.identity is not None
    (unique,) = (c for c in dead.constraints if isinstance(c, sa.UniqueConstraint))
    assert [c.name for c in unique.columns] == ["topic", "partition", "offset"]
    nullable = {c.name for c in dead.columns if c.nullable}
    assert nullable == {"key", "value", "event_type", "replayed_at"}


def _ddl(table_name: str, dialect: sa.Dialect) -> str:
    return str(CreateTable(tables.table_for(table_name)).compile(dialect=dialect))


def test_postgresql_types() -> None:
    ddl = _ddl("analytics_tracking_log", postgresql.dialect())
    assert "data JSONB" in ddl
    assert "timestamp TIMESTAMP WITH TIME ZONE NOT NULL" in ddl
    ddl = _ddl("enterprise_group", postgresql.dialect())
    assert "uuid UUID NOT NULL" in ddl
    ddl = _ddl("learning_persistent_course_grade", postgresql.dialect())
    assert "percent_grade DOUBLE PRECISION NOT NULL" in ddl
    assert "user_id BIGINT NOT NULL" in ddl
    assert "GENERATED BY DEFAULT AS IDENTITY" in _ddl("sink_dead_letter", postgresql.dialect())


def test_sqlite_types() -> None:
    ddl = _ddl("analytics_tracking_log", sqlite.dialect())
    assert "data JSON" in ddl
    assert "id INTEGER NOT NULL" in _ddl("sink_dead_letter", sqlite.dialect())


def test_duckdb_ddl_has_no_cascade_and_a_sequence_for_the_identity() -> None:
    pytest.importorskip("duckdb_engine")
    dialect = sa.create_engine("duckdb:///:memory:").dialect
    child = _ddl("learning_ora_submission__answer__file_names", dialect)
    assert "REFERENCES learning_ora_submission (event_id)" in child
    assert "CASCADE" not in child
    dead = _ddl("sink_dead_letter", dialect)
    assert "DEFAULT nextval('sink_dead_letter_id_seq')" in dead


# --- flattened rows go into real databases ------------------------------------------------------


def _engines() -> Iterator[str]:
    yield "sqlite://"
    yield "duckdb:///:memory:"


@pytest.fixture(scope="module", params=list(_engines()))
def engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    if request.param.startswith("duckdb"):
        pytest.importorskip("duckdb_engine")
    engine = sa.create_engine(request.param)
    tables.metadata.create_all(engine)
    yield engine
    engine.dispose()


def _envelope(spec: catalog.EventSpec, event_id: str, offset: int) -> dict[str, Any]:
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    return {
        "event_id": event_id,
        "event_type": spec.event_type,
        "event_time": when,
        "event_source": "openedx/lms/web",
        "source_host": "lms.example",
        "source_lib": "openedx-events",
        "minor_version": 0,
        "kafka_topic": "topic",
        "kafka_partition": 0,
        "kafka_offset": offset,
        "schema_id": None,
        "ingested_at": when,
    }


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.name)
def test_flattened_rows_insert_and_read_back(engine: sa.Engine, model: TableModel) -> None:
    spec = next(s for s in catalog.all_specs() if s.table == model.name)
    samples = producer.samples(payloads(model.data_class), 5)
    with engine.begin() as connection:
        for number, payload in enumerate(samples):
            event_id = f"{model.name}-{number}"
            flat = flatten.flatten(spec, payload, event_id)
            row = {**_envelope(spec, event_id, number), **flat.row}
            connection.execute(tables.table_for(model.name).insert(), [row])
            for child_name, child_rows in flat.children.items():
                if child_rows:
                    connection.execute(tables.table_for(child_name).insert(), child_rows)
            _assert_read_back(connection, model, event_id, flat)
        connection.rollback()


def _assert_read_back(
    connection: sa.Connection, model: TableModel, event_id: str, flat: flatten.Flattened
) -> None:
    table = tables.table_for(model.name)
    stored = connection.execute(sa.select(table).where(table.c.event_id == event_id)).one()
    for name, value in flat.row.items():
        assert _same(stored._mapping[name], value), name
    for child_name, child_rows in flat.children.items():
        child = tables.table_for(child_name)
        query = sa.select(child).where(child.c.event_id == event_id).order_by(child.c.position)
        stored_rows = connection.execute(query).all()
        assert len(stored_rows) == len(child_rows), child_name
        for stored_row, row in zip(stored_rows, child_rows, strict=True):
            for name, value in row.items():
                assert _same(stored_row._mapping[name], value), (child_name, name)


def _same(stored: Any, value: Any) -> bool:
    """Equal, allowing for naive UTC datetimes read back from SQLite."""
    if hasattr(stored, "tzinfo") and stored.tzinfo is None and value is not None:
        return bool(stored.replace(tzinfo=UTC) == value)
    return bool(stored == value)
