"""The daemon stages of the benchmark: ``sink run`` as a subprocess, as an operator runs it.

* ``e2e``: ``sink migrate``, then ``sink run --stop-at-end`` from the start of the topics into an
  empty schema. The rate is taken from the database: every batch stamps its rows with one
  ``ingested_at`` (taken when the batch write starts), so between the first and the last batch's
  stamp the daemon handled every event but the first batch's. Peak RSS is the daemon's ``VmHWM``
  sampled from ``/proc`` (not ``ru_maxrss``: Linux counts the forking parent's RSS in it). CPU
  time of the daemon (main thread and librdkafka's threads apart), of PostgreSQL and of Kafka is
  sampled from ``/proc`` over the same window, which tells whether the client and the database
  wait for each other. With a profile path, the daemon runs under ``py-spy record``.
* latency: a daemon already running and caught up, messages produced at a fixed rate, each
  stamped with ``ce_time`` at ``produce``. A poller reads ``sink_offset`` every few milliseconds:
  positions are committed in the same transaction as the rows, so the first time a partition's
  position passes a message's offset is when its row became visible (committed). The rows'
  ``ingested_at - event_time`` is also reported: it stops at the start of the batch write.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Final

import attrs
import sqlalchemy as sa

from bench.workload import Outgoing, Probe, produce_paced

REPO: Final = Path(__file__).resolve().parents[1]
TICKS: Final = os.sysconf("SC_CLK_TCK")
SAMPLE_INTERVAL_S: Final = 0.25
POSITION_POLL_S: Final = 0.01


@attrs.frozen
class Endpoints:
    """The services the benchmark runs against."""

    bootstrap_servers: str
    registry_url: str
    database_url: str


def schema_url(database_url: str, schema: str) -> str:
    """``database_url`` with ``search_path`` set to ``schema``."""
    return f"{database_url}?options=-csearch_path%3D{schema}"


def sink_environment(
    endpoints: Endpoints,
    *,
    schema: str,
    group_id: str,
    topics: Sequence[str],
    pii: str,
    extra: dict[str, str],
) -> dict[str, str]:
    """The environment of a ``sink`` subprocess: the operator's settings, nothing test-only."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SINK_")}
    environment.update(
        SINK_KAFKA_BOOTSTRAP_SERVERS=endpoints.bootstrap_servers,
        SINK_SCHEMA_REGISTRY_URL=endpoints.registry_url,
        SINK_DATABASE_URL=schema_url(endpoints.database_url, schema),
        SINK_GROUP_ID=group_id,
        SINK_TOPICS=",".join(topics),
        SINK_PII=pii,
        SINK_METRICS_PORT="0",
        SINK_LOG_FORMAT="json",
        **extra,
    )
    return environment


def sink_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "sink", *arguments]


def migrate(environment: dict[str, str], log: Path) -> float:
    """``sink migrate``; the seconds it took."""
    started = time.perf_counter()
    with log.open("ab") as output:
        result = subprocess.run(  # noqa: S603 - our own command
            sink_command("migrate"), env=environment, stdout=output, stderr=subprocess.STDOUT,
            cwd=REPO, check=False, timeout=120,
        )  # fmt: skip
    if result.returncode:
        raise RuntimeError(f"sink migrate exited {result.returncode}:\n{tail(log)}")
    return time.perf_counter() - started


def tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


# --- watching processes ---------------------------------------------------------------------------


def _cpu_ticks(stat_path: str) -> int | None:
    """utime + stime of a process or thread, in clock ticks (None when it is gone)."""
    try:
        with open(stat_path, "rb") as file:  # noqa: PTH123 - hot path, plain open is cheaper
            fields = file.read().rsplit(b")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])


def _status_kb(pid: int, field: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _pids(match: Callable[[str, bytes], bool]) -> list[int]:
    """Pids whose (comm, cmdline) ``match`` says yes to."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            cmdline = (entry / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if match(comm, cmdline):
            found.append(int(entry.name))
    return found


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


@attrs.define
class Sample:
    at: float
    ticks: dict[str, int]


class Watch:
    """Samples CPU ticks of the sink processes (main threads, other threads), PostgreSQL, Kafka
    and the whole machine, and the sink's peak RSS, every :data:`SAMPLE_INTERVAL_S` in a thread.

    With one sink process the peak RSS is the kernel's high-water mark (VmHWM); with several, the
    largest sum of their resident sizes (VmRSS) seen in one sample.
    """

    GROUPS: Final = ("sink main thread", "sink other threads", "postgres", "kafka", "machine")

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = tuple(pids)
        self.kafka = _pids(lambda _comm, cmdline: b"kafka.Kafka" in cmdline)
        self.samples: list[Sample] = []
        self.hwm_kb = 0
        self._postgres: dict[int, int] = {}  # pid → latest ticks (also of exited backends)
        self._postgres_base: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self._sample()
            if self._stop.wait(SAMPLE_INTERVAL_S):
                return

    def _sample(self) -> None:
        field = "VmHWM" if len(self.pids) == 1 else "VmRSS"
        self.hwm_kb = max(self.hwm_kb, sum(_status_kb(pid, field) for pid in self.pids))
        mains = [_cpu_ticks(f"/proc/{pid}/task/{pid}/stat") for pid in self.pids]
        wholes = [_cpu_ticks(f"/proc/{pid}/stat") for pid in self.pids]
        alive = None not in mains and None not in wholes
        main = sum(t or 0 for t in mains) if alive else None
        whole = sum(t or 0 for t in wholes) if alive else None
        first = not self.samples
        for pid in _pids(lambda comm, _cmdline: comm == "postgres"):
            pid_ticks = _cpu_ticks(f"/proc/{pid}/stat")
            if pid_ticks is None:
                continue
            if pid not in self._postgres:  # started before the watch: count from now
                self._postgres_base[pid] = pid_ticks if first else 0
            self._postgres[pid] = pid_ticks
        busy, _total = _machine_ticks()
        ticks = {
            "postgres": sum(t - self._postgres_base[p] for p, t in self._postgres.items()),
            "kafka": sum(_cpu_ticks(f"/proc/{pid}/stat") or 0 for pid in self.kafka),
            "machine": busy,
        }
        if main is not None and whole is not None:
            ticks["sink main thread"] = main
            ticks["sink other threads"] = whole - main
        elif self.samples:  # the sink is gone: keep its last values
            last = self.samples[-1].ticks
            ticks["sink main thread"] = last.get("sink main thread", 0)
            ticks["sink other threads"] = last.get("sink other threads", 0)
        self.samples.append(Sample(time.time(), ticks))

    def cpu_shares(self, start: float, end: float) -> dict[str, float]:
        """Per group, its CPU time over ``[start, end]`` (wall-clock) as % of one core."""
        inside = [s for s in self.samples if start <= s.at <= end and len(s.ticks) == 5]
        if len(inside) < 2:
            inside = [s for s in self.samples if len(s.ticks) == 5]
        if len(inside) < 2:
            return {}
        first, last = inside[0], inside[-1]
        seconds = last.at - first.at
        return {
            group: 100.0 * (last.ticks[group] - first.ticks[group]) / TICKS / seconds
            for group in self.GROUPS
        }


# --- e2e ------------------------------------------------------------------------------------------


@attrs.frozen
class E2E:
    """What the e2e run measured.

    Attributes:
        events: Events stored (rows of the parent tables).
        dead_letters: Rows of ``sink_dead_letter``.
        rate: Events per second between the first and the last batch.
        batches: Batches written.
        window: Seconds between the first and the last batch.
        wall: Seconds from starting ``sink run`` to its exit.
        rss_mb: Peak resident memory of the daemon (of all its replicas together).
        cpu: CPU shares over the window (see :meth:`Watch.cpu_shares`).
    """

    events: int
    dead_letters: int
    rate: float
    batches: int
    window: float
    wall: float
    rss_mb: float
    cpu: dict[str, float]


def _child(pid: int, timeout: float = 10.0) -> int:
    """The (first) child process of ``pid``: the sink that ``py-spy record`` started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            if children:
                return int(children[0])
        time.sleep(0.01)
    raise RuntimeError(f"py-spy (pid {pid}) started no sink within {timeout:.0f} s")


def profiled(command: list[str], profile: Path) -> list[str]:
    """``command`` under ``py-spy record`` (100 Hz, idle time included, native frames), writing
    a flame graph (``.svg``), a speedscope file (``.json``) or collapsed stacks (otherwise)."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        raise RuntimeError("py-spy not found: pip install py-spy")
    kind = {".svg": "flamegraph", ".json": "speedscope"}.get(profile.suffix, "raw")
    record = [py_spy, "record", "--rate", "100", "--idle", "--native", "--format", kind]
    return [*record, "--output", str(profile), "--", *command]


def run_e2e(
    environment: dict[str, str],
    engine: sa.Engine,
    tables: Sequence[str],
    *,
    log: Path,
    timeout: float,
    profile: Path | None = None,
    replicas: int = 1,
) -> E2E:
    """``sink run --stop-at-end`` to completion (``replicas`` processes of one consumer group);
    its rate from the stored rows."""
    command = sink_command("run", "--stop-at-end")
    if profile is not None:
        command = profiled(command, profile)
    started = time.perf_counter()
    with log.open("ab") as output:
        processes = [
            subprocess.Popen(  # noqa: S603 - our own command
                command, env=environment, stdout=output, stderr=subprocess.STDOUT, cwd=REPO
            )
            for _ in range(replicas)
        ]
    pids = [p.pid if profile is None else _child(p.pid) for p in processes]
    with Watch(pids) as watch:
        _wait_all(processes, started + timeout)
    wall = time.perf_counter() - started
    if failed := [p.returncode for p in processes if p.returncode]:
        raise RuntimeError(f"sink run exited {failed[0]}:\n{tail(log)}")
    per_batch = batch_stamps(engine, tables)
    events = sum(count for _, count in per_batch)
    if len(per_batch) >= 2:
        first, last = per_batch[0][0], per_batch[-1][0]
        window = (last - first).total_seconds()
        rate = (events - per_batch[0][1]) / window
        cpu = watch.cpu_shares(first.timestamp(), last.timestamp())
    else:  # one batch: no window between batches, take the whole run
        window, rate, cpu = wall, events / wall, watch.cpu_shares(0, float("inf"))
    return E2E(
        events=events,
        dead_letters=dead_letters(engine),
        rate=rate,
        batches=len(per_batch),
        window=window,
        wall=wall,
        rss_mb=watch.hwm_kb / 1024,
        cpu=cpu,
    )


def _wait_all(processes: Sequence[subprocess.Popen[bytes]], deadline: float) -> None:
    """Wait for every process; past the deadline, kill them all and fail."""
    try:
        for process in processes:
            process.wait(max(deadline - time.perf_counter(), 0.1))
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
            process.wait()
        raise RuntimeError("sink run did not finish in time") from None


def _union(tables: Sequence[str], select: str, where: str = "") -> str:
    return " UNION ALL ".join(
        f'SELECT {select} FROM "{table}" {where}'  # noqa: S608 - our own table names
        for table in tables
    )


def batch_stamps(engine: sa.Engine, tables: Sequence[str]) -> list[tuple[datetime, int]]:
    """(``ingested_at``, events) of every batch, in order."""
    query = (
        f"SELECT ingested_at, count(*) FROM ({_union(tables, 'ingested_at')}) AS rows"  # noqa: S608
        " GROUP BY ingested_at ORDER BY ingested_at"
    )
    with engine.connect() as connection:
        return [(row[0], int(row[1])) for row in connection.execute(sa.text(query))]


def stored_events(engine: sa.Engine, tables: Sequence[str]) -> int:
    query = f"SELECT count(*) FROM ({_union(tables, 'event_id')}) AS rows"  # noqa: S608
    with engine.connect() as connection:
        return int(connection.execute(sa.text(query)).scalar_one())


def dead_letters(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        query = sa.text("SELECT count(*) FROM sink_dead_letter")
        return int(connection.execute(query).scalar_one())


# --- latency --------------------------------------------------------------------------------------


@attrs.frozen
class Latency:
    """Latency percentiles in milliseconds.

    Attributes:
        count: Messages produced at the fixed rate.
        commit: From ``ce_time`` to the row's commit (seen through ``sink_offset``).
        ingested: From ``ce_time`` to the row's ``ingested_at`` (start of its batch write).
    """

    count: int
    commit: dict[str, float]
    ingested: dict[str, float]


def percentiles(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]

    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": ordered[-1]}


class PositionPoller:
    """Reads ``sink_offset`` of a group every :data:`POSITION_POLL_S`, remembering when each
    partition's position first reached each value."""

    def __init__(self, engine: sa.Engine, group_id: str) -> None:
        self.engine = engine
        self.group_id = group_id
        self.seen: dict[tuple[str, int], tuple[list[int], list[float]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> PositionPoller:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        query = sa.text(
            'SELECT topic, "partition", next_offset FROM sink_offset WHERE consumer_group = :g'
        )
        try:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                while not self._stop.is_set():
                    rows = conn.execute(query, {"g": self.group_id}).all()
                    now = time.time()
                    for topic, partition, position in rows:
                        offsets, times = self.seen.setdefault((topic, partition), ([], []))
                        if not offsets or position > offsets[-1]:
                            offsets.append(position)
                            times.append(now)
                    self._stop.wait(POSITION_POLL_S)
        except BaseException as error:  # noqa: BLE001 - reported by the caller
            self.error = error

    def committed_at(self, probe: Probe) -> float | None:
        """When the position of the probe's partition first passed its offset."""
        offsets, times = self.seen.get((probe.topic, probe.partition), ([], []))
        index = bisect.bisect_right(offsets, probe.offset)
        return times[index] if index < len(times) else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_ready(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sink run exited {process.returncode}:\n{tail(log)}")
        with contextlib.suppress(OSError):
            url = f"http://127.0.0.1:{port}/readyz"
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        time.sleep(0.1)
    raise RuntimeError(f"sink run not ready after {timeout:.0f} s:\n{tail(log)}")


@contextlib.contextmanager
def running_sink(environment: dict[str, str], log: Path) -> Iterator[None]:
    """A ``sink run`` (until stopped with SIGTERM), ready: its partitions assigned."""
    port = _free_port()
    with log.open("ab") as output:
        process = subprocess.Popen(  # noqa: S603 - our own command
            sink_command("run"), env={**environment, "SINK_METRICS_PORT": str(port)},
            stdout=output, stderr=subprocess.STDOUT, cwd=REPO,
        )  # fmt: skip
    try:
        _wait_ready(port, process, log, 60)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_latency(
    environment: dict[str, str],
    engine: sa.Engine,
    tables: Sequence[str],
    outgoing: Sequence[Outgoing],
    *,
    bootstrap_servers: str,
    rate: float,
    seconds: float,
    log: Path,
) -> Latency:
    """Produce ``rate`` events/s for ``seconds`` into topics a running, caught-up sink consumes;
    the latencies."""
    source = "bench/latency"
    poller = PositionPoller(engine, environment["SINK_GROUP_ID"])
    with running_sink(environment, log), poller:
        time.sleep(0.5)  # the caught-up daemon idles in its poll loop
        probes = produce_paced(bootstrap_servers, outgoing, rate, seconds, source)
        last: dict[tuple[str, int], Probe] = {}
        for probe in probes:
            if probe.offset > last.get((probe.topic, probe.partition), probe).offset:
                last[probe.topic, probe.partition] = probe
            last.setdefault((probe.topic, probe.partition), probe)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and poller.error is None:
            if all(poller.committed_at(probe) is not None for probe in last.values()):
                break
            time.sleep(0.05)
    if poller.error is not None:
        raise RuntimeError(f"reading sink_offset failed: {poller.error}")
    commits = [poller.committed_at(probe) for probe in probes]
    if missing := sum(commit is None for commit in commits):
        raise RuntimeError(f"{missing} of {len(probes)} latency messages never committed")
    commit = [1000 * (at - probe.stamped) for at, probe in zip(commits, probes, strict=True) if at]
    query = _union(
        tables,
        "extract(epoch FROM ingested_at - event_time) * 1000",
        "WHERE event_source = :source",
    )
    with engine.connect() as connection:
        ingested = [float(row[0]) for row in connection.execute(sa.text(query), {"source": source})]
    if len(ingested) != len(probes):
        raise RuntimeError(f"{len(ingested)} of {len(probes)} latency events stored")
    return Latency(len(probes), percentiles(commit), percentiles(ingested))
