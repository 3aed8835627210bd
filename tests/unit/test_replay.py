"""``sink replay``: planning positions from a time or an offset, and applying them.

Kafka is a fake here (:class:`FakeKafka`); the warehouse is a real SQLite one. The e2e tests
(``tests/integration/test_operations_e2e.py``) run the same against real Kafka and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest
from click.testing import CliRunner

from sink import replay
from sink.batch import Batch
from sink.cli import cli
from sink.config import Settings
from sink.errors import ConfigError
from sink.replay import GroupActiveError, Move, PartitionState
from sink.schema_check import migrate
from sink.writer import Warehouse

GROUP = "replay-test"
WHEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)

Partition = tuple[str, int]


@attrs.define
class FakeKafka:
    """Topics with watermarks, offsets by time, members and commits, all in memory."""

    watermarks_of: dict[Partition, tuple[int, int]]
    at_time: dict[Partition, int | None] = attrs.field(factory=dict)
    members: list[str] = attrs.field(factory=list)
    committed: dict[Partition, int] = attrs.field(factory=dict)
    refuse_commit: Exception | None = None
    asked_times: list[datetime] = attrs.field(factory=list)

    def topics(self) -> list[str]:
        return sorted({topic for topic, _ in self.watermarks_of} | {"other"})

    def partitions(self, topic: str) -> list[int]:
        return sorted(p for t, p in self.watermarks_of if t == topic)

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        return self.watermarks_of[(topic, partition)]

    def offsets_for_time(
        self, partitions: Sequence[Partition], when: datetime
    ) -> dict[Partition, int | None]:
        self.asked_times.append(when)
        return {key: self.at_time.get(key) for key in partitions}

    def active_members(self) -> list[str]:
        return list(self.members)

    def commit(self, positions: dict[Partition, int]) -> None:
        if self.refuse_commit is not None:
            raise self.refuse_commit
        self.committed.update(positions)

    def close(self) -> None:
        pass


@pytest.fixture
def url(tmp_path: Path) -> str:
    database = f"sqlite:///{tmp_path / 'sink.db'}"
    migrate(database)
    return database


@pytest.fixture
def warehouse(url: str) -> Iterator[Warehouse]:
    made = Warehouse(url)
    yield made
    made.close()


def settings(*topics: str) -> Settings:
    return Settings(topics=topics, group_id=GROUP)


def state(stored: int | None, low: int = 0, high: int = 100, partition: int = 0) -> PartitionState:
    return PartitionState("t", partition, stored, low, high)


# --- pure planning -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-04T05:06:07Z", WHEN),
        ("2026-03-04T05:06:07+00:00", WHEN),
        ("2026-03-04T07:06:07+02:00", WHEN),
        ("2026-03-04T05:06:07", WHEN),  # no zone: UTC
        ("2026-03-04", datetime(2026, 3, 4, tzinfo=UTC)),
    ],
)
def test_times_are_iso_8601_in_utc(text: str, expected: datetime) -> None:
    parsed = replay.parse_time(text)
    assert parsed == expected
    assert parsed.tzinfo is not None
    assert parsed.utcoffset() == timedelta(0)


def test_a_time_that_is_not_iso_8601_is_refused() -> None:
    with pytest.raises(ValueError, match="Invalid isoformat"):
        replay.parse_time("yesterday")


def test_topics_by_name_and_pattern() -> None:
    available = ["p-a", "p-b", "q", "other"]
    assert replay.matching_topics(["q", "^p-.*"], available) == ["p-a", "p-b", "q"]
    assert replay.choose_topics(["q", "^p-.*"], available, ()) == ["p-a", "p-b", "q"]
    assert replay.choose_topics(["q", "^p-.*"], available, ["p-b"]) == ["p-b"]
    with pytest.raises(ConfigError, match="--topic other: not a topic of the group"):
        replay.choose_topics(["q", "^p-.*"], available, ["other"])
    with pytest.raises(ConfigError, match="missing of SINK_TOPICS do not exist"):
        replay.choose_topics(["missing"], available, ())
    with pytest.raises(ConfigError, match="SINK_TOPICS is empty"):
        replay.choose_topics([], available, ())


def test_an_offset_is_clamped_to_the_watermarks() -> None:
    low, inside, high, fresh = replay.moves_to_offset(
        [state(50, low=10), state(50, partition=1), state(50, high=30, partition=2),
         state(None, low=5, partition=3)],
        0,
    )  # fmt: skip
    assert (low.target, low.note) == (10, "offset 0 is outside [10, 100]")
    assert (inside.target, inside.note) == (0, "")
    assert inside.change() == "rewind: re-reads 50 message(s)"
    assert high.target == 0
    assert (fresh.target, fresh.changed) == (5, False)  # never stored: starts there anyway


def test_an_explicit_offset_may_move_forward_with_a_warning() -> None:
    forward, back, same = replay.moves_to_offset(
        [state(10), state(90, partition=1), state(40, partition=2)], 40
    )
    assert forward.forward
    assert forward.change() == "FORWARD: skips 30 message(s)"
    assert not back.forward
    assert not same.changed
    assert replay.forward_warnings([forward, back, same]) == [
        "warning: t[0] moves forward from 10 to 40: the 30 message(s) in between are not read"
        " (those not stored yet never will be)"
    ]
    assert replay.new_positions([forward, back, same]) == {("t", 0): 40, ("t", 1): 40}


def test_a_time_only_rewinds() -> None:
    states = [
        state(80),  # time's offset 30 < 80: rewind
        state(20, partition=1),  # time's offset 30 > stored 20: keep 20
        state(None, low=5, partition=2),  # never stored: keeps starting at the beginning
        state(70, partition=3),  # no message that late: the end (100), so unchanged
    ]
    found: dict[Partition, int | None] = {("t", 0): 30, ("t", 1): 30, ("t", 2): 30, ("t", 3): None}
    rewind, earlier, fresh, late = replay.moves_to_time(states, found)
    assert (rewind.target, rewind.changed, rewind.note) == (30, True, "")
    assert (earlier.target, earlier.changed) == (20, False)
    assert earlier.note == "stored position is earlier than 30"
    assert (fresh.target, fresh.changed) == (5, False)
    assert (late.target, late.changed) == (70, False)
    assert replay.new_positions([rewind, earlier, fresh, late]) == {("t", 0): 30}
    assert not replay.forward_warnings([rewind, earlier, fresh, late])


def test_the_plan_is_a_table() -> None:
    moves = [Move(state(80), 30), Move(state(None, low=5, partition=1), 5)]
    header, first, second = replay.plan_lines(moves)
    assert header.split() == ["TOPIC", "PARTITION", "STORED", "NEW", "LOW", "HIGH", "CHANGE"]
    assert first.split() == ["t", "0", "80", "30", "0", "100", "rewind:", "re-reads", "50",
                             "message(s)"]  # fmt: skip
    assert second.split() == ["t", "1", "-", "5", "5", "100", "unchanged"]


# --- planning and applying against a warehouse ---------------------------------------------------


def test_plan_reads_stored_positions_and_watermarks(warehouse: Warehouse) -> None:
    kafka = FakeKafka({("a", 0): (0, 50), ("a", 1): (10, 60), ("b", 0): (0, 5)})
    kafka.at_time = {("a", 0): 20, ("a", 1): 15}
    warehouse.write(Batch(positions={("a", 0): 50, ("a", 1): 60}), GROUP)
    moves = replay.plan(kafka, warehouse, settings("a"), when=WHEN)
    assert [(m.state.key, m.state.stored, m.target) for m in moves] == [
        (("a", 0), 50, 20),
        (("a", 1), 60, 15),
    ]
    assert kafka.asked_times == [WHEN]
    by_offset = replay.plan(kafka, warehouse, settings("^.$"), offset=0, only=["b"])
    assert [(m.state.key, m.target, m.changed) for m in by_offset] == [(("b", 0), 0, False)]
    with pytest.raises(ValueError, match="exactly one"):
        replay.plan(kafka, warehouse, settings("a"))


def test_apply_commits_to_kafka_then_the_database(warehouse: Warehouse) -> None:
    kafka = FakeKafka({("a", 0): (0, 50), ("a", 1): (0, 60)})
    warehouse.write(Batch(positions={("a", 0): 50, ("a", 1): 60}), GROUP)
    moves = replay.plan(kafka, warehouse, settings("a"), offset=40)
    assert replay.apply(moves, kafka, warehouse, GROUP) == 2
    assert kafka.committed == {("a", 0): 40, ("a", 1): 40}
    assert warehouse.positions(GROUP, [("a", 0), ("a", 1)]) == kafka.committed
    assert warehouse.positions("another-group", [("a", 0)]) == {}
    unchanged = replay.plan(kafka, warehouse, settings("a"), offset=40)
    assert replay.apply(unchanged, kafka, warehouse, GROUP) == 0


def test_apply_refuses_while_the_group_has_members(warehouse: Warehouse) -> None:
    kafka = FakeKafka({("a", 0): (0, 50)}, members=["sink-1@host-a"])
    warehouse.write(Batch(positions={("a", 0): 50}), GROUP)
    moves = replay.plan(kafka, warehouse, settings("a"), offset=0)
    with pytest.raises(GroupActiveError, match=r"1 active member\(s\) \(sink-1@host-a\)"):
        replay.apply(moves, kafka, warehouse, GROUP)
    assert kafka.committed == {}
    assert warehouse.positions(GROUP, [("a", 0)]) == {("a", 0): 50}


def test_a_refused_kafka_commit_leaves_the_database_alone(warehouse: Warehouse) -> None:
    refusal = GroupActiveError("Kafka refused the offsets: active members")
    kafka = FakeKafka({("a", 0): (0, 50)}, refuse_commit=refusal)
    warehouse.write(Batch(positions={("a", 0): 50}), GROUP)
    moves = replay.plan(kafka, warehouse, settings("a"), offset=0)
    with pytest.raises(GroupActiveError):
        replay.apply(moves, kafka, warehouse, GROUP)
    assert warehouse.positions(GROUP, [("a", 0)]) == {("a", 0): 50}


# --- the command ---------------------------------------------------------------------------------


@pytest.fixture
def fake_kafka(monkeypatch: pytest.MonkeyPatch, url: str) -> FakeKafka:
    kafka = FakeKafka({("a", 0): (0, 50), ("a", 1): (0, 60)}, at_time={("a", 0): 25})
    monkeypatch.setattr(replay, "KafkaGroup", lambda _settings: kafka)
    for name, value in {
        "SINK_DATABASE_URL": url,
        "SINK_TOPICS": "a",
        "SINK_GROUP_ID": GROUP,
        "SINK_LOG_LEVEL": "error",
    }.items():
        monkeypatch.setenv(name, value)
    return kafka


def invoke(*arguments: str, answer: str | None = None) -> Any:
    return CliRunner().invoke(cli, ["replay", *arguments], input=answer)


def test_the_command_shows_the_plan_and_needs_yes_when_not_interactive(
    fake_kafka: FakeKafka, warehouse: Warehouse
) -> None:
    warehouse.write(Batch(positions={("a", 0): 50, ("a", 1): 60}), GROUP)
    refused = invoke("--from", "2026-03-04T05:06:07Z")
    assert refused.exit_code == 1
    assert f"replay of group {GROUP} from 2026-03-04T05:06:07+00:00:" in refused.output
    assert "rewind: re-reads 25 message(s)" in refused.output
    assert "pass --yes" in refused.output
    assert fake_kafka.committed == {}
    assert warehouse.positions(GROUP, [("a", 0)]) == {("a", 0): 50}

    done = invoke("--from", "2026-03-04T05:06:07Z", "--yes")
    assert done.exit_code == 0, done.output
    assert f"moved 1 position(s) of group {GROUP}" in done.output
    assert warehouse.positions(GROUP, [("a", 0), ("a", 1)]) == {("a", 0): 25, ("a", 1): 60}
    assert fake_kafka.committed == {("a", 0): 25}


def test_the_command_asks_on_a_terminal(
    fake_kafka: FakeKafka, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse.write(Batch(positions={("a", 0): 50, ("a", 1): 60}), GROUP)
    monkeypatch.setattr("sink.cli._interactive", lambda: True)
    declined = invoke("--from-offset", "0", answer="n\n")
    assert declined.exit_code == 1
    assert f"Move 2 position(s) of group {GROUP}? [y/N]: n" in declined.output
    assert "Aborted" in declined.output
    assert fake_kafka.committed == {}
    accepted = invoke("--from-offset", "0", answer="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert fake_kafka.committed == {("a", 0): 0, ("a", 1): 0}


def test_the_command_refuses_while_the_group_runs(
    fake_kafka: FakeKafka, warehouse: Warehouse
) -> None:
    fake_kafka.members = ["sink@host"]
    warehouse.write(Batch(positions={("a", 0): 50}), GROUP)
    result = invoke("--from-offset", "0", "--yes")
    assert result.exit_code != 0
    assert isinstance(result.exception, GroupActiveError)
    assert warehouse.positions(GROUP, [("a", 0)]) == {("a", 0): 50}


def test_the_command_warns_about_forward_moves_and_says_when_nothing_changes(
    fake_kafka: FakeKafka, warehouse: Warehouse
) -> None:
    warehouse.write(Batch(positions={("a", 0): 10, ("a", 1): 60}), GROUP)
    result = invoke("--from-offset", "20", "--topic", "a", "--yes")
    assert result.exit_code == 0, result.output
    assert "warning: a[0] moves forward from 10 to 20" in result.output
    again = invoke("--from-offset", "20", "--yes")
    assert "nothing to change" in again.output
    later = invoke("--from", "2999-01-01T00:00:00+01:00", "--yes")  # no message that late
    assert "nothing to change" in later.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((), "give one of --from ISO_TIME or --from-offset N"),
        (("--from", "x", "--from-offset", "1"), "give one of"),
        (("--from", "last tuesday"), "is not an ISO 8601 time"),
        (("--from-offset", "-1"), "-1 is not in the range x>=0"),
    ],
)
def test_the_command_checks_its_options(
    fake_kafka: FakeKafka, arguments: tuple[str, ...], message: str
) -> None:
    result = invoke(*arguments)
    assert result.exit_code == 2
    assert message in result.output


def test_a_time_zone_other_than_utc_is_converted() -> None:
    local = datetime(2026, 3, 4, 6, 6, 7, tzinfo=timezone(timedelta(hours=1)))
    assert replay.parse_time(local.isoformat()) == WHEN
