"""Running the real `sink` command as a subprocess against the local services, for e2e tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import attrs
import sqlalchemy as sa
from confluent_kafka import Consumer, TopicPartition

from tests import producer
from tests.integration.conftest import Services

REPO = Path(__file__).resolve().parents[2]


def database_url(services: Services, schema: str) -> str:
    """The PostgreSQL URL with ``search_path`` set to a test's own schema."""
    return f"{services.database_url}?options=-csearch_path%3D{schema}"


@attrs.frozen
class SinkRunner:
    """Starts `sink` subprocesses configured for one test's topics, group and schema."""

    services: Services
    schema: str
    group_id: str
    topics: tuple[str, ...]
    log_dir: Path

    def environment(self, **overrides: str) -> dict[str, str]:
        environment = {
            key: value for key, value in os.environ.items() if not key.startswith("SINK_")
        }
        environment.update(
            {
                "SINK_KAFKA_BOOTSTRAP_SERVERS": self.services.bootstrap_servers,
                "SINK_SCHEMA_REGISTRY_URL": self.services.registry_url,
                "SINK_DATABASE_URL": database_url(self.services, self.schema),
                "SINK_GROUP_ID": self.group_id,
                "SINK_TOPICS": ",".join(self.topics),
                "SINK_PII": "keep",
                "SINK_METRICS_PORT": "0",
                "SINK_BATCH_MAX_MESSAGES": "500",
                "SINK_BATCH_MAX_SECONDS": "0.5",
                "SINK_LOG_FORMAT": "json",
                # A killed member's partitions move on after 6 s instead of librdkafka's 45 s.
                "SINK_KAFKA_SESSION_TIMEOUT_MS": "6000",
                "SINK_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
            }
        )
        environment.update(overrides)  # a test's own settings win
        return environment

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def command(self, *arguments: str) -> list[str]:
        return [sys.executable, "-m", "sink", *arguments]

    def outcome(self, *arguments: str, timeout: float = 300, **overrides: str) -> tuple[int, str]:
        """Run `sink ARGUMENTS` to completion: its exit status and output (stdout, then stderr)."""
        result = subprocess.run(
            self.command(*arguments),
            env=self.environment(**overrides),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=REPO,
        )
        return result.returncode, result.stdout + result.stderr

    def run(self, *arguments: str, timeout: float = 300, **overrides: str) -> str:
        """Run `sink ARGUMENTS` to completion; fail with its output if it exits non-zero."""
        status, output = self.outcome(*arguments, timeout=timeout, **overrides)
        assert status == 0, f"sink {' '.join(arguments)} exited {status}:\n{output[-4000:]}"
        return output

    def refused(self, *arguments: str, timeout: float = 120, **overrides: str) -> str:
        """Run `sink ARGUMENTS`, which must refuse its settings (status 2, one line, no
        traceback); its output."""
        status, output = self.outcome(*arguments, timeout=timeout, **overrides)
        assert status == 2, f"sink {' '.join(arguments)} exited {status}:\n{output[-3000:]}"
        assert "Traceback" not in output
        return output

    def start(
        self, *arguments: str, name: str = "sink", **overrides: str
    ) -> subprocess.Popen[bytes]:
        """Start `sink run ARGUMENTS` in the background, logging to `log_path(name)`."""
        log = self.log_path(name).open("ab")
        return subprocess.Popen(
            self.command("run", *arguments),
            env=self.environment(**overrides),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )


def kill(process: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGKILL) -> int:
    process.send_signal(sig)
    return process.wait(timeout=60)


def produce_stream(
    services: Services,
    registry: Any,
    topics: tuple[str, ...],
    event_types: list[str],
    count: int,
    samples_per_type: int = 20,
) -> dict[str, producer.Message]:
    """Produce `count` events cycling through event types and topics; return them by ``ce_id``.

    A few random payloads per type are generated once and re-sent: every message still gets its
    own ``ce_id`` (a fresh uuid1), which is what the sink's idempotency is keyed on.
    """
    sender = producer.OpenEdxProducer(services.bootstrap_servers, registry)
    payloads = {
        event_type: producer.samples(producer.upstream_data(event_type), samples_per_type)
        for event_type in event_types
    }
    sent: dict[str, producer.Message] = {}
    for index in range(count):
        event_type = event_types[index % len(event_types)]
        data = payloads[event_type][index // len(event_types) % len(payloads[event_type])]
        topic = topics[index % len(topics)]
        message = sender.send(topic, event_type, data, key=f"k{index % 97}")
        sent[message.event_id] = message
    sender.flush(120)
    return sent


def end_offsets(services: Services, topics: tuple[str, ...]) -> dict[tuple[str, int], int]:
    consumer = Consumer({"bootstrap.servers": services.bootstrap_servers, "group.id": "probe"})
    try:
        metadata = consumer.list_topics(timeout=10)
        ends = {}
        for topic in topics:
            for partition in metadata.topics[topic].partitions:
                _low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=10
                )
                ends[(topic, partition)] = high
        return ends
    finally:
        consumer.close()


def stored_positions(engine: sa.Engine, group_id: str) -> dict[tuple[str, int], int]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                'SELECT topic, "partition", next_offset FROM sink_offset WHERE consumer_group = :g'
            ),
            {"g": group_id},
        )
        return {(topic, partition): offset for topic, partition, offset in rows}


def stored_event_ids(engine: sa.Engine, tables: Iterator[str] | list[str]) -> list[str]:
    """Every stored event id across the given tables (duplicates would show twice)."""
    ids: list[str] = []
    with engine.connect() as connection:
        for table in tables:
            ids += connection.execute(sa.text(f'SELECT event_id FROM "{table}"')).scalars().all()
    return ids


# The local broker's SASL/PLAIN listener and its users (scripts/services.d/).
KAFKA_PROPERTIES = REPO / "scripts" / "services.d" / "kafka-server.properties"
SASL_USER, SASL_PASSWORD = "sink-test", "sink-test-password"  # a super user
NO_ACCESS_USER, NO_ACCESS_PASSWORD = "no-access", "no-access-password"  # no ACLs


class SaslSettings(TypedDict):
    SINK_KAFKA_BOOTSTRAP_SERVERS: str
    SINK_KAFKA_SECURITY_PROTOCOL: str
    SINK_KAFKA_SASL_MECHANISMS: str
    SINK_KAFKA_SASL_USERNAME: str
    SINK_KAFKA_SASL_PASSWORD: str


def sasl_settings(password: str, user: str = SASL_USER) -> SaslSettings:
    """Sink settings that reach Kafka through the SASL listener as ``user``."""
    lines = KAFKA_PROPERTIES.read_text().splitlines()
    listeners = next(line for line in lines if line.startswith("listeners="))
    address = next(
        listener.removeprefix("SASL_PLAINTEXT://")
        for listener in listeners.removeprefix("listeners=").split(",")
        if listener.startswith("SASL_PLAINTEXT://")
    )
    return {
        "SINK_KAFKA_BOOTSTRAP_SERVERS": address,
        "SINK_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "SINK_KAFKA_SASL_MECHANISMS": "PLAIN",
        "SINK_KAFKA_SASL_USERNAME": user,
        "SINK_KAFKA_SASL_PASSWORD": password,
    }
