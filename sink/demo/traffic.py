"""Deterministic demo traffic: a coherent story of Open edX events, in time order.

:func:`generate` tells the story of :mod:`sink.demo.story` over a timeline of :data:`DAYS` days:
a fixed cast (:mod:`sink.demo.world`) of five course runs and a population of fake learners sized
by the number of events asked for, with staff and two enterprise customers. The events come out
in time order with strictly increasing times, each with a time-based ``ce_id`` made from the
seed; the same seed, count and start give the same events, byte for byte.

Exactly ``events`` events come out (fewer only when so few are asked that the story has nobody
to browse): the story's own events each day, plus browsing tracking logs filling each day's share
of the budget, in proportion to the sessions expected that day. Cutting the stream after ``events``
keeps it coherent, since whatever an event depends on happened before it.

Who emits what (``service``): ``lms`` for learning and tracking events, ``edx-exams`` for exam
attempts, ``enterprise-subsidy`` for redemptions and ledger transactions; each service runs on two
hosts, each with its own UUID node and clock sequence.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from uuid import UUID

import attrs

from sink.demo.ids import random_node, uuid1_at
from sink.demo.story import EXAMS, LMS, SUBSIDY, Story
from sink.demo.world import World, build_world

#: Days of the timeline.
DAYS: Final = 42
#: Events per learner, tracking logs included: sizes the population.
EVENTS_PER_LEARNER: Final = 80
MIN_LEARNERS: Final = 3
SERVICES: Final = (LMS, EXAMS, SUBSIDY)
HOSTS_PER_SERVICE: Final = 2
_TICK: Final = timedelta(microseconds=1)


@attrs.frozen
class DemoEvent:
    """One event of the demo, before it is put on the wire.

    Attributes:
        event_type: The ``ce_type``.
        time: When it happened, aware UTC (the ``ce_time``).
        event_id: The ``ce_id``, a version 1 UUID of ``time``.
        service: The producing service (``lms``, ``edx-exams``, ``enterprise-subsidy``).
        host: The producing host (the ``sourcehost`` header).
        data: The payload: an instance of the event type's class in :mod:`sink.events`.
    """

    event_type: str
    time: datetime
    event_id: UUID
    service: str
    host: str
    data: Any


def default_start(now: datetime | None = None) -> datetime:
    """The start of a timeline ending at the last midnight (UTC) before ``now`` (default: now).

    Days run from midnight to midnight, so hours of the day look as they would in a deployment.
    """
    now = datetime.now(UTC) if now is None else now.astimezone(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=DAYS)


def generate(seed: int, events: int, start: datetime | None = None) -> Iterator[DemoEvent]:
    """The demo's first ``events`` events of the timeline starting at ``start``, in time order.

    Args:
        seed: Seed of every random choice.
        events: How many events to generate.
        start: Start of the timeline (naive means UTC); default :func:`default_start`.

    Raises:
        ValueError: ``events`` is negative.
    """
    if events < 0:
        raise ValueError(f"events must be >= 0, got {events}")
    start = default_start() if start is None else _utc(start)
    return _Generation(seed, events, start).run()


def learners_for(events: int) -> int:
    """The size of the learner population for ``events`` events."""
    return max(MIN_LEARNERS, round(events / EVENTS_PER_LEARNER))


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@attrs.frozen
class _Host:
    name: str
    node: int
    clock_seq: int


class _Timeline:
    """Collects the story's events and releases them in time order with their ids.

    Implements :class:`sink.demo.story.Outlet`. Events at or after ``end`` are dropped.
    """

    def __init__(self, rng: random.Random, end: datetime, total: int) -> None:
        self.end = end
        self.total = total
        self.released = 0
        self.received = 0
        self._pending: list[tuple[datetime, int, str, str, Any]] = []
        self._last = datetime.min.replace(tzinfo=UTC)
        self._hosts = {
            service: tuple(
                _Host(f"{service}-{index + 1}", random_node(rng), rng.getrandbits(14))
                for index in range(HOSTS_PER_SERVICE)
            )
            for service in SERVICES
        }

    def emit(self, moment: datetime, event_type: str, data: Any, service: str = LMS) -> None:
        """Take one event (see :class:`sink.demo.story.Outlet`)."""
        if moment >= self.end:
            return
        heapq.heappush(self._pending, (moment, self.received, event_type, service, data))
        self.received += 1

    @property
    def pending(self) -> int:
        """Events received and not released yet."""
        return len(self._pending)

    @property
    def remaining(self) -> int:
        """Events still to release to reach the total, beyond those pending."""
        return self.total - self.released - self.pending

    def release(self, until: datetime) -> Iterator[DemoEvent]:
        """The pending events before ``until``, in time order, until the total is reached."""
        while self._pending and self._pending[0][0] < until and self.released < self.total:
            moment, sequence, event_type, service, data = heapq.heappop(self._pending)
            moment = max(moment, self._last + _TICK)  # strictly increasing: unique ids
            self._last = moment
            hosts = self._hosts[service]
            host = hosts[sequence % len(hosts)]
            event_id = uuid1_at(moment, host.node, host.clock_seq)
            self.released += 1
            yield DemoEvent(event_type, moment, event_id, service, host.name, data)


class _Generation:
    """One run of :func:`generate`."""

    def __init__(self, seed: int, events: int, start: datetime) -> None:
        rng = random.Random(seed)  # noqa: S311 - demo data, not security
        self.start = start
        self.world = build_world(rng, learners_for(events), start, DAYS)
        self.timeline = _Timeline(rng, start + timedelta(days=DAYS), events)
        self.story = Story(rng, self.world, self.timeline, start)
        self.weights = _expected_sessions(self.world)

    def run(self) -> Iterator[DemoEvent]:
        timeline = self.timeline
        for day in range(DAYS):
            if timeline.remaining <= 0 and not timeline.pending:
                return
            budget = self._budget(day)
            received = timeline.received
            sessions = self.story.play_day(day)
            self.story.browse(sessions, budget - (timeline.received - received), day)
            yield from timeline.release(self.start + timedelta(days=day + 1))

    def _budget(self, day: int) -> int:
        """Events to generate on ``day``: its share of what remains, by expected sessions."""
        remaining = max(0, self.timeline.remaining)
        later = sum(self.weights[day:])
        if day == DAYS - 1 or later <= 0:
            return remaining
        return round(remaining * self.weights[day] / later)


def _expected_sessions(world: World) -> list[float]:
    """Expected study sessions per day: registration day for sure, then by engagement."""
    weights = [0.0] * DAYS
    for learner in world.learners:
        weights[learner.registration_day] += 1.0
        for day in range(learner.registration_day + 1, DAYS):
            weights[day] += learner.engagement
    return weights
