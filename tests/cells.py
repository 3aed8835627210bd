"""Comparing values read back from a database with the values the sink wrote."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def comparable(value: Any) -> Any:
    """Datetimes as aware UTC (SQLite returns naive UTC, DuckDB local time); JSON numbers as floats.

    PostgreSQL's jsonb keeps a number's decimal value but prints large ones without an exponent
    (``-2e278`` comes back as a 279-digit integer), so numbers inside JSON compare as floats.
    """
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    if isinstance(value, dict | list):
        return _json_numbers_as_floats(value)
    return value


def _json_numbers_as_floats(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _json_numbers_as_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_numbers_as_floats(item) for item in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def holds_nul(value: Any) -> bool:
    """Whether a value holds a NUL character in some text, JSON keys included (PostgreSQL cannot
    store those)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(key) or holds_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(holds_nul(item) for item in value)
    return False
