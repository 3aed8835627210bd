"""Fixtures for integration tests against the real local services (scripts/services).

Every test in this folder is marked ``integration``. The session starts the services when they are
not running yet; each test gets its own topic names, consumer group and PostgreSQL schema, so tests
never see each other's data.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient

from sink.decoder import registry_client as registry_client_for

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "scripts" / "services"
CONSUME_DEADLINE_S = 60.0


@attrs.frozen
class Services:
    """Addresses of the running local services.

    Attributes:
        bootstrap_servers: Kafka bootstrap servers.
        registry_url: Confluent-compatible Schema Registry URL.
        database_url: SQLAlchemy URL of the PostgreSQL database.
    """

    bootstrap_servers: str
    registry_url: str
    database_url: str


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.integration)


def _service_environment() -> dict[str, str]:
    printed = subprocess.run(
        [str(SERVICES), "env"], check=True, capture_output=True, text=True
    ).stdout
    pairs = (line.removeprefix("export ").split("=", 1) for line in printed.splitlines())
    return {name: os.environ.get(name, value) for name, value in pairs}


@pytest.fixture(scope="session")
def services() -> Services:
    """The local services, started by `scripts/services up` if they are not answering yet."""
    if subprocess.run([str(SERVICES), "status"], capture_output=True, check=False).returncode:
        subprocess.run([str(SERVICES), "up"], check=True)
    environment = _service_environment()
    return Services(
        bootstrap_servers=environment["SINK_KAFKA_BOOTSTRAP_SERVERS"],
        registry_url=environment["SINK_SCHEMA_REGISTRY_URL"],
        database_url=environment["SINK_DATABASE_URL"],
    )


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Make names unique to this test: ``unique("orders")`` → ``orders-3f2a9c1e``."""
    suffix = uuid.uuid4().hex[:8]
    return lambda base: f"{base}-{suffix}"


@pytest.fixture
def group_id(unique: Callable[[str], str]) -> str:
    return unique("test-group")


@pytest.fixture(scope="session")
def kafka_admin(services: Services) -> AdminClient:
    return AdminClient({"bootstrap.servers": services.bootstrap_servers})


@pytest.fixture
def make_topic(
    kafka_admin: AdminClient, unique: Callable[[str], str]
) -> Iterator[Callable[..., str]]:
    """Create a topic of this test's own (``make_topic("analytics", partitions=3)``)."""
    created: list[str] = []

    def create(base: str = "topic", partitions: int = 1) -> str:
        name = unique(base)
        futures = kafka_admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=30)
        futures[name].result(timeout=30)
        created.append(name)
        return name

    yield create
    if created:
        for future in kafka_admin.delete_topics(created, operation_timeout=30).values():
            future.result(timeout=30)


@pytest.fixture(scope="session")
def registry_client(services: Services) -> SchemaRegistryClient:
    """The registry client the sink itself builds: every request has a timeout, then a retry.

    Without a timeout a request the registry never answers blocks its test until pytest-timeout
    kills it (Apicurio leaves a few requests in a thousand to an endpoint it lacks unanswered).
    """
    client: SchemaRegistryClient = registry_client_for(services.registry_url)
    return client


@pytest.fixture
def pg_schema(services: Services, unique: Callable[[str], str]) -> Iterator[str]:
    """A fresh PostgreSQL schema for this test, dropped afterwards."""
    name = unique("test").replace("-", "_")
    # No pool: a test may restart the server, which kills pooled connections.
    engine = sa.create_engine(services.database_url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    yield name
    with engine.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
    engine.dispose()


@pytest.fixture
def pg_engine(services: Services, pg_schema: str) -> Iterator[sa.Engine]:
    """An engine whose connections work in this test's own schema (``search_path``)."""
    engine = sa.create_engine(
        services.database_url, connect_args={"options": f"-c search_path={pg_schema}"}
    )
    yield engine
    engine.dispose()


def consume_all(services: Services, topic: str, group_id: str, count: int) -> list[Any]:
    """Read `count` messages of `topic` from the beginning (or what arrives within 60 s)."""
    consumer = Consumer(
        {
            "bootstrap.servers": services.bootstrap_servers,
            "group.id": group_id,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    received: list[Any] = []
    deadline = time.monotonic() + CONSUME_DEADLINE_S
    try:
        while len(received) < count and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=1.0):
                assert message.error() is None, message.error()
                received.append(message)
    finally:
        consumer.close()
    return received
