"""Deterministic identifiers for the demo traffic: event ids, UUIDs and MongoDB-style object ids.

Everything is drawn from a seeded :class:`random.Random`, so the same seed gives the same ids.
Event ids are time-based UUIDs (version 1) like the ones openedx-events makes with
:func:`uuid.uuid1`: the 60-bit timestamp is the event's time, and the node and clock sequence are
fixed per producing host.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from typing import Final

#: The start of the UUID version 1 clock (the Gregorian reform), in UTC.
_UUID_EPOCH: Final = datetime(1582, 10, 15, tzinfo=UTC)
#: The multicast bit marks a node that is not a real MAC address, as :func:`uuid.uuid1` does.
_MULTICAST: Final = 1 << 40


def uuid1_at(moment: datetime, node: int, clock_seq: int) -> uuid.UUID:
    """The version 1 UUID of ``moment`` (aware) made on host ``node`` with ``clock_seq``.

    Two calls give the same UUID only for the same instant, node and clock sequence.
    """
    delta = moment - _UUID_EPOCH
    ticks = (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10
    fields = (
        ticks & 0xFFFFFFFF,
        (ticks >> 32) & 0xFFFF,
        (ticks >> 48) & 0x0FFF,
        (clock_seq >> 8) & 0x3F,
        clock_seq & 0xFF,
        node,
    )
    return uuid.UUID(fields=fields, version=1)


def random_node(rng: random.Random) -> int:
    """A random 48-bit node with the multicast bit set (not a real MAC address)."""
    return rng.getrandbits(48) | _MULTICAST


def random_uuid(rng: random.Random) -> uuid.UUID:
    """A version 4 UUID drawn from ``rng``."""
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def object_id(rng: random.Random) -> str:
    """A 24-digit hex id, like the MongoDB ObjectIds of forum posts."""
    return f"{rng.getrandbits(96):024x}"
