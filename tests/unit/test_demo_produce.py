"""The demo producer's parts that need no services: pacing, the summary, settings, errors."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner
from confluent_kafka.schema_registry.error import SchemaRegistryError

from sink.cli import cli
from sink.config import Settings
from sink.demo.produce import Pacer, RegistryRefusedError, RegistrySchemaIds, Summary, kafka_config
from sink.errors import ConfigError, RegistryAccessError, ServiceUnavailableError
from sink.kafka_errors import raise_if_refused


class FakeClock:
    """A clock that only moves when waited on."""

    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_pacer_spaces_messages_by_the_rate() -> None:
    clock = FakeClock()
    pacer = Pacer(4.0, clock.wait, clock)
    for sent in range(9):
        pacer.pace(sent)
    assert clock.now == pytest.approx(102.0)  # 9 messages at 4/s: the last one due after 2 s
    assert clock.waits == pytest.approx([0.25] * 8)


def test_pacer_does_not_wait_when_behind_schedule_nor_without_a_rate() -> None:
    clock = FakeClock()
    pacer = Pacer(10.0, clock.wait, clock)
    pacer.pace(0)
    clock.now += 5.0  # slow producing: every later message is overdue
    for sent in range(1, 20):
        pacer.pace(sent)
    unpaced = Pacer(None, clock.wait, clock)
    for sent in range(100):
        unpaced.pace(sent)
    assert clock.waits == []


def test_pacer_refuses_a_rate_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="rate must be > 0"):
        Pacer(0.0, print)


def test_summary_is_one_line_with_counts_by_topic_and_type() -> None:
    summary = Summary(
        events=3,
        seconds=1.5,
        per_topic={"analytics": 2, "learning-auth": 1},
        per_type={
            "org.openedx.analytics.tracking.event.emitted.v1": 2,
            "org.openedx.learning.auth.session.login.completed.v1": 1,
        },
        first=datetime(2026, 1, 5, 8, 1, tzinfo=UTC),
        last=datetime(2026, 2, 15, 22, 30, tzinfo=UTC),
    )
    assert summary.line() == (
        "produced 3 events in 1.5 s (2/s) from 2026-01-05 08:01 to 2026-02-15 22:30 UTC;"
        " topics: analytics 2, learning-auth 1;"
        " types: tracking.event.emitted 2, auth.session.login.completed 1"
    )


def test_operator_kafka_options_win_over_the_producer_defaults() -> None:
    settings = Settings(
        kafka_bootstrap_servers="kafka:9092",
        kafka_options={"linger.ms": "5", "security.protocol": "SASL_SSL"},
    )
    config = kafka_config(settings)
    assert config.pop("error_cb") is raise_if_refused  # a refused login raises from poll()
    assert config.pop("logger") is logging.getLogger("sink.kafka")
    assert config == {
        "bootstrap.servers": "kafka:9092",
        "linger.ms": "5",
        "security.protocol": "SASL_SSL",
    }


class FailingRegistry:
    """A registry client answering every registration with ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def register_schema(self, subject: str, schema: Any) -> int:
        raise self.error


@pytest.mark.parametrize(
    ("error", "expected", "hint"),
    [
        (SchemaRegistryError(401, 40101, "unauthorized"), RegistryAccessError, "BASIC_AUTH"),
        (SchemaRegistryError(404, 404, "not found"), RegistryAccessError, "REGISTRY_URL"),
        (SchemaRegistryError(409, 409, "incompatible"), RegistryRefusedError, "TOPIC_PREFIX"),
        (ConnectionError("refused"), ServiceUnavailableError, "REGISTRY_URL"),
    ],
)
def test_registry_failures_become_actionable_sink_errors(
    error: Exception, expected: type[Exception], hint: str
) -> None:
    ids = RegistrySchemaIds(FailingRegistry(error))
    with pytest.raises(expected, match=hint):
        ids.schema_id("analytics-string", '{"type": "string"}')


def test_registered_ids_are_asked_once_per_subject_and_schema() -> None:
    class Registry:
        calls = 0

        def register_schema(self, subject: str, schema: Any) -> int:
            Registry.calls += 1
            return 7

    ids = RegistrySchemaIds(Registry())
    assert [ids.schema_id("a", "s"), ids.schema_id("a", "s"), ids.schema_id("b", "s")] == [7] * 3
    assert Registry.calls == 2
    assert ids.subjects == ["a", "b"]


def test_the_command_needs_a_schema_registry() -> None:
    result = CliRunner().invoke(
        cli, ["demo", "produce", "--events", "5"], env={"SINK_SCHEMA_REGISTRY_URL": ""}
    )
    assert isinstance(result.exception, ConfigError)
    assert "SINK_SCHEMA_REGISTRY_URL" in str(result.exception)


def test_the_command_rejects_a_bad_start() -> None:
    result = CliRunner().invoke(cli, ["demo", "produce", "--events", "5", "--start", "soon"])
    assert result.exit_code == 2
    assert "not an ISO 8601 date" in result.output
