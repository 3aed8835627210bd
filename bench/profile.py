"""Where the daemon's time goes, from a ``py-spy record --format raw`` profile (collapsed stacks):
``python -m bench.profile PROFILE``.

Record one with ``python -m bench --profile /tmp/profile.txt`` (the e2e daemon runs under
``py-spy record --idle --native``). Each sample of the main thread is put in one stage by the
first rule of :data:`RULES` its stack matches (the garbage collector before the stage it
interrupted), and the stages of the batch write are split into time the client spends waiting
for PostgreSQL (in psycopg's wait, ``poll``/``recv``) and the rest (client CPU). The top
functions by own time follow.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

Stack = list[str]


def _function(frame: str) -> str:
    return frame.split(" (", 1)[0]


def _file(frame: str) -> str:
    match = re.search(r"\((.*?)(?::\d+)?\)$", frame)
    return match[1] if match else ""


def _any(test: Callable[[str], bool]) -> Callable[[Stack], bool]:
    return lambda stack: any(test(frame) for frame in stack)


def _calls(*names: str) -> Callable[[Stack], bool]:
    return _any(lambda frame: _function(frame) in names)


def _in_file(*fragments: str) -> Callable[[Stack], bool]:
    return _any(lambda frame: any(fragment in _file(frame) for fragment in fragments))


def _not(test: Callable[[Stack], bool]) -> Callable[[Stack], bool]:
    return lambda stack: not test(stack)


def _waiting_for_messages(stack: Stack) -> bool:
    return any("Consumer_consume" in frame for frame in stack) and "timedwait" in stack[-1]


#: (stage, test): the first test a stack passes names its stage.
RULES: Final[tuple[tuple[str, Callable[[Stack], bool]], ...]] = (
    ("startup, group join, shutdown", _not(_calls("Daemon.run"))),
    ("garbage collector (gc)", _calls("gc_collect_main", "gc_collect_region")),
    ("write: COPY rows into staging", _calls("_copy")),
    ("write: INSERT … SELECT ON CONFLICT", _calls("PostgresDialect.store_events")),
    ("write: dead letters + positions", _calls("store_dead_letters", "store_positions")),
    ("write: find rejected (bisection)", _calls("Warehouse._find_rejected")),
    ("write: BEGIN/COMMIT, pool", _calls("Warehouse._commit")),
    ("rows: PII policy", _in_file("sink/pii.py")),
    ("rows: NUL check", _calls("PostgresDialect.unstorable")),
    ("rows: flatten", _in_file("<flatten ", "sink/flatten.py")),
    ("rows: envelope, grouping", _calls("Warehouse._prepare", "by_table", "first_occurrences")),
    ("write: other", _calls("Warehouse.write")),
    ("decode: fastavro", _calls("_read_record", "schemaless_reader")),
    ("decode: records to attrs", _in_file("sink/structure.py", "<record converter")),
    ("decode: headers", _in_file("sink/headers.py")),
    ("decode: other", _calls("Decoder.decode_message", "Decoder.decode")),
    ("poll: waiting for messages", _waiting_for_messages),
    ("poll: consume (librdkafka → Python)", _calls("Daemon._collect")),
    ("Kafka commit, lag metric", _calls("Daemon._commit_to_kafka", "Daemon._measure_lag")),
    ("run loop: other", _calls("Daemon.run")),
)

WAIT_FRAMES: Final = ("Connection.wait", "wait_c", "wait_epoll", "wait_select", "wait")
WAIT_LEAVES: Final = ("poll", "recv", "epoll_wait", "select", "__poll", "__libc_recv")


def stage_of(stack: Stack) -> str:
    for stage, test in RULES:
        if test(stack):
            return stage
    return "other"


def waiting_for_postgres(stack: Stack) -> bool:
    """psycopg waiting on its socket: the client idles while PostgreSQL works."""
    in_wait = any(_function(frame) in WAIT_FRAMES and "psycopg" in frame for frame in stack)
    return in_wait or _function(stack[-1]) in WAIT_LEAVES


def read(path: Path) -> list[tuple[Stack, int]]:
    """The collapsed stacks of a raw py-spy profile, with their sample counts."""
    samples = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            samples.append((stack.split(";"), int(count)))
    return samples


def summary(samples: Sequence[tuple[Stack, int]], top: int = 25) -> str:
    """The report: stages, the client/PostgreSQL split of the write, the top functions."""
    stages: collections.Counter[str] = collections.Counter()
    waiting: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = sum(count for _, count in samples)
    for stack, count in samples:
        stage = stage_of(stack)
        stages[stage] += count
        if stage.startswith("write:") and waiting_for_postgres(stack):
            waiting[stage] += count
        if stage != "startup, group join, shutdown":
            own[re.sub(r":\d+\)$", ")", stack[-1])] += count
    loop = total - stages["startup, group join, shutdown"]
    lines = [
        f"{total:,} samples ({total / 100:.1f} s at 100 Hz), {loop:,} in the run loop",
        "",
        f"{'stage':<40} {'% loop':>7} {'% all':>7}  of which waiting on PostgreSQL",
    ]
    for stage, count in stages.most_common():
        wait = waiting.get(stage, 0)
        share = 100 * count / loop if loop and stage != "startup, group join, shutdown" else 0
        note = f"{100 * wait / count:.0f}% ({100 * wait / loop:.1f}% of loop)" if wait else ""
        lines.append(f"{stage:<40} {share:>6.1f}% {100 * count / total:>6.1f}%  {note}")
    waited, idle = sum(waiting.values()), stages["poll: waiting for messages"]
    if loop:
        lines += [
            "",
            f"client waiting on PostgreSQL: {100 * waited / loop:.1f}% of the run loop;"
            f" waiting for Kafka messages: {100 * idle / loop:.1f}%",
            "",
            f"top {top} functions by own time (run loop, % of loop):",
        ]
        lines += [f"  {100 * count / loop:5.1f}%  {frame}" for frame, count in own.most_common(top)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("profile", type=Path, help="raw (collapsed stacks) py-spy profile")
    parser.add_argument("--top", type=int, default=25, help="functions listed by own time")
    args = parser.parse_args(argv)
    sys.stdout.write(summary(read(args.profile), args.top) + "\n")


if __name__ == "__main__":
    main()
