"""Prometheus metrics and the HTTP endpoints ``/metrics``, ``/healthz`` and ``/readyz``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


class Metrics:
    """The sink's metrics, in a registry of their own (so several sinks can share a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter(
            "sink_messages",
            "Kafka messages handled, by outcome (stored, duplicate, dead_letter).",
            ["outcome"],
            registry=self.registry,
        )
        self.rows = Counter(
            "sink_rows", "Rows written, by table.", ["table"], registry=self.registry
        )
        self.dead_letters = Counter(
            "sink_dead_letters",
            "Messages sent to sink_dead_letter, by error class.",
            ["error_class"],
            registry=self.registry,
        )
        self.transient_failures = Counter(
            "sink_transient_failures",
            "Failed attempts that were retried, by what failed (decode, write, commit).",
            ["stage"],
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "sink_batch_seconds",
            "Time to write one batch (database transaction included).",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.lag = Gauge(
            "sink_partition_lag",
            "Messages between the sink's position and the partition's end.",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.last_commit = Gauge(
            "sink_last_commit_timestamp_seconds",
            "Unix time of the last committed batch.",
            registry=self.registry,
        )
        self.last_commit_age = Gauge(
            "sink_last_commit_age_seconds",
            "Seconds since the last committed batch (since start before the first one).",
            registry=self.registry,
        )
        self._last_commit_at = time.time()
        self.last_commit_age.set_function(lambda: time.time() - self._last_commit_at)

    def committed(self) -> None:
        """Record that a batch was just committed."""
        self._last_commit_at = time.time()
        self.last_commit.set(self._last_commit_at)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class HealthServer:
    """Serves ``/metrics``, ``/healthz`` (the loop is alive) and ``/readyz`` (ready to work)."""

    def __init__(
        self,
        port: int,
        metrics: Metrics,
        alive: Callable[[], bool],
        ready: Callable[[], bool],
        host: str = "0.0.0.0",  # noqa: S104 - a daemon in a container is scraped from outside
    ) -> None:
        routes: dict[str, Callable[[], tuple[int, str, bytes]]] = {
            "/metrics": lambda: (200, CONTENT_TYPE_LATEST, metrics.exposition()),
            "/healthz": lambda: _probe(alive()),
            "/readyz": lambda: _probe(ready()),
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = routes.get(self.path.split("?", 1)[0])
                status, content_type, body = route() if route else (404, "text/plain", b"")
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Requests are not logged: probes would flood the log."""

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _probe(ok: bool) -> tuple[int, str, bytes]:
    return (200, "text/plain", b"ok\n") if ok else (503, "text/plain", b"not ready\n")
