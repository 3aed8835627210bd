"""Shortening of long column and table names (``/work/shared/notes/warehouse-naming.md``)."""

from __future__ import annotations

import json
import random
import re

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from sink import events, flatten, naming
from sink.cli import cli

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
TABLE = "enterprise_learner_credit_course_enrollment"
PREFIX = ("enterprise_course_enrollment", "enterprise_customer_user")

#: The five paths of the naming note, and what they are called.
LONG_PATHS = {
    (*PREFIX, "enterprise_customer_uuid"): "ece__ecu__enterprise_customer_uuid",
    (*PREFIX, "invite_key"): "ece__ecu__invite_key",
    (*PREFIX, "is_relinkable"): "ece__ecu__is_relinkable",
    (*PREFIX, "modified"): "ece__ecu__modified",
    (*PREFIX, "should_inactivate_other_customers"): "ece__ecu__should_inactivate_other_customers",
}


def _model() -> flatten.TableModel:
    return flatten.table_model(events.LearnerCreditEnterpriseCourseEnrollment, TABLE)


def test_the_five_long_paths_of_the_note() -> None:
    columns = {column.path: column for column in _model().columns}
    for path, name in LONG_PATHS.items():
        assert len(naming.full_name(path)) > 63
        assert columns[path].name == name
        assert columns[path].shortened
        assert columns[path].full_name == naming.full_name(path)


def test_siblings_share_one_abbreviated_prefix() -> None:
    siblings = [c for c in _model().columns if c.path[:2] == PREFIX and len(c.path) == 3]
    assert len(siblings) == 10
    for column in siblings:
        assert column.name == f"ece__ecu__{column.path[-1]}"


def test_other_records_keep_their_full_names() -> None:
    for column in _model().columns:
        if column.path[:2] != PREFIX:
            assert column.name == naming.full_name(column.path)


def test_only_that_record_is_shortened_in_the_catalog() -> None:
    shortened = [
        (model.name, column.name)
        for model in flatten.all_models()
        for column in model.columns
        if column.shortened
    ]
    assert {table for table, _ in shortened} == {TABLE}
    assert len(shortened) == 10
    for model in flatten.all_models():
        for child in model.children:
            assert child.name == child.full_name


def test_short_paths_are_joined_unchanged() -> None:
    paths = [("user", "pii", "email"), ("mode",), ("course", "course_key")]
    assert naming.shorten(paths) == {
        ("user", "pii", "email"): "user__pii__email",
        ("mode",): "mode",
        ("course", "course_key"): "course__course_key",
    }


@pytest.mark.parametrize(
    ("segment", "letters"),
    [
        ("enterprise_course_enrollment", "ece"),
        ("user", "u"),
        ("_private_thing_", "pt"),
        ("a__b", "ab"),
        ("_", "_"),
    ],
)
def test_initials(segment: str, letters: str) -> None:
    assert naming.initials(segment) == letters


def test_a_leaf_too_long_by_itself_is_cut_with_a_hash() -> None:
    leaf = "x" * 70
    names = naming.shorten([("record", leaf), ("record", "short")])
    name = names[("record", leaf)]
    assert len(name) == 63
    assert re.fullmatch(r"r__x{51}_[0-9a-f]{8}", name)
    assert names[("record", "short")] == "r__short"


def test_a_single_segment_too_long_is_cut_with_a_hash() -> None:
    (name,) = naming.shorten([("y" * 80,)]).values()
    assert len(name) == 63
    assert name.startswith("y" * 54)


def test_collision_with_a_full_name_is_disambiguated() -> None:
    leaf = "abcdefghijklmno"
    abbreviated, natural = ("alpha_beta", leaf), ("ab", leaf)
    names = naming.shorten([abbreviated, natural], limit=25)
    assert names[natural] == f"ab__{leaf}"
    assert re.fullmatch(rf"ab_[0-9a-f]{{4}}__{leaf}", names[abbreviated])


def test_shortened_name_never_lands_on_a_reserved_name() -> None:
    names = naming.shorten([("alpha_beta", "x" * 20)], reserved={"ab__" + "x" * 20}, limit=25)
    assert names[("alpha_beta", "x" * 20)] != "ab__" + "x" * 20


def test_a_reserved_full_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="event_id"):
        naming.shorten([("event_id",)], reserved={"event_id"})


@pytest.mark.parametrize("paths", [[()], [("a",), ("a",)]])
def test_bad_paths_are_errors(paths: list[tuple[str, ...]]) -> None:
    with pytest.raises(ValueError, match="path"):
        naming.shorten(paths)


def test_constraint_names_fit() -> None:
    long = naming.constraint_name("ix", TABLE, "ece__ecu__should_inactivate_other_customers")
    assert len(long) == 63
    assert long.startswith(f"ix_{TABLE}_")
    assert naming.constraint_name("pk", "sink_offset") == "pk_sink_offset"


_segments = st.from_regex(r"[a-e]{1,8}(_[a-e]{1,8}){0,3}", fullmatch=True)
_paths = st.lists(st.lists(_segments, min_size=1, max_size=4).map(tuple), max_size=25, unique=True)


@given(paths=_paths, limit=st.integers(20, 63))
def test_names_are_unique_short_and_order_independent(
    paths: list[tuple[str, ...]], limit: int
) -> None:
    names = naming.shorten(paths, limit=limit)
    assert list(names) == paths
    assert len(set(names.values())) == len(paths)
    for path, name in names.items():
        assert len(name) <= limit
        assert IDENTIFIER.match(name)
        if len(naming.full_name(path)) <= limit and path[:-1] not in {
            p[:-1] for p in paths if len(naming.full_name(p)) > limit
        }:
            assert name == naming.full_name(path)
    shuffled = list(paths)
    random.Random(0).shuffle(shuffled)
    assert naming.shorten(shuffled, limit=limit) == names


@given(paths=_paths)
def test_abbreviated_names_keep_the_leaf_when_it_fits(paths: list[tuple[str, ...]]) -> None:
    names = naming.shorten(paths, limit=40)
    for path, name in naming.shortened(names).items():
        prefix = "__".join(naming.initials(s) for s in path[:-1])
        if len(prefix) + 2 + len(path[-1]) + 5 <= 40:
            assert name.endswith(f"__{path[-1]}")


def test_sink_events_columns_lists_full_paths() -> None:
    result = CliRunner().invoke(cli, ["events", "--columns", "--format", "json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    ours = {row["column"]: row for row in listed if row["table"] == TABLE}
    for path, name in LONG_PATHS.items():
        assert ours[name]["full_path"] == naming.full_name(path)
    email = next(
        row
        for row in listed
        if row["table"] == "learning_course_enrollment" and row["column"] == "user__pii__email"
    )
    assert email["personal"] is True


def test_sink_events_columns_table() -> None:
    result = CliRunner().invoke(cli, ["events", "--columns"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:5] == ["TABLE", "COLUMN", "TYPE", "NULL", "PERSONAL"]
    assert any(
        "ece__ecu__is_relinkable" in line and "enterprise_course_enrollment__" in line
        for line in lines
    )
    assert any(line.startswith("learning_ora_submission__answer__file_names ") for line in lines)
