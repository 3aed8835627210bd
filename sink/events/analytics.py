"""Payload classes of the ``analytics`` subdomain (``org.openedx.analytics.*`` events).

Mirrors ``openedx_events.analytics.data`` (release 11.2.0) field for field; see
:mod:`sink.events.learning` for the conventions.
"""

from datetime import datetime

import attrs


@attrs.frozen
class TrackingLogData:
    """One tracking-log event, as emitted to the event bus.

    ``data`` and ``context`` are JSON documents carried as *text*; they are kept as sent.

    Attributes:
        name: Event name.
        timestamp: When the event happened.
        data: Event-specific data, as JSON text.
        context: Request and course context, as JSON text.
    """

    name: str
    timestamp: datetime
    data: str
    context: str
