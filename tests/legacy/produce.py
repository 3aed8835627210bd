"""Random events written by the installed openedx-events, as JSON lines (for older releases).

Runs inside ``.venv-oe10`` (``make venv-oe10``: Python 3.11, where pip's newest openedx-events is
10.5.0), from the repository root::

    .venv-oe10/bin/python -m tests.legacy.produce --count 20

The events come from :mod:`tests.producer`, i.e. from that release's own payload classes,
``AvroSignalSerializer`` and ``serialize_event_data_to_bytes``. The first line summarises the
release; one line per event follows::

    {"kind": "summary", "openedx_events": "10.5.0", "python": "3.11.7",
     "serializable": [event types], "unserializable": {event type: why}}
    {"kind": "event", "event_type": ..., "payload": base64 schemaless Avro,
     "schema": the schema string the producer registers, "headers": [[name, text], ...],
     "comparable": the original object as `jsonable(comparable(...))`}

The consumer side (``tests/integration/test_legacy_producer.py``) frames the payloads with the ids
the registry gives the schemas and compares what it decodes with ``comparable``.
"""

from __future__ import annotations

import argparse
import base64
import json
import platform
import sys
from datetime import datetime
from typing import Any

import openedx_events
from openedx_events.event_bus.avro.serializer import AvroSignalSerializer

from sink import catalog
from tests import producer


def jsonable(plain: Any) -> Any:
    """:func:`tests.producer.comparable` output as JSON values (datetimes as ISO 8601 text).

    ``comparable`` already makes keys and UUIDs text and datetimes aware UTC instants, so equal
    instants give equal text.
    """
    if isinstance(plain, datetime):
        return plain.isoformat()
    if isinstance(plain, dict):
        return {key: jsonable(value) for key, value in plain.items()}
    if isinstance(plain, list):
        return [jsonable(value) for value in plain]
    return plain


def _why_unserializable(event_type: str) -> str:
    try:
        AvroSignalSerializer(producer.upstream_signal(event_type))
    except Exception as error:  # noqa: BLE001 - upstream raises plain Exception/TypeError
        return f"{type(error).__name__}: {error}"
    return "serializable"


def summary() -> dict[str, Any]:
    """Which of the catalog's event types this openedx-events release can serialize."""
    serializable = producer.serializable_event_types()
    return {
        "kind": "summary",
        "openedx_events": openedx_events.__version__,
        "python": platform.python_version(),
        "serializable": list(serializable),
        "unserializable": {
            event_type: _why_unserializable(event_type)
            for event_type in catalog.event_types()
            if event_type not in serializable
        },
    }


def events(event_type: str, count: int) -> list[dict[str, Any]]:
    """Up to ``count`` random events of ``event_type`` as JSON-encodable lines."""
    schema = producer.schema_string(event_type)
    lines = []
    for data in producer.samples(producer.upstream_data(event_type), count):
        lines.append(
            {
                "kind": "event",
                "event_type": event_type,
                "payload": base64.b64encode(producer.payload(event_type, data)).decode(),
                "schema": schema,
                "headers": [[name, value.decode()] for name, value in producer.headers(event_type)],
                "comparable": jsonable(producer.comparable(data)),
            }
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20, help="events per event type")
    args = parser.parse_args(argv)
    out = sys.stdout
    out.write(json.dumps(summary()) + "\n")
    for event_type in producer.serializable_event_types():
        for line in events(event_type, args.count):
            out.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
