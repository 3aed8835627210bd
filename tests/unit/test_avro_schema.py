"""Avro schema derivation: golden files, reader defaults, rules, and ``sink schemas``."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import attrs
import fastavro
import pytest
from click.testing import CliRunner
from fastavro.utils import generate_one

from sink import catalog
from sink.avro_schema import canonical_schema, reader_schema
from sink.catalog import EventSpec
from sink.cli import cli

REPO = Path(__file__).resolve().parents[2]
DISCUSSIONS = "org.openedx.learning.discussions.configuration.changed.v1"
ALL_SPECS = catalog.all_specs()


def _schemas_dir(version: str) -> Path:
    shared = Path(os.environ.get("SINK_SHARED_DIR") or REPO.parent / "shared")
    directory = shared / "openedx-events-schemas" / version
    if not directory.is_dir():
        pytest.fail(f"golden schemas not found at {directory} (set SINK_SHARED_DIR)")
    return directory


def _golden(event_type: str, version: str = "11.2.0") -> Any:
    return json.loads((_schemas_dir(version) / f"{event_type}.avsc").read_text())


def _golden_event_types(version: str) -> set[str]:
    return {path.name.removesuffix(".avsc") for path in _schemas_dir(version).glob("*.avsc")}


def _without_non_null_defaults(schema: Any) -> Any:
    """``schema`` with every Avro default dropped except the ``null`` ones."""
    if isinstance(schema, list):
        return [_without_non_null_defaults(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {
        key: _without_non_null_defaults(value)
        for key, value in schema.items()
        if not (key == "default" and value is not None)
    }


def _record_fields(schema: Any) -> dict[str, Any]:
    return {field["name"]: field for field in schema["fields"][0]["type"]["fields"]}


# --- golden files ------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda spec: spec.event_type)
def test_canonical_schema_equals_golden(spec: EventSpec) -> None:
    assert canonical_schema(spec) == _golden(spec.event_type)


def test_catalog_covers_exactly_the_golden_event_types() -> None:
    assert set(catalog.event_types()) == _golden_event_types("11.2.0")


@pytest.mark.parametrize("version", ["11.2.0", "10.5.0"])
def test_golden_writers_decode_with_reader_schema(version: str) -> None:
    """A random message written with each golden schema of ``version`` reads back unchanged."""
    for written in sorted(_golden_event_types(version)):
        writer = _golden(written, version)
        record = generate_one(writer)
        decoded = _roundtrip(record, writer, reader_schema(catalog.spec_for(written)))
        assert decoded == record, written


def _roundtrip(record: Any, writer: Any, reader: Any) -> Any:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(writer), record)
    buffer.seek(0)
    return fastavro.schemaless_reader(buffer, fastavro.parse_schema(writer), reader)


# --- reader schema -----------------------------------------------------------------------------


def test_reader_schema_defaults_enabled_for_discussions_configuration() -> None:
    fields = _record_fields(reader_schema(catalog.spec_for(DISCUSSIONS)))
    assert fields["enabled"]["default"] is True
    assert fields["plugin_configuration"]["default"] == {}
    assert fields["contexts"]["default"] == []
    assert "default" not in fields["course_key"]


def test_canonical_schema_has_no_default_for_enabled() -> None:
    assert (
        "default" not in _record_fields(canonical_schema(catalog.spec_for(DISCUSSIONS)))["enabled"]
    )


def test_writer_without_enabled_decodes_as_enabled() -> None:
    spec = catalog.spec_for(DISCUSSIONS)
    writer = json.loads(json.dumps(canonical_schema(spec)))
    payload = writer["fields"][0]["type"]
    payload["fields"] = [f for f in payload["fields"] if f["name"] != "enabled"]
    record = {
        "configuration": {
            "course_key": "course-v1:edX+DemoX+Demo_Course",
            "provider_type": "openedx",
            "enable_in_context": False,
            "enable_graded_units": False,
            "unit_level_visibility": True,
            "plugin_configuration": {},
            "contexts": [],
        }
    }
    decoded = _roundtrip(record, writer, reader_schema(spec))
    assert decoded["configuration"] == {**record["configuration"], "enabled": True}


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda spec: spec.event_type)
def test_reader_schema_only_adds_defaults(spec: EventSpec) -> None:
    assert _without_non_null_defaults(reader_schema(spec)) == canonical_schema(spec)
    fastavro.parse_schema(reader_schema(spec))


def test_schemas_are_cached() -> None:
    spec = catalog.spec_for(DISCUSSIONS)
    assert canonical_schema(spec) is canonical_schema(spec)
    assert reader_schema(spec) is reader_schema(spec)
    assert reader_schema(spec) is not canonical_schema(spec)


# --- derivation rules, on classes of our own ---------------------------------------------------


@attrs.frozen
class _Leaf:
    value: str


@attrs.frozen
class _Tree:
    first: _Leaf
    rest: list[_Leaf] = attrs.field(factory=list)
    maybe: _Leaf | None = None
    label: str = "x"


@attrs.frozen
class _IntKeys:
    counts: dict[int, str]


@attrs.frozen
class _Unsupported:
    tags: set[str]


def _spec(data_class: type[Any]) -> EventSpec:
    return EventSpec("org.example.test.v1", "data", data_class, "test")


def test_repeated_class_is_referenced_by_name() -> None:
    fields = _record_fields(canonical_schema(_spec(_Tree)))
    assert fields["first"]["type"]["name"] == "_Leaf"
    assert fields["rest"]["type"] == {"type": "array", "items": "_Leaf"}
    assert fields["maybe"] == {"name": "maybe", "type": ["null", "_Leaf"], "default": None}


def test_non_none_default_is_required_in_canonical_and_defaulted_in_reader() -> None:
    assert "default" not in _record_fields(canonical_schema(_spec(_Tree)))["label"]
    assert _record_fields(reader_schema(_spec(_Tree)))["label"]["default"] == "x"


@pytest.mark.parametrize("data_class", [_IntKeys, _Unsupported])
def test_unsupported_types_are_rejected(data_class: type[Any]) -> None:
    with pytest.raises(TypeError):
        canonical_schema(_spec(data_class))


# --- sink schemas ------------------------------------------------------------------------------


def test_cli_schemas_one_event_type() -> None:
    result = CliRunner().invoke(cli, ["schemas", DISCUSSIONS])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == _golden(DISCUSSIONS)
    assert result.stdout.startswith('{\n  "')


def test_cli_schemas_all_event_types() -> None:
    result = CliRunner().invoke(cli, ["schemas"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert list(printed) == list(catalog.event_types())
    assert all(printed[s.event_type] == canonical_schema(s) for s in ALL_SPECS)


def test_cli_schemas_unknown_event_type() -> None:
    result = CliRunner().invoke(cli, ["schemas", "org.openedx.learning.nope.v1"])
    assert result.exit_code == 2
    assert "unknown event type 'org.openedx.learning.nope.v1'" in result.stderr
    assert result.stdout == ""
