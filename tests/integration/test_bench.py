"""Smoke test of the end-to-end benchmark (`python -m bench`) with tiny numbers, so it cannot rot:
it runs every stage against the real services, every event lands, the final line keeps its format,
and nothing is left behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import sqlalchemy as sa
from confluent_kafka.admin import AdminClient

from tests.integration.conftest import REPO, Services

FINAL_LINE = re.compile(
    r"e2e=(?P<e2e>\d+)/s decode=(?P<decode>\d+)/s write=(?P<write>\d+)/s naive=(?P<naive>\d+)/s"
    r" limit_ratio=\d+\.\d\d naive_speedup=\d+\.\d rss_mb=(?P<rss>\d+) p99_ms=(?P<p99>\d+)"
)
EVENTS = 2000
LATENCY_RATE, LATENCY_SECONDS = 500, 3


def test_bench_runs_every_stage_and_every_event_lands(
    services: Services, kafka_admin: AdminClient
) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SINK_")}
    environment.update(
        SINK_KAFKA_BOOTSTRAP_SERVERS=services.bootstrap_servers,
        SINK_SCHEMA_REGISTRY_URL=services.registry_url,
        SINK_DATABASE_URL=services.database_url,
    )
    arguments = [
        f"--events={EVENTS}",
        "--payloads=500",
        "--naive-events=300",
        f"--latency-rate={LATENCY_RATE}",
        f"--latency-seconds={LATENCY_SECONDS}",
    ]
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "bench", *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert elapsed < 60, f"the smoke run took {elapsed:.0f} s\n{output[-2000:]}"

    lines = result.stdout.strip().splitlines()
    final = FINAL_LINE.fullmatch(lines[-1])
    assert final, f"final line changed its format: {lines[-1]!r}"
    assert all(int(final[name]) > 0 for name in ("e2e", "decode", "write", "naive", "rss", "p99"))

    expected = EVENTS + LATENCY_RATE * LATENCY_SECONDS
    landed = next(line for line in lines if line.startswith("landed"))
    assert f"{expected:,} of {expected:,} events" in landed, landed
    assert " 0 dead letters" in landed, landed

    run_id = re.search(r"# run (\w+):", result.stdout)
    assert run_id, result.stdout[:1000]
    leftover_topics = [t for t in kafka_admin.list_topics(timeout=10).topics if run_id[1] in t]
    assert leftover_topics == []
    engine = sa.create_engine(services.database_url, poolclass=sa.pool.NullPool)
    query = sa.text("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE :p")
    with engine.connect() as connection:
        schemas = connection.execute(query, {"p": f"bench_{run_id[1]}%"}).all()
    engine.dispose()
    assert schemas == []
