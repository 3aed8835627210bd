"""Rewinding the consumer group: ``sink replay --from <ISO time>`` or ``--from-offset N``.

The plan, per partition of the group's topics (``SINK_TOPICS``, patterns resolved against the
cluster's topics, optionally narrowed with ``--topic``):

* ``--from TIME``: the first offset whose message timestamp is at or after TIME (Kafka's
  ``offsets_for_times``; the end of the partition when there is none). **Rewind only**: a
  partition whose stored position is already earlier keeps it, and a partition never stored keeps
  starting at the beginning.
* ``--from-offset N``: offset N, clamped to the partition's [low, high] watermarks. This is the
  one way to move a position *forward* (the messages skipped are never stored); each such move is
  warned about.

The current position of a partition is the one in ``sink_offset`` (the database is the source of
truth; without a stored position the sink starts at the beginning). Applying the plan writes the
new positions in **one database transaction** and commits the same offsets to Kafka for the group,
so that lag tools agree. Re-reading is harmless: writes are idempotent by ``event_id``, so events
stored already are skipped and the ones missing are stored.

**The group must be stopped** (no ``sink run`` of the group running), and the replay refuses to
apply the plan while the group has active members, for two reasons:

1. a running sink only seeks to the stored positions when partitions are assigned to it; until
   then it keeps reading from where it is and its next batch overwrites the rewound positions, so
   a replay under a running sink would be undone, silently and partly;
2. Kafka refuses offset commits from outside the group while the group has members (as
   ``kafka-consumer-groups --reset-offsets`` does).

The Kafka commit goes first and doubles as the last check: if a member joined in the meantime,
Kafka refuses it and nothing is changed. The database transaction follows. (Should it fail, Kafka
shows the new offsets but the sink still resumes from the database positions: run the replay
again.) Then start the sink: on assignment it seeks to the new positions.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import attrs
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from sink.batch import Batch
from sink.config import Settings
from sink.daemon import consumer_config
from sink.errors import ConfigError, SinkError

Partition = tuple[str, int]

KAFKA_TIMEOUT_S: Final = 30.0
#: Kafka errors of a commit from outside a group that has members.
GROUP_ACTIVE_CODES: Final = frozenset(
    {
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.REBALANCE_IN_PROGRESS,
    }
)


class ReplayError(SinkError):
    """The replay cannot be done as asked (group active, Kafka refused, unknown topic)."""


class GroupActiveError(ReplayError):
    """The consumer group has active members: stop every ``sink run`` of the group first."""


@attrs.frozen
class PartitionState:
    """What is known of one partition before the replay.

    Attributes:
        topic: Topic name.
        partition: Partition number.
        stored: The group's position in ``sink_offset``; None when never stored.
        low: First offset still in the partition.
        high: Offset the next message will get (the end).
    """

    topic: str
    partition: int
    stored: int | None
    low: int
    high: int

    @property
    def key(self) -> Partition:
        return (self.topic, self.partition)

    @property
    def current(self) -> int:
        """Where the sink resumes: the stored position, else the beginning."""
        return self.low if self.stored is None else self.stored


@attrs.frozen
class Move:
    """The new position of one partition.

    Attributes:
        state: The partition before the replay.
        target: Its new position (next offset to read).
        note: Why the target differs from what was asked, if it does.
    """

    state: PartitionState
    target: int
    note: str = ""

    @property
    def changed(self) -> bool:
        return self.target != self.state.current

    @property
    def forward(self) -> bool:
        """Whether messages never stored are skipped."""
        return self.target > self.state.current

    def change(self) -> str:
        """What the move does, in words."""
        if not self.changed:
            return "unchanged"
        distance = abs(self.target - self.state.current)
        if self.forward:
            return f"FORWARD: skips {distance} message(s)"
        return f"rewind: re-reads {distance} message(s)"


# --- planning (pure) -----------------------------------------------------------------------------


def parse_time(text: str) -> datetime:
    """An ISO 8601 time as an aware UTC datetime; a time without zone is taken as UTC.

    Raises:
        ValueError: ``text`` is not an ISO 8601 time.
    """
    parsed = datetime.fromisoformat(text.strip())
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def matching_topics(wanted: Sequence[str], available: Iterable[str]) -> list[str]:
    """The available topics the group consumes: named ones, and those matching ``^patterns``."""
    names = {topic for topic in wanted if not topic.startswith("^")}
    patterns = [re.compile(topic) for topic in wanted if topic.startswith("^")]
    return sorted(
        topic
        for topic in available
        if topic in names or any(pattern.match(topic) for pattern in patterns)
    )


def choose_topics(
    wanted: Sequence[str], available: Iterable[str], only: Sequence[str]
) -> list[str]:
    """The topics to replay: the group's existing topics, narrowed to ``only`` when given.

    Raises:
        ConfigError: The group has no topic, a named topic does not exist, or a topic of ``only``
            is not one of the group's.
    """
    if not wanted:
        raise ConfigError("SINK_TOPICS is empty: name the group's topics (or ^patterns)")
    available = set(available)
    missing = [t for t in wanted if not t.startswith("^") and t not in available]
    if missing:
        raise ConfigError(f"topic(s) {', '.join(missing)} of SINK_TOPICS do not exist")
    topics = matching_topics(wanted, available)
    if not only:
        return topics
    foreign = [topic for topic in only if topic not in topics]
    if foreign:
        raise ConfigError(
            f"--topic {', '.join(foreign)}: not a topic of the group (its topics: "
            f"{', '.join(topics) or 'none'})"
        )
    return [topic for topic in topics if topic in set(only)]


def clamp(offset: int, low: int, high: int) -> int:
    """``offset`` within [low, high]."""
    return max(low, min(offset, high))


def moves_to_offset(states: Sequence[PartitionState], offset: int) -> list[Move]:
    """``--from-offset``: every partition to ``offset``, clamped to its watermarks."""
    moves = []
    for state in states:
        target = clamp(offset, state.low, state.high)
        note = "" if target == offset else f"offset {offset} is outside [{state.low}, {state.high}]"
        moves.append(Move(state, target, note))
    return moves


def moves_to_time(
    states: Sequence[PartitionState], found: dict[Partition, int | None]
) -> list[Move]:
    """``--from TIME``: every partition to the offset found for the time, never forward.

    Args:
        states: The partitions.
        found: Per partition, the first offset at or after the time; None when the partition
            has no message that late (its end is taken).
    """
    moves = []
    for state in states:
        offset = found.get(state.key)
        at_time = state.high if offset is None or offset < 0 else offset
        target = min(at_time, state.current)
        note = "" if target == at_time else f"stored position is earlier than {at_time}"
        moves.append(Move(state, target, note))
    return moves


def new_positions(moves: Iterable[Move]) -> dict[Partition, int]:
    """The positions to write: those of the partitions that move."""
    return {move.state.key: move.target for move in moves if move.changed}


def plan_lines(moves: Sequence[Move]) -> list[str]:
    """The table of stored → new positions shown before asking for confirmation."""
    rows = [("TOPIC", "PARTITION", "STORED", "NEW", "LOW", "HIGH", "CHANGE")]
    for move in moves:
        state = move.state
        stored = "-" if state.stored is None else str(state.stored)
        change = move.change() + (f" ({move.note})" if move.note else "")
        rows.append(
            (state.topic, str(state.partition), stored, str(move.target), str(state.low),
             str(state.high), change)
        )  # fmt: skip
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def forward_warnings(moves: Iterable[Move]) -> list[str]:
    """One warning per partition moved forward past its current position."""
    return [
        f"warning: {move.state.topic}[{move.state.partition}] moves forward from "
        f"{move.state.current} to {move.target}: the {move.target - move.state.current} "
        "message(s) in between are not read (those not stored yet never will be)"
        for move in moves
        if move.forward
    ]


# --- Kafka ---------------------------------------------------------------------------------------


class GroupView(Protocol):
    """What the replay needs of Kafka."""

    def topics(self) -> list[str]:
        """Names of the cluster's topics."""

    def partitions(self, topic: str) -> list[int]:
        """Partition numbers of a topic."""

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        """The (low, high) watermark offsets of a partition."""

    def offsets_for_time(
        self, partitions: Sequence[Partition], when: datetime
    ) -> dict[Partition, int | None]:
        """Per partition, the first offset at or after ``when`` (None: no message that late)."""

    def active_members(self) -> list[str]:
        """The group's active members (client id and host of each)."""

    def commit(self, positions: dict[Partition, int]) -> None:
        """Commit these offsets for the group (refused while it has members)."""


class KafkaGroup:
    """The group's view of Kafka: a consumer with the group's id that never subscribes, and an
    admin client (both with the sink's settings, SASL/SSL options included)."""

    def __init__(self, settings: Settings) -> None:
        self.group_id = settings.group_id
        self.consumer = Consumer(consumer_config(settings))
        # The admin client (only asked whether the group has members) gets the consumer's
        # pass-through options too, for SASL/SSL; a Python logger keeps librdkafka from printing
        # a warning for each consumer-only option among them.
        admin_config: dict[str, Any] = {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            **settings.kafka_options,
            "logger": logging.getLogger(f"{__name__}.admin"),
        }
        self.admin = AdminClient(admin_config)
        self._metadata: Any = None

    def close(self) -> None:
        self.consumer.close()

    def _topics_metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            self._metadata = self.consumer.list_topics(timeout=KAFKA_TIMEOUT_S).topics
        return dict(self._metadata)

    def topics(self) -> list[str]:
        return sorted(self._topics_metadata())

    def partitions(self, topic: str) -> list[int]:
        return sorted(self._topics_metadata()[topic].partitions)

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        low, high = self.consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=KAFKA_TIMEOUT_S
        )
        return int(low), int(high)

    def offsets_for_time(
        self, partitions: Sequence[Partition], when: datetime
    ) -> dict[Partition, int | None]:
        millis = int(when.timestamp() * 1000)
        asked = [TopicPartition(topic, partition, millis) for topic, partition in partitions]
        answered = self.consumer.offsets_for_times(asked, timeout=KAFKA_TIMEOUT_S)
        found: dict[Partition, int | None] = {}
        for tp in answered:
            if tp.error is not None:
                raise ReplayError(f"Kafka cannot find offsets by time: {tp.error}")
            found[(tp.topic, tp.partition)] = tp.offset if tp.offset >= 0 else None
        return found

    def active_members(self) -> list[str]:
        future = self.admin.describe_consumer_groups([self.group_id])[self.group_id]
        try:
            description = future.result(timeout=KAFKA_TIMEOUT_S)
        except KafkaException as error:
            if error.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND:
                return []
            raise ReplayError(f"Kafka cannot describe group {self.group_id}: {error}") from None
        return [f"{member.client_id}@{member.host}" for member in description.members]

    def commit(self, positions: dict[Partition, int]) -> None:
        offsets = [TopicPartition(t, p, offset) for (t, p), offset in sorted(positions.items())]
        try:
            committed = self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as error:
            raise _commit_error(error.args[0], self.group_id) from None
        for tp in committed or []:
            if tp.error is not None:
                raise _commit_error(tp.error, self.group_id)


def _commit_error(error: KafkaError, group_id: str) -> ReplayError:
    if error.code() in GROUP_ACTIVE_CODES:
        return GroupActiveError(
            f"Kafka refused the offsets: consumer group {group_id} has active members"
            f" ({error.str()}); stop every `sink run` of the group and try again"
        )
    return ReplayError(f"Kafka refused the offsets of group {group_id}: {error.str()}")


# --- planning and applying against the services --------------------------------------------------


class Positions(Protocol):
    """The warehouse as the replay sees it (:class:`~sink.writer.Warehouse` fits)."""

    def positions(self, group_id: str, partitions: Iterable[Partition]) -> dict[Partition, int]:
        """Stored next offsets of these partitions (absent when never stored)."""

    def write(self, batch: Batch, group_id: str) -> Any:
        """Store a batch (here: positions only) in one transaction."""


def partition_states(
    kafka: GroupView, store: Positions, group_id: str, topics: Sequence[str]
) -> list[PartitionState]:
    """Every partition of ``topics`` with its stored position and watermarks."""
    keys = [(topic, partition) for topic in topics for partition in kafka.partitions(topic)]
    stored = store.positions(group_id, keys)
    return [
        PartitionState(topic, partition, stored.get((topic, partition)),
                       *kafka.watermarks(topic, partition))
        for topic, partition in keys
    ]  # fmt: skip


def plan(
    kafka: GroupView,
    store: Positions,
    settings: Settings,
    *,
    when: datetime | None = None,
    offset: int | None = None,
    only: Sequence[str] = (),
) -> list[Move]:
    """The moves of a replay from ``when`` or from ``offset`` (exactly one of them)."""
    if (when is None) == (offset is None):
        raise ValueError("plan() needs exactly one of `when` and `offset`")
    topics = choose_topics(settings.resolved_topics(), kafka.topics(), only)
    states = partition_states(kafka, store, settings.group_id, topics)
    if offset is not None:
        return moves_to_offset(states, offset)
    if when is None or not states:  # `when` is set (checked above); no partition, no question
        return []
    return moves_to_time(states, kafka.offsets_for_time([state.key for state in states], when))


def ensure_group_stopped(kafka: GroupView, group_id: str) -> None:
    """Raise :class:`GroupActiveError` when the group has active members."""
    members = kafka.active_members()
    if members:
        raise GroupActiveError(
            f"consumer group {group_id} has {len(members)} active member(s) "
            f"({', '.join(sorted(members))}): stop every `sink run` of the group, then replay "
            "(a sink killed without leaving counts until its session times out)"
        )


def apply(moves: Sequence[Move], kafka: GroupView, store: Positions, group_id: str) -> int:
    """Move the group's positions: Kafka commit (refused if the group is active), then the
    database in one transaction. Returns how many partitions moved."""
    positions = new_positions(moves)
    if not positions:
        return 0
    ensure_group_stopped(kafka, group_id)
    kafka.commit(positions)
    store.write(Batch(positions=positions), group_id)
    return len(positions)
