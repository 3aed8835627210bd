"""openedx-event-sink: Open edX event-bus topics into a SQL warehouse, exactly once."""

__version__ = "0.1.0"
