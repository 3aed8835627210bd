"""The column model derived from the payload classes, and flattening payloads into rows.

The Hypothesis tests flatten random instances of every payload class and compare the result with
an independent walk of the same instance: every leaf value lands in exactly one column (or child
row), converted as documented; child rows point at their event and list position; the result is
deterministic.
"""

from __future__ import annotations

import json
import re
import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opaque_keys import OpaqueKey
from opaque_keys.edx.keys import CourseKey

from sink import catalog, events, flatten
from sink.flatten import Column, LogicalType, TableModel
from tests import producer

MODELS = flatten.all_models()
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
EVENT_ID = "0b6a9cf0-3f5e-4a4e-9d7e-1f0a4d2f8c11"

# --- random payloads ---------------------------------------------------------------------------

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)
#: Tracking-log JSON text: documents, arbitrary text, and the corner cases of "not JSON".
json_texts = st.one_of(
    _json_values.map(json.dumps),
    producer.texts,
    st.sampled_from(["NaN", "[1, Infinity]", "null", "{", "", '"quoted"', "[" * 5000]),
)


def payloads(data_class: type) -> st.SearchStrategy[Any]:
    """Random instances of a payload class (tracking-log JSON text made interesting)."""
    if data_class is events.TrackingLogData:
        return st.builds(
            events.TrackingLogData,
            name=producer.texts,
            timestamp=producer.datetimes,
            data=json_texts,
            context=json_texts,
        )
    return producer.class_strategy(data_class)


# --- an independent walk of a payload -----------------------------------------------------------


def _unwrap(python_type: Any) -> Any:
    if typing.get_origin(python_type) in (typing.Union, types.UnionType):
        return next(arg for arg in typing.get_args(python_type) if arg is not type(None))
    return python_type


def walk(cls: type[Any], value: Any, path: tuple[str, ...] = ()) -> tuple[dict[Any, Any], ...]:
    """``(leaves, lists)`` of ``value`` (an instance of ``cls``, or None): path → value/items."""
    leaves: dict[tuple[str, ...], Any] = {}
    lists: dict[tuple[str, ...], list[Any]] = {}
    for field in attrs.fields(attrs.resolve_types(cls)):
        field_type = _unwrap(field.type)
        inner = None if value is None else getattr(value, field.name)
        field_path = (*path, field.name)
        if isinstance(field_type, type) and attrs.has(field_type):
            nested_leaves, nested_lists = walk(field_type, inner, field_path)
            leaves.update(nested_leaves)
            lists.update(nested_lists)
        elif typing.get_origin(field_type) is list:
            lists[field_path] = [] if inner is None else list(inner)
        else:
            leaves[field_path] = inner
    return leaves, lists


def _strict_json(text: str) -> Any:
    def reject(name: str) -> Any:
        raise ValueError(name)

    try:
        return json.loads(text, parse_constant=reject)
    except (ValueError, RecursionError):
        return text


def expected_value(column: Column, raw: Any) -> Any:
    """What the column should hold for the attribute value ``raw``."""
    if raw is None:
        return None
    if isinstance(raw, OpaqueKey):
        return str(raw)
    if isinstance(raw, datetime):
        return (raw if raw.tzinfo else raw.replace(tzinfo=UTC)).astimezone(UTC)
    if column.type is LogicalType.JSON and isinstance(raw, str):
        return _strict_json(raw)
    return raw


def expected_child_rows(child: flatten.ChildTable, items: list[Any]) -> list[dict[str, Any]]:
    rows = []
    for position, item in enumerate(items):
        row: dict[str, Any] = {"event_id": EVENT_ID, "position": position}
        if child.item_class is None:
            (column,) = child.columns
            row[column.name] = expected_value(column, item)
        else:
            leaves, _ = walk(child.item_class, item)
            row.update({c.name: expected_value(c, leaves[c.path]) for c in child.columns})
        rows.append(row)
    return rows


def _assert_row_matches(model: TableModel, payload: Any, flat: flatten.Flattened) -> None:
    leaves, lists = walk(model.data_class, payload)
    # Every leaf has exactly one column, every list exactly one child table, and nothing else.
    assert sorted(c.path for c in model.columns) == sorted(leaves)
    assert sorted(child.path for child in model.children) == sorted(lists)
    assert list(flat.row) == [c.name for c in model.columns]
    for column in model.columns:
        assert flat.row[column.name] == expected_value(column, leaves[column.path]), column.name
        assert column.nullable or flat.row[column.name] is not None, column.name
    assert list(flat.children) == [child.name for child in model.children]
    for child in model.children:
        assert flat.children[child.name] == expected_child_rows(child, lists[child.path])


def _assert_db_ready(flat: flatten.Flattened) -> None:
    """Datetimes are aware UTC, UUIDs are UUIDs, no opaque key objects remain."""
    rows = [flat.row, *(row for rows in flat.children.values() for row in rows)]
    for value in (value for row in rows for value in row.values()):
        assert not isinstance(value, OpaqueKey)
        if isinstance(value, datetime):
            assert value.utcoffset() == timedelta(0)
            assert value.tzinfo is UTC


# --- invariants, for every table -----------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.name)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_leaf_lands_in_exactly_one_column(model: TableModel, data: st.DataObject) -> None:
    payload = data.draw(payloads(model.data_class))
    flat = flatten.flattener(model.data_class, model.name)(payload, EVENT_ID)
    _assert_row_matches(model, payload, flat)
    _assert_db_ready(flat)


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.name)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_flattening_is_deterministic(model: TableModel, data: st.DataObject) -> None:
    payload = data.draw(payloads(model.data_class))
    spec = next(s for s in catalog.all_specs() if s.table == model.name)
    first = flatten.flatten(spec, payload, EVENT_ID)
    again = flatten.flatten(spec, attrs.evolve(payload), EVENT_ID)
    assert first == again
    assert list(first.row) == list(again.row)
    source = flatten.flattener_source(model.data_class, model.name)
    assert source == flatten.flattener_source(model.data_class, model.name)


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.name)
def test_names_are_unique_valid_identifiers(model: TableModel) -> None:
    table_columns = [*flatten.envelope_column_names(), *(c.name for c in model.columns)]
    assert len(set(table_columns)) == len(table_columns)
    for child in model.children:
        child_columns = [c.name for c in (*flatten.CHILD_KEY_COLUMNS, *child.columns)]
        assert len(set(child_columns)) == len(child_columns)
        table_columns += child_columns
    for name in (*table_columns, model.name, *(child.name for child in model.children)):
        assert IDENTIFIER.match(name), name
        assert len(name) <= 63, name


def test_table_names_are_unique_across_the_catalog() -> None:
    names = [name for model in MODELS for name in (model.name, *(c.name for c in model.children))]
    assert len(set(names)) == len(names)
    assert [model.name for model in MODELS] == list(dict.fromkeys(s.table for s in catalog.SPECS))


# --- the model of particular tables --------------------------------------------------------------


def test_enrollment_columns() -> None:
    model = flatten.table_model(events.CourseEnrollmentData, "learning_course_enrollment")
    assert [c.name for c in model.columns] == [
        "user__id",
        "user__is_active",
        "user__pii__username",
        "user__pii__email",
        "user__pii__name",
        "course__course_key",
        "course__display_name",
        "course__start",
        "course__end",
        "mode",
        "is_active",
        "creation_date",
        "created_by__id",
        "created_by__is_active",
        "created_by__pii__username",
        "created_by__pii__email",
        "created_by__pii__name",
    ]
    types = {c.name: c.type for c in model.columns}
    assert types["user__id"] is LogicalType.BIGINT
    assert types["course__course_key"] is LogicalType.TEXT
    assert types["creation_date"] is LogicalType.TIMESTAMPTZ
    assert types["is_active"] is LogicalType.BOOLEAN
    nullable = {c.name for c in model.columns if c.nullable}
    assert nullable == {
        "course__start",
        "course__end",
        # Personal values can be dropped by the PII policy, so their columns are nullable.
        "user__pii__username",
        "user__pii__email",
        "user__pii__name",
        *(c.name for c in model.columns if c.name.startswith("created_by__")),
    }
    assert model.children == ()


def test_every_personal_column_is_nullable() -> None:
    for model in flatten.all_models():
        for column in model.columns:
            assert column.nullable or not column.personal, (model.name, column.name)
        for child in model.children:
            for column in child.columns:
                assert column.nullable or not column.personal, (child.name, column.name)


def test_types_of_uuid_double_and_json_columns() -> None:
    ledger = flatten.model_for(catalog.spec_for("org.openedx.enterprise.subsidy.redeemed.v1"))
    assert ledger.column("lms_user_id").type is LogicalType.BIGINT
    grade = flatten.table_model(events.PersistentCourseGradeData, "g")
    assert grade.column("percent_grade").type is LogicalType.DOUBLE
    group = flatten.table_model(events.EnterpriseGroup, "enterprise_group")
    assert group.column("uuid").type is LogicalType.UUID
    notification = flatten.table_model(events.CourseNotificationData, "n")
    assert notification.column("audience_filters").type is LogicalType.JSON
    thread = flatten.table_model(events.DiscussionThreadData, "t")
    assert thread.column("discussion").type is LogicalType.JSON
    assert thread.column("discussion").nullable


def test_child_tables_of_lists() -> None:
    ora = flatten.table_model(events.ORASubmissionData, "learning_ora_submission")
    names = [child.name for child in ora.children]
    assert "learning_ora_submission__answer__file_names" in names
    parts = next(child for child in ora.children if child.path == ("answer", "parts"))
    assert [(c.name, c.type) for c in parts.columns] == [("value", LogicalType.JSON)]
    config = flatten.table_model(
        events.CourseDiscussionConfigurationData, "learning_course_discussion_configuration"
    )
    (contexts,) = config.children
    assert contexts.name == "learning_course_discussion_configuration__contexts"
    assert contexts.item_class is events.DiscussionTopicContext
    assert [c.name for c in contexts.columns] == [
        "title",
        "usage_key",
        "group_id",
        "external_id",
        "ordering",
        "context",
    ]


def test_user_id_and_course_key_columns() -> None:
    exam = flatten.table_model(events.ExamAttemptData, "learning_exam_attempt")
    assert {c.name for c in exam.columns if c.user_id} == {
        "student_user__id",
        "requesting_user__id",
    }
    assert {c.name for c in exam.columns if c.course_key} == {"course_key"}
    notification = flatten.table_model(events.UserNotificationData, "learning_user_notification")
    (user_ids,) = notification.children
    assert user_ids.columns[0].user_id


def test_envelope_columns() -> None:
    assert flatten.envelope_column_names() == (
        "event_id",
        "event_type",
        "event_time",
        "event_source",
        "source_host",
        "source_lib",
        "minor_version",
        "kafka_topic",
        "kafka_partition",
        "kafka_offset",
        "schema_id",
        "ingested_at",
    )
    nullable = [c.name for c in flatten.ENVELOPE_COLUMNS if c.nullable]
    assert nullable == ["schema_id"]


# --- personal data ------------------------------------------------------------------------------

PERSONAL = {
    "learning_user": {"pii__username", "pii__email", "pii__name"},
    "learning_certificate": {"download_url", "name"},
    "learning_program_certificate": {"url"},
    "learning_user_notification": {"context"},
    "learning_discussion_thread": {"body", "title"},
    "learning_course_notification": {"content_context"},
    "learning_ora_submission": {"anonymous_user_id"},
    "learning_ccx_course_passing_status": {"course__coach_email"},
    "learning_verification_attempt": {"name"},
    "learning_external_grader_score": {"user_id"},
    "learning_lti_provider_launch": {"launch_params__user_id", "launch_params__extra_params"},
    "analytics_tracking_log": {"data", "context"},
}
PERSONAL_CHILD_TABLES = {
    "learning_ora_submission__answer__parts",
    "learning_ora_submission__answer__file_keys",
    "learning_ora_submission__answer__file_descriptions",
    "learning_ora_submission__answer__file_names",
    "learning_ora_submission__answer__file_urls",
}


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.name)
def test_personal_columns(model: TableModel) -> None:
    personal = {c.name for c in model.columns if c.personal}
    pii = {c.name for c in model.columns if "pii" in c.path}
    assert pii <= personal
    assert personal - pii == PERSONAL.get(model.name, set()) - pii
    for child in model.children:
        (value_or_first, *_) = child.columns
        expected = child.name in PERSONAL_CHILD_TABLES
        assert value_or_first.personal is expected, child.name


def test_numeric_user_ids_are_not_personal() -> None:
    for model in MODELS:
        for column in model.columns:
            if column.user_id:
                assert not column.personal, (model.name, column.name)


# --- conversions ----------------------------------------------------------------------------------


def _tracking(data: str, context: str = "{}") -> dict[str, Any]:
    spec = catalog.spec_for("org.openedx.analytics.tracking.event.emitted.v1")
    log = events.TrackingLogData("problem_check", datetime(2024, 1, 1, tzinfo=UTC), data, context)
    return flatten.flatten(spec, log, EVENT_ID).row


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ('{"a": [1, 2.5, null]}', {"a": [1, 2.5, None]}),
        ("[]", []),
        ('"quoted"', "quoted"),
        ("not json", "not json"),
        ("", ""),
        ("NaN", "NaN"),
        ('{"x": Infinity}', '{"x": Infinity}'),
        ("null", None),
    ],
)
def test_tracking_log_json_text(text: str, stored: Any) -> None:
    assert _tracking(text)["data"] == stored


def test_tracking_log_text_too_deep_for_the_parser_is_kept() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    assert _tracking(deep)["data"] == deep


@pytest.mark.parametrize(
    ("value", "utc"),
    [
        (datetime(2024, 5, 1, 12, 0), datetime(2024, 5, 1, 12, 0, tzinfo=UTC)),  # noqa: DTZ001
        (
            datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            datetime(2024, 5, 1, 6, 30, tzinfo=UTC),
        ),
        (datetime(2024, 5, 1, 12, 0, tzinfo=UTC), datetime(2024, 5, 1, 12, 0, tzinfo=UTC)),
    ],
)
def test_datetimes_become_utc(value: datetime, utc: datetime) -> None:
    stored = _tracking_at(value)
    assert stored == utc
    assert stored.tzinfo is UTC


def _tracking_at(timestamp: datetime) -> Any:
    spec = catalog.spec_for("org.openedx.analytics.tracking.event.emitted.v1")
    log = events.TrackingLogData("n", timestamp, "{}", "{}")
    return flatten.flatten(spec, log, EVENT_ID).row["timestamp"]


def _user(user_id: int) -> events.UserData:
    return events.UserData(id=user_id, is_active=True, pii=events.UserPersonalData("u", "e@x"))


def test_missing_nested_record_gives_nulls() -> None:
    spec = catalog.spec_for("org.openedx.learning.course.enrollment.created.v1")
    course = events.CourseData(CourseKey.from_string("course-v1:Org+Num+Run"))
    enrollment = events.CourseEnrollmentData(
        _user(7), course, "audit", True, datetime(2024, 1, 1, tzinfo=UTC)
    )
    row = flatten.flatten(spec, enrollment, EVENT_ID).row
    assert row["user__id"] == 7
    assert row["course__course_key"] == "course-v1:Org+Num+Run"
    created_by = {name: value for name, value in row.items() if name.startswith("created_by__")}
    assert created_by == dict.fromkeys(created_by)
    assert len(created_by) == 5


def test_child_rows_point_at_the_event_and_position() -> None:
    spec = catalog.spec_for("org.openedx.learning.user.notification.requested.v1")
    notification = events.UserNotificationData(
        user_ids=[5, 3, 5],
        notification_type="t",
        content_url="https://x",
        app_name="discussion",
        course_key=CourseKey.from_string("course-v1:Org+Num+Run"),
    )
    flat = flatten.flatten(spec, notification, "evt-9")
    assert flat.children == {
        "learning_user_notification__user_ids": [
            {"event_id": "evt-9", "position": 0, "value": 5},
            {"event_id": "evt-9", "position": 1, "value": 3},
            {"event_id": "evt-9", "position": 2, "value": 5},
        ]
    }


def test_uuid_values_stay_uuid() -> None:
    spec = catalog.spec_for("org.openedx.enterprise.enterprise_group.deleted.v1")
    group_uuid = UUID("12345678-1234-5678-1234-567812345678")
    row = flatten.flatten(spec, events.EnterpriseGroup(group_uuid), EVENT_ID).row
    assert row == {"uuid": group_uuid}


# --- what the model refuses ---------------------------------------------------------------------


@attrs.frozen
class _Item:
    tags: list[str]


@attrs.frozen
class _ListsOfListItems:
    items: list[_Item]


@attrs.frozen
class _SetField:
    values: set[int]


@attrs.frozen
class _Wide:
    first: int
    second: str | int


@pytest.mark.parametrize(
    ("data_class", "message"),
    [
        (_ListsOfListItems, "lists inside list items"),
        (_SetField, "no column type"),
        (_Wide, "only X | None"),
    ],
)
def test_unsupported_attribute_types_are_refused(data_class: type[Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        flatten.table_model(data_class, "test_table")
