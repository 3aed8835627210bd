"""The event catalog, the payload classes it names, and ``sink events``."""

from __future__ import annotations

import importlib
import json
import re
import typing
from typing import Any

import attrs
import pytest
from click.testing import CliRunner

from sink import catalog, events
from sink.cli import cli
from sink.errors import DecodeError, UnknownEventTypeError

EXPECTED_TABLES = {
    "learning_user",
    "learning_course_enrollment",
    "learning_certificate",
    "learning_program_certificate",
    "learning_cohort",
    "learning_course_discussion_configuration",
    "learning_persistent_course_grade",
    "learning_xblock_skill_verification",
    "learning_user_notification",
    "learning_exam_attempt",
    "learning_course_access_role",
    "learning_discussion_thread",
    "learning_course_notification",
    "learning_ora_submission",
    "learning_course_passing_status",
    "learning_ccx_course_passing_status",
    "learning_badge",
    "learning_verification_attempt",
    "learning_external_grader_score",
    "learning_lti_provider_launch",
    "analytics_tracking_log",
    "enterprise_subsidy_redemption",
    "enterprise_ledger_transaction",
    "enterprise_learner_credit_course_enrollment",
    "enterprise_group",
}

# Where our class deliberately differs from upstream: upstream's default is the class ``dict``
# itself (a bug), ours an empty-dict factory.
KNOWN_DEFAULT_DEVIATIONS = {("CourseDiscussionConfigurationData", "plugin_configuration")}


def test_catalog_has_46_distinct_event_types() -> None:
    types = catalog.event_types()
    assert len(types) == 46
    assert len(set(types)) == 46
    assert [spec.event_type for spec in catalog.all_specs()] == list(types)


def test_spec_for_returns_the_spec() -> None:
    spec = catalog.spec_for("org.openedx.learning.course.enrollment.created.v1")
    assert spec.data_key == "enrollment"
    assert spec.data_class is events.CourseEnrollmentData
    assert spec.table == "learning_course_enrollment"
    assert spec.subdomain == "learning"


def test_unknown_event_type_raises() -> None:
    with pytest.raises(UnknownEventTypeError, match=re.escape("org.openedx.learning.nope.v1")):
        catalog.spec_for("org.openedx.learning.nope.v1")


def test_unknown_event_type_is_a_poison_decode_error() -> None:
    with pytest.raises(DecodeError) as caught:
        catalog.spec_for("")
    assert caught.value.poison


def test_one_table_per_payload_class() -> None:
    table_of: dict[type[Any], set[str]] = {}
    for spec in catalog.all_specs():
        table_of.setdefault(spec.data_class, set()).add(spec.table)
    assert all(len(tables) == 1 for tables in table_of.values())
    tables = [next(iter(t)) for t in table_of.values()]
    assert len(tables) == len(set(tables)) == len(EXPECTED_TABLES)
    assert set(tables) == EXPECTED_TABLES


@pytest.mark.parametrize("spec", catalog.all_specs(), ids=lambda spec: spec.event_type)
def test_table_is_prefixed_by_subdomain(spec: catalog.EventSpec) -> None:
    assert spec.table.startswith(f"{spec.subdomain}_")


# --- agreement with openedx-events itself -----------------------------------------------------


def _upstream_signal(event_type: str) -> Any:
    tooling = pytest.importorskip("openedx_events.tooling")
    for subdomain in ("learning", "analytics", "enterprise"):
        importlib.import_module(f"openedx_events.{subdomain}.signals")
    return tooling.OpenEdxPublicSignal.get_signal_by_type(event_type)


@pytest.mark.parametrize("spec", catalog.all_specs(), ids=lambda spec: spec.event_type)
def test_spec_matches_upstream_signal(spec: catalog.EventSpec) -> None:
    signal = _upstream_signal(spec.event_type)
    assert {key: cls.__name__ for key, cls in signal.init_data.items()} == {
        spec.data_key: spec.data_class.__name__
    }


def _upstream_module(subdomain: str) -> Any:
    pytest.importorskip("openedx_events")
    return importlib.import_module(f"openedx_events.{subdomain}.data")


def _attrs_classes(module: Any) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if isinstance(value, type) and attrs.has(value) and value.__module__ == module.__name__
    }


@pytest.mark.parametrize("subdomain", ["learning", "analytics", "enterprise"])
def test_every_upstream_payload_class_is_mirrored(subdomain: str) -> None:
    ours = importlib.import_module(f"sink.events.{subdomain}")
    assert _attrs_classes(ours) == _attrs_classes(_upstream_module(subdomain))


def _type_shape(python_type: Any) -> Any:
    """A comparable form of a type: attrs classes by name, ``List[X]`` the same as ``list[X]``."""
    if isinstance(python_type, type) and attrs.has(python_type):
        return ("record", python_type.__name__)
    origin = typing.get_origin(python_type)
    if origin in (list, dict):
        return (origin, tuple(_type_shape(arg) for arg in typing.get_args(python_type)))
    return python_type


def _our_type_shape(attribute: attrs.Attribute[Any]) -> Any:
    python_type = attribute.type
    if attribute.default is None:  # ours say `X | None` where upstream says `X`
        (python_type,) = [a for a in typing.get_args(python_type) if a is not type(None)]
    return _type_shape(python_type)


def _default_shape(default: Any) -> Any:
    # attrs' stubs declare `Factory` as an overloaded function; at run time it is the class.
    if isinstance(default, typing.cast("type[Any]", attrs.Factory)):
        return ("factory", default.factory, default.takes_self)
    return ("value", default)


def _compare_fields(ours: type[Any], theirs: type[Any]) -> None:
    our_fields, their_fields = attrs.fields(ours), attrs.fields(theirs)
    assert [f.name for f in our_fields] == [f.name for f in their_fields]
    for mine, upstream in zip(our_fields, their_fields, strict=True):
        assert _our_type_shape(mine) == _type_shape(upstream.type), mine.name
        assert mine.inherited == upstream.inherited, mine.name
        if (ours.__name__, mine.name) in KNOWN_DEFAULT_DEVIATIONS:
            assert upstream.default is dict
            assert _default_shape(mine.default) == ("factory", dict, False)
        else:
            assert _default_shape(mine.default) == _default_shape(upstream.default), mine.name


@pytest.mark.parametrize("name", events.__all__)
def test_class_matches_upstream_field_by_field(name: str) -> None:
    ours = getattr(events, name)
    theirs = getattr(_upstream_module(ours.__module__.rsplit(".", 1)[-1]), name)
    _compare_fields(ours, theirs)
    assert [base.__name__ for base in ours.__mro__[1:]] == [
        base.__name__ for base in theirs.__mro__[1:]
    ]


@pytest.mark.parametrize("name", events.__all__)
def test_class_is_documented(name: str) -> None:
    cls = getattr(events, name)
    assert "Attributes:" in (cls.__doc__ or "")
    for field in attrs.fields(cls):
        assert f"{field.name}:" in cls.__doc__, field.name


# --- sink events -------------------------------------------------------------------------------


def test_cli_events_table() -> None:
    result = CliRunner().invoke(cli, ["events"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["EVENT", "TYPE", "DATA", "CLASS", "TABLE"]
    assert len(lines) == 47
    assert lines[1].split() == [
        "org.openedx.learning.student.registration.completed.v1",
        "UserData",
        "learning_user",
    ]


def test_cli_events_json() -> None:
    result = CliRunner().invoke(cli, ["events", "--format", "json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [row["event_type"] for row in listed] == list(catalog.event_types())
    assert listed[-1] == {
        "event_type": "org.openedx.enterprise.enterprise_group.deleted.v1",
        "data_key": "enterprise_group",
        "data_class": "EnterpriseGroup",
        "table": "enterprise_group",
    }


def test_cli_events_rejects_unknown_format() -> None:
    result = CliRunner().invoke(cli, ["events", "--format", "yaml"])
    assert result.exit_code == 2
