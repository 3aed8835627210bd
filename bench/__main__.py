"""End-to-end benchmark of the sink against the local services: ``python -m bench``.

In one run, against Kafka, the Schema Registry and PostgreSQL of ``scripts/services``:

1. produces ``--events`` realistic mixed Open edX events (:mod:`bench.workload`) into three fresh
   topics of ``--partitions`` partitions;
2. ``decode``: decode + flatten of a sample of those messages, read back into memory (events/s);
3. ``write``: the warehouse writer on the decoded sample, batches of ``--batch``, into an empty
   schema, no Kafka (rows/s);
4. ``naive``: one INSERT + COMMIT per event on ``--naive-events`` of them (events/s);
5. ``e2e``: ``sink migrate`` + ``sink run --stop-at-end`` over all of them into an empty schema
   (events/s between the first and the last batch), with the daemon's peak RSS; ``--replicas N``
   runs N daemons in one consumer group, as an operator uses N cores (RSS: all of them together);
6. latency: a running, caught-up daemon; ``--latency-rate`` events/s for ``--latency-seconds``;
   p50/p99 from ``ce_time`` to the row's commit.

It prints a table, then the final line::

    e2e=<n>/s decode=<n>/s write=<n>/s naive=<n>/s limit_ratio=<e2e/min(decode,write)>
    naive_speedup=<e2e/naive> rss_mb=<n> p99_ms=<n>

(one line), and drops its topics, schemas and registry subjects (``--keep`` keeps them). The exit
status is 1 when an event did not land.

``--sink-env SINK_...=...`` passes settings to the daemons (batch size, librdkafka options), and
``--profile /tmp/profile.txt`` runs the e2e daemon under ``py-spy record`` (its rate and memory
are then those of a profiled process); ``python -m bench.profile /tmp/profile.txt`` tells where
its time went.

The machine is shared with PostgreSQL and Kafka (and whatever else runs): the ``e2e CPU`` line
shows the CPU time of each over the e2e window, in % of one core, and of the whole machine (200%
is two cores busy), so that a run disturbed by other work shows.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from bench import e2e, inprocess, workload
from bench.e2e import Endpoints
from sink.config import PII_POLICIES
from sink.decoder import registry_client
from sink.pii import Pii

HARNESS = Endpoints(
    bootstrap_servers="127.0.0.1:19092",
    registry_url="http://127.0.0.1:18081/apis/ccompat/v7",
    database_url="postgresql+psycopg://sink:sink@127.0.0.1:15432/sink",
)


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def progress(text: str) -> None:
    say(f"# {datetime.now(UTC):%H:%M:%S} {text}")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=(__doc__ or "").split("\n", 1)[0]
    )
    arg = parser.add_argument
    arg("--events", type=int, default=500_000, help="events produced for the e2e run")
    arg("--partitions", type=int, default=4, help="partitions per topic (3 topics)")
    arg("--payloads", type=int, default=4000, help="distinct pre-built payloads re-sent")
    arg("--compression", default="none", help="producer compression.type (none, lz4, zstd...)")
    arg("--decode-sample", type=int, default=100_000, help="messages decoded in process")
    arg("--write-events", type=int, default=100_000, help="pre-decoded events written")
    arg("--batch", type=int, default=5000, help="events per write in the write stage")
    arg("--naive-events", type=int, default=5000, help="events inserted one by one")
    arg("--latency-rate", type=float, default=1000.0, help="events/s of the latency run")
    arg("--latency-seconds", type=float, default=30.0, help="length of the latency run")
    arg("--pii", choices=PII_POLICIES, default="drop", help="PII policy (SINK_PII) everywhere")
    arg("--pii-key", default="bench-pii-key", help="HMAC key when --pii hash")
    arg(
        "--sink-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of the sink processes (e.g. SINK_BATCH_MAX_MESSAGES=10000)",
    )
    arg("--e2e-timeout", type=float, default=3600.0, help="seconds before the e2e run fails")
    arg("--replicas", type=int, default=1, help="sink processes of the e2e run (one group)")
    arg(
        "--profile",
        type=Path,
        help="run the e2e daemon under py-spy record, writing this file (.svg flame graph,"
        " .json speedscope, else collapsed stacks for python -m bench.profile)",
    )
    arg("--keep", action="store_true", help="keep topics, the e2e schema and registry subjects")
    arg("--bootstrap-servers", default=_env("SINK_KAFKA_BOOTSTRAP_SERVERS", "bootstrap_servers"))
    arg("--registry-url", default=_env("SINK_SCHEMA_REGISTRY_URL", "registry_url"))
    arg("--database-url", default=_env("SINK_DATABASE_URL", "database_url"))
    args = parser.parse_args(argv)
    if args.events < 1:
        parser.error("--events must be at least 1")
    if args.replicas < 1 or (args.replicas > 1 and args.profile):
        parser.error("--replicas must be at least 1 (and 1 with --profile)")
    return args


def _env(name: str, field: str) -> str:
    return os.environ.get(name) or str(getattr(HARNESS, field))


def _extra_env(pairs: Sequence[str], pii: str, pii_key: str) -> dict[str, str]:
    extra = dict(pair.split("=", 1) for pair in pairs)
    if pii == "hash":
        extra.setdefault("SINK_PII_HASH_KEY", pii_key)
    return extra


def end_offsets(bootstrap_servers: str, topics: Sequence[str]) -> dict[tuple[str, int], int]:
    """The high watermark of every partition of ``topics``."""
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": "bench-probe"})
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


@contextlib.contextmanager
def schema(database_url: str, name: str, keep: bool) -> Iterator[sa.Engine]:
    """An empty PostgreSQL schema ``name`` (dropped afterwards unless ``keep``); an engine on it."""
    admin = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    engine = sa.create_engine(e2e.schema_url(database_url, name))
    try:
        yield engine
    finally:
        engine.dispose()
        if not keep:
            with admin.begin() as connection:
                connection.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


class Report:
    """The table's lines, collected as the stages run."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, str]] = []

    def add(self, stage: str, value: str, note: str = "") -> None:
        self.lines.append((stage, value, note))
        progress(f"{stage}: {value} {note}".rstrip())

    def print(self) -> None:
        width = max(len(stage) for stage, _, _ in self.lines)
        value_width = max(len(value) for _, value, _ in self.lines)
        say("")
        for stage, value, note in self.lines:
            say(f"{stage:<{width}}  {value:>{value_width}}  {note}".rstrip())
        say("")


def _rate(value: float, unit: str = "events/s") -> str:
    return f"{value:,.0f} {unit}"


def _machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} cores"
        f" ({model}), Python {platform.python_version()}"
    )


def run(args: argparse.Namespace, work: Path) -> int:  # noqa: PLR0915 - one linear story
    endpoints = Endpoints(args.bootstrap_servers, args.registry_url, args.database_url)
    run_id = uuid.uuid4().hex[:8]
    topics = {role: f"bench-{run_id}-{role}" for role in workload.TOPIC_ROLES}
    topic_names = list(topics.values())
    group_id = f"bench-{run_id}"
    pii = Pii(args.pii, args.pii_key.encode())
    extra = _extra_env(args.sink_env, args.pii, args.pii_key)
    tables = workload.tables_of_mix()
    report = Report()
    say(f"# {_machine()}")
    say(f"# run {run_id}: topics {', '.join(topic_names)}; logs in {work}")

    admin = AdminClient({"bootstrap.servers": endpoints.bootstrap_servers})
    registrations = workload.Registrations(registry_client(endpoints.registry_url))
    workload.create_topics(admin, topic_names, args.partitions)
    try:
        started = time.perf_counter()
        pool = workload.payload_pool(min(args.payloads, args.events))
        outgoing = registrations.frame(pool, topics)
        built = time.perf_counter() - started
        seconds = workload.produce_bulk(
            endpoints.bootstrap_servers, outgoing, args.events, args.compression
        )
        ends = end_offsets(endpoints.bootstrap_servers, topic_names)
        if (produced := sum(ends.values())) != args.events:
            raise RuntimeError(f"{produced} of {args.events} events in the topics")
        report.add(
            "produce",
            _rate(args.events / seconds),
            f"{args.events:,} events into 3 topics x {args.partitions} partitions in"
            f" {seconds:.1f} s ({len(pool):,} payloads built in {built:.1f} s,"
            f" compression {args.compression})",
        )

        sample = inprocess.read_sample(endpoints.bootstrap_servers, ends, args.decode_sample)
        rates, events = inprocess.measure_decode(endpoints.registry_url, sample, pii)
        for name, rate in rates.items():
            report.add(name, _rate(rate.per_second), f"{rate.count:,} messages in memory")
        decode_rate = rates["decode+flatten"].per_second

        writes = inprocess.measure_write(
            endpoints.database_url, events[: args.write_events], pii, args.batch
        )
        for name, rate in writes.items():
            report.add(
                name,
                _rate(rate.rows_per_second, "rows/s"),
                f"{rate.per_second:,.0f} events/s, {rate.count:,} events, {rate.rows:,} rows,"
                f" batches of {args.batch:,}, {rate.seconds:.2f} s",
            )
        write_rate = writes["write"].rows_per_second
        del events

        naive = inprocess.measure_naive(
            endpoints.database_url, endpoints.registry_url, sample[: args.naive_events], pii
        )
        report.add("naive", _rate(naive.per_second), f"{naive.count:,} events, one COMMIT each")
        del sample

        with schema(endpoints.database_url, f"bench_{run_id}_e2e", args.keep) as engine:
            environment = e2e.sink_environment(
                endpoints,
                schema=f"bench_{run_id}_e2e",
                group_id=group_id,
                topics=topic_names,
                pii=args.pii,
                extra=extra,
            )
            log = work / "sink.log"
            migrated = e2e.migrate(environment, log)
            result = e2e.run_e2e(
                environment,
                engine,
                tables,
                log=log,
                timeout=args.e2e_timeout,
                profile=args.profile,
                replicas=args.replicas,
            )
            report.add(
                "e2e",
                _rate(result.rate),
                f"{result.events:,} events in {result.batches:,} batches, {result.window:.1f} s"
                f" first to last batch ({result.wall:.1f} s wall; migrate {migrated:.1f} s)"
                + (f", {args.replicas} replicas" if args.replicas > 1 else ""),
            )
            report.add("e2e peak RSS", f"{result.rss_mb:,.0f} MB")
            if result.cpu:
                shares = ", ".join(f"{group} {share:.0f}%" for group, share in result.cpu.items())
                report.add(
                    "e2e CPU",
                    f"{sum(v for k, v in result.cpu.items() if k != 'machine'):.0f}%",
                    f"of one core, first to last batch: {shares} (machine: every process)"
                    + (" [profiled by py-spy]" if args.profile else ""),
                )

            latency = e2e.run_latency(
                environment,
                engine,
                tables,
                outgoing,
                bootstrap_servers=endpoints.bootstrap_servers,
                rate=args.latency_rate,
                seconds=args.latency_seconds,
                log=work / "sink-latency.log",
            )
            commit, ingested = latency.commit, latency.ingested
            report.add(
                "latency to commit",
                f"p99 {commit['p99']:,.0f} ms",
                f"p50 {commit['p50']:,.0f} ms, p90 {commit['p90']:,.0f} ms, max"
                f" {commit['max']:,.0f} ms; {latency.count:,} events at {args.latency_rate:,.0f}/s"
                f" (ce_time to commit, seen in sink_offset every {e2e.POSITION_POLL_S * 1000:.0f}"
                " ms)",
            )
            report.add(
                "latency to ingested_at",
                f"p99 {ingested['p99']:,.0f} ms",
                f"p50 {ingested['p50']:,.0f} ms (ingested_at is taken when the batch write"
                " starts, before its COPY, INSERT and COMMIT)",
            )
            expected = args.events + latency.count
            stored = e2e.stored_events(engine, tables)
            letters = e2e.dead_letters(engine)
            report.add("landed", f"{stored:,} of {expected:,} events", f"{letters:,} dead letters")
            complete = result.events == args.events and stored == expected and letters == 0
            if args.keep:
                say(f"# kept: topics {', '.join(topic_names)}, schema bench_{run_id}_e2e")
    finally:
        if not args.keep:
            workload.delete_topics(admin, topic_names)
            registrations.delete()

    report.print()
    limit = min(decode_rate, write_rate)
    say(
        f"e2e={result.rate:.0f}/s decode={decode_rate:.0f}/s write={write_rate:.0f}/s"
        f" naive={naive.per_second:.0f}/s limit_ratio={result.rate / limit:.2f}"
        f" naive_speedup={result.rate / naive.per_second:.1f} rss_mb={result.rss_mb:.0f}"
        f" p99_ms={commit['p99']:.0f}"
    )
    return 0 if complete else 1


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING, format="# %(levelname)s %(name)s: %(message)s")
    if args.keep:  # the sink's logs stay with the rest
        code = run(args, Path(tempfile.mkdtemp(prefix="bench-")))
    else:
        with tempfile.TemporaryDirectory(prefix="bench-") as folder:
            code = run(args, Path(folder))
    sys.exit(code)


if __name__ == "__main__":
    main()
