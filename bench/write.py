"""Write rate of :class:`sink.writer.Warehouse` per database: ``python -m bench.write --events N``.

Events are produced by openedx-events and decoded beforehand; only :meth:`Warehouse.write` is
timed, batch by batch (``--batch`` events per transaction, the daemon's default 5,000), into a
fresh, migrated database per measurement:

* CourseEnrollmentData events (``course.enrollment.created``, one row each), as in
  ``bench/decode.py``;
* a mix of every event type openedx-events can serialize (random payloads, child rows included);
* the enrollments written a second time (every event a duplicate: the replay cost);
* the enrollments and the mix again, rows built beforehand and handed to the database's fast
  path directly: the database's share of the time.

Databases: SQLite and DuckDB in a temporary folder, PostgreSQL in a schema of its own in
``--postgres-url`` (default ``SINK_DATABASE_URL``, else the harness's), dropped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from bench.decode import Messages, enrollment_messages, mixed_messages
from sink.batch import Batch
from sink.config import PII_POLICIES, PiiPolicy
from sink.decoder import DecodedEvent, Decoder
from sink.errors import MessageLocation
from sink.schema_check import migrate
from sink.writer import Warehouse
from sink.writer.rows import RowBuilder, by_table

HARNESS_URL = "postgresql+psycopg://sink:sink@127.0.0.1:15432/sink"
TOPIC = "bench"
GROUP = "bench"
DIALECTS = ("sqlite", "duckdb", "postgresql")


def decoded(messages: Messages) -> list[DecodedEvent]:
    """The messages decoded once, at consecutive offsets of one partition."""
    decoder = Decoder()
    return [
        decoder.decode(value, headers, MessageLocation(TOPIC, 0, offset))
        for offset, (value, headers, _event_type) in enumerate(messages)
    ]


def batches(events: Sequence[DecodedEvent], size: int) -> list[Batch]:
    """Consecutive batches of ``size`` events with their positions."""
    made = []
    for start in range(0, len(events), size):
        batch = Batch(events=list(events[start : start + size]))
        batch.advance(batch.events[-1].location)
        made.append(batch)
    return made


@contextlib.contextmanager
def database(dialect: str, folder: Path, postgres_url: str) -> Iterator[str]:
    """A fresh, migrated database of ``dialect``; its URL."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    if dialect != "postgresql":
        suffix = "db" if dialect == "sqlite" else "duckdb"
        url = f"{dialect}:///{folder / f'{name}.{suffix}'}"
        migrate(url)
        yield url
        return
    admin = sa.create_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    try:
        url = f"{postgres_url}?options=-csearch_path%3D{name}"
        migrate(url)
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def timed_writes(warehouse: Warehouse, work: list[Batch]) -> tuple[float, int, int]:
    """Seconds spent in ``write``, events stored and rows inserted, over ``work``."""
    seconds, stored, rows = 0.0, 0, 0
    for batch in work:
        started = time.perf_counter()
        result = warehouse.write(batch, GROUP)
        seconds += time.perf_counter() - started
        stored += result.stored
        rows += sum(result.rows.values())
    return seconds, stored, rows


def timed_rewrites(warehouse: Warehouse, work: list[Batch]) -> tuple[float, int, int]:
    """Write ``work`` once untimed, then time writing it again (every event a duplicate)."""
    timed_writes(warehouse, work)
    return timed_writes(warehouse, work)


def timed_inserts(warehouse: Warehouse, work: list[Batch]) -> tuple[float, int, int]:
    """Like :func:`timed_writes`, but rows are built beforehand: the database path alone.

    Each batch's rows go through the dialect's ``store_events`` in a transaction of their own
    (commit included in the time); no dead letters, no positions, and events the database
    cannot store are left out.
    """
    builder, now = RowBuilder(warehouse.pii), datetime.now(UTC)
    built = [[builder.build(event, now) for event in batch.events] for batch in work]
    storable = warehouse.dialect.unstorable
    prepared = [[rows for rows in batch if storable(rows) is None] for batch in built]
    seconds, stored, rows = 0.0, 0, 0
    for batch_rows in prepared:
        started = time.perf_counter()
        with warehouse.engine.begin() as connection:
            inserted = warehouse.dialect.store_events(connection, by_table(batch_rows))
        seconds += time.perf_counter() - started
        stored += inserted.events
        rows += sum(inserted.rows.values())
    return seconds, stored, rows


#: How a set of events is timed: written once, written twice (the second pass timed), or
#: inserted from pre-built rows.
MODES: dict[str, Callable[[Warehouse, list[Batch]], tuple[float, int, int]]] = {
    "write": timed_writes,
    "rewrite": timed_rewrites,
    "insert": timed_inserts,
}


def measure(url: str, pii: PiiPolicy, work: list[Batch], mode: str) -> tuple[float, int, int]:
    """Time ``work`` in a fresh warehouse at ``url``, the way ``mode`` says."""
    warehouse = Warehouse(url, pii, b"bench-key")
    try:
        return MODES[mode](warehouse, work)
    finally:
        warehouse.close()


def report(label: str, events: int, seconds: float, stored: int, rows: int) -> None:
    write(
        f"  {label:<34} {events / seconds:>10,.0f} events/s {rows / seconds:>10,.0f} rows/s"
        f"   ({stored:,} stored, {rows:,} rows, {seconds:.2f} s)\n"
    )


def run(args: argparse.Namespace, folder: Path) -> None:
    enrollments = decoded(enrollment_messages(args.events, courses=50))
    mix = decoded(mixed_messages(args.per_type))
    sets: list[tuple[str, list[DecodedEvent], str]] = [
        ("enrollments", enrollments, "write"),
        (f"mix of every type ({len(mix):,} events)", mix, "write"),
        ("enrollments again (all duplicates)", enrollments, "rewrite"),
        ("enrollments, rows pre-built (DB only)", enrollments, "insert"),
        ("mix, rows pre-built (DB only)", mix, "insert"),
    ]
    for dialect in args.dialects:
        write(f"\n{dialect} (batches of {args.batch:,}, pii={args.pii})\n")
        for label, events, mode in sets:
            with database(dialect, folder, args.postgres_url) as url:
                work = batches(events, args.batch)
                seconds, stored, rows = measure(url, args.pii, work, mode)
            report(label, len(events), seconds, stored, rows)


def write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> None:
    """Print write rates per database."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=20_000, help="enrollment events")
    parser.add_argument("--per-type", type=int, default=100, help="events per type in the mix")
    parser.add_argument("--batch", type=int, default=5_000, help="events per write")
    parser.add_argument("--pii", choices=PII_POLICIES, default="drop", help="PII policy")
    parser.add_argument(
        "--dialects", type=_dialects, default=DIALECTS, help="comma list of databases"
    )
    parser.add_argument("--postgres-url", default=os.environ.get("SINK_DATABASE_URL", HARNESS_URL))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the local decoder's warning is expected here
    write(f"python {sys.version.split()[0]}, SQLAlchemy {sa.__version__}, one core\n")
    with tempfile.TemporaryDirectory(prefix="bench-write-") as folder:
        run(args, Path(folder))


def _dialects(text: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    if unknown := set(chosen) - set(DIALECTS):
        raise argparse.ArgumentTypeError(f"unknown: {', '.join(sorted(unknown))}")
    return chosen


if __name__ == "__main__":
    main()
