"""Backoff, logging formats and the metrics/health endpoints."""

from __future__ import annotations

import json
import logging
import random
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from sink.daemon import BudgetExhaustedError, wait_for_warehouse
from sink.errors import DatabaseAccessError, DatabaseUnavailableError
from sink.logs import JsonFormatter, TextFormatter
from sink.metrics import HealthServer, Metrics
from sink.retry import Backoff


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    backoff = Backoff(budget=20, base_s=0.5, cap_s=4.0, random=random.Random(7))
    delays = [backoff.failed() for _ in range(8)]
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) == len(delays)  # jittered, not lock-step


def test_backoff_budget_counts_consecutive_failures_only() -> None:
    backoff = Backoff(budget=2)
    backoff.failed()
    backoff.failed()
    assert not backoff.exhausted
    backoff.succeeded()
    for _ in range(3):
        backoff.failed()
    assert backoff.exhausted


class _Warehouse:
    """Answers ``check_schema`` with the given failures first, then succeeds."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.checks = 0

    def check_schema(self) -> None:
        self.checks += 1
        if self.failures:
            raise self.failures.pop(0)


def test_start_waits_for_a_database_that_is_down() -> None:
    down = DatabaseUnavailableError("the warehouse database is unavailable (refused)")
    warehouse = _Warehouse(down, down)
    wait_for_warehouse(warehouse, Backoff(budget=5, base_s=0.001, cap_s=0.002))
    assert warehouse.checks == 3


def test_start_gives_up_after_the_budget() -> None:
    down = DatabaseUnavailableError("the warehouse database is unavailable (refused)")
    warehouse = _Warehouse(*[down] * 10)
    with pytest.raises(BudgetExhaustedError, match=r"SINK_FAILURE_BUDGET=2.*refused"):
        wait_for_warehouse(warehouse, Backoff(budget=2, base_s=0.001, cap_s=0.002))
    assert warehouse.checks == 3


def test_start_does_not_retry_a_refusal() -> None:
    refused = DatabaseAccessError("the warehouse database refused the sink (password)")
    warehouse = _Warehouse(refused)
    with pytest.raises(DatabaseAccessError):
        wait_for_warehouse(warehouse, Backoff(budget=5, base_s=0.001, cap_s=0.002))
    assert warehouse.checks == 1


def _record(**context: object) -> logging.LogRecord:
    record = logging.LogRecord("sink.daemon", logging.WARNING, __file__, 1, "bad %s", ("x",), None)
    for key, value in context.items():
        setattr(record, key, value)
    return record


def test_json_log_lines_carry_message_context() -> None:
    line = JsonFormatter().format(_record(topic="t", partition=2, offset=9, ce_id="abc"))
    entry = json.loads(line)
    assert entry["message"] == "bad x"
    assert entry["level"] == "warning"
    assert (entry["topic"], entry["partition"], entry["offset"], entry["ce_id"]) == (
        "t",
        2,
        9,
        "abc",
    )


def test_text_log_lines_carry_message_context() -> None:
    line = TextFormatter().format(_record(topic="t", partition=2, offset=9))
    assert line.endswith("sink.daemon: bad x [topic=t partition=2 offset=9]")


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def state() -> dict[str, bool]:
    return {"alive": True, "ready": False}


@pytest.fixture
def server(state: dict[str, bool]) -> Iterator[HealthServer]:
    metrics = Metrics()
    metrics.messages.labels("stored").inc(3)
    metrics.committed()
    server = HealthServer(
        0, metrics, lambda: state["alive"], lambda: state["ready"], host="127.0.0.1"
    )
    server.start()
    yield server
    server.stop()


def test_metrics_endpoint_serves_prometheus_text(server: HealthServer) -> None:
    status, body = _get(server.port, "/metrics")
    assert status == 200
    assert 'sink_messages_total{outcome="stored"} 3.0' in body
    assert "sink_last_commit_age_seconds" in body


def test_health_and_readiness_follow_the_daemon_state(
    server: HealthServer, state: dict[str, bool]
) -> None:
    assert _get(server.port, "/healthz")[0] == 200
    assert _get(server.port, "/readyz")[0] == 503
    state["ready"] = True
    state["alive"] = False
    assert _get(server.port, "/readyz")[0] == 200
    assert _get(server.port, "/healthz")[0] == 503
    assert _get(server.port, "/nope")[0] == 404
