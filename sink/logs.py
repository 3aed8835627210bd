"""Logging setup: human-readable text or one JSON object per line.

Call sites pass context as ``extra={"topic": ..., "partition": ..., "offset": ..., "ce_id": ...}``;
both formats show it. Never log message payloads, keys or settings values: they may hold personal
data or secrets.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Final

CONTEXT_FIELDS: Final = ("topic", "partition", "offset", "ce_id", "event_type", "error_class")


def _context(record: logging.LogRecord) -> dict[str, object]:
    return {name: getattr(record, name) for name in CONTEXT_FIELDS if hasattr(record, name)}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and context fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_context(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger: message [key=value ...]``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = _context(record)
        if context:
            text += " [" + " ".join(f"{key}={value}" for key, value in context.items()) + "]"
        return text


#: Libraries whose INFO messages are noise for an operator (kept from WARNING up).
QUIET_LIBRARIES: Final = ("httpx", "httpx2", "httpcore")


def configure_logging(log_format: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The registry client's HTTP library logs every request at INFO: one line per schema looked up.
    for chatty in QUIET_LIBRARIES:
        logging.getLogger(chatty).setLevel(max(root.level, logging.WARNING))
