"""``sink dlq``: listing, showing and replaying dead letters, on SQLite (PostgreSQL: e2e tests).

Dead letters are made the way the daemon makes them: real Open edX messages decoded by the
decoder (which keeps the raw message) and written by the warehouse, where a trigger makes SQLite
refuse one username, as a PostgreSQL constraint would; dropping the trigger is "the fix".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from opaque_keys.edx.keys import CourseKey
from openedx_events.learning.data import (
    CourseData,
    CourseEnrollmentData,
    UserData,
    UserPersonalData,
)

from sink import dlq
from sink.batch import Batch, DeadLetter
from sink.cli import cli
from sink.decoder import Decoder
from sink.errors import FramingError, MessageLocation
from sink.schema_check import migrate
from sink.writer import Warehouse
from tests import producer

ENROLLMENT = "org.openedx.learning.course.enrollment.created.v1"
TABLE = "learning_course_enrollment"
TOPIC = "events"
GROUP = "dlq-test"
REFUSED = "poison"


def enrollment_message(username: str, user_id: int = 1) -> producer.Message:
    """An enrollment as edx-event-bus-kafka sends it (schema id 1, local schemas decode it)."""
    pii = UserPersonalData(username=username, email=f"{username}@example.org", name="Ada")
    user = UserData(id=user_id, is_active=True, pii=pii)
    course = CourseData(course_key=CourseKey.from_string("course-v1:Org+C1+2026"), display_name="C")
    data = CourseEnrollmentData(
        user=user, course=course, mode="audit", is_active=True, creation_date=datetime.now(UTC)
    )
    return producer.message(ENROLLMENT, data)


@pytest.fixture
def url(tmp_path: Path) -> str:
    database = f"sqlite:///{tmp_path / 'sink.db'}"
    migrate(database)
    return database


@pytest.fixture
def warehouse(url: str) -> Iterator[Warehouse]:
    made = Warehouse(url, "keep")
    with made.engine.begin() as connection:
        connection.exec_driver_sql(
            f"CREATE TRIGGER refuse BEFORE INSERT ON {TABLE}"
            f" WHEN NEW.user__pii__username = '{REFUSED}'"
            " BEGIN SELECT RAISE(ABORT, 'username refused'); END"
        )
    yield made
    made.close()


def fix(warehouse: Warehouse) -> None:
    with warehouse.engine.begin() as connection:
        connection.exec_driver_sql("DROP TRIGGER refuse")


@pytest.fixture
def decoder() -> Decoder:
    return Decoder()


def garbage_letter(offset: int) -> DeadLetter:
    location = MessageLocation(TOPIC, 0, offset)
    headers = (*producer.headers(ENROLLMENT), ("trace", b"\xff\x00"))
    return DeadLetter.from_error(
        FramingError("magic byte is 0x07").at(location), location, b"k", b"\x07" * 100, headers
    )


def consume(warehouse: Warehouse, decoder: Decoder, usernames: list[str]) -> dict[str, Any]:
    """Write a batch as the daemon does: the given enrollments, then one garbage message."""
    batch = Batch()
    sent = {}
    for offset, username in enumerate(usernames):
        message = enrollment_message(username, user_id=offset)
        location = MessageLocation(TOPIC, 0, offset)
        batch.events.append(decoder.decode(message.value, message.headers, location, key=b"k"))
        batch.advance(location)
        sent[username] = message
    letter = garbage_letter(len(usernames))
    batch.dead_letters.append(letter)
    batch.advance(letter.location)
    warehouse.write(batch, GROUP)
    return sent


def stored_usernames(warehouse: Warehouse) -> list[str]:
    with warehouse.engine.connect() as connection:
        query = f"SELECT user__pii__username FROM {TABLE} ORDER BY 1"
        return list(connection.exec_driver_sql(query).scalars())


def letter_ids(warehouse: Warehouse, **selection: Any) -> list[int]:
    return [letter.id for letter in dlq.select(warehouse.engine, dlq.Selection(**selection))]


# --- reading and selecting -----------------------------------------------------------------------


def test_rejected_events_and_poison_messages_are_listed_with_their_raw_message(
    warehouse: Warehouse, decoder: Decoder
) -> None:
    sent = consume(warehouse, decoder, ["ada", REFUSED, "bob"])
    rejected, garbage = dlq.select(warehouse.engine, dlq.Selection())
    assert rejected.location == MessageLocation(TOPIC, 0, 1)
    assert rejected.error_class == "IntegrityError"
    assert rejected.error_message == f"{TABLE}: username refused"
    assert (rejected.key, rejected.value) == (b"k", sent[REFUSED].value)
    assert rejected.headers == sent[REFUSED].headers
    assert rejected.event_type == ENROLLMENT
    assert rejected.replayed_at is None
    assert rejected.first_seen.tzinfo is not None
    assert (garbage.error_class, garbage.value) == ("FramingError", b"\x07" * 100)
    assert garbage.headers[-1] == ("trace", b"\xff\x00")


def test_selection_filters(warehouse: Warehouse, decoder: Decoder) -> None:
    consume(warehouse, decoder, [REFUSED, REFUSED])
    assert letter_ids(warehouse) == [1, 2, 3]
    assert letter_ids(warehouse, error_class="FramingError") == [3]
    assert letter_ids(warehouse, topic="elsewhere") == []
    assert letter_ids(warehouse, limit=2) == [1, 2]
    assert dlq.count(warehouse.engine, dlq.Selection(limit=2)) == 3
    dlq.mark_replayed(warehouse.engine, [2], datetime.now(UTC))
    assert letter_ids(warehouse) == [1, 3]
    assert letter_ids(warehouse, include_replayed=True) == [1, 2, 3]
    assert letter_ids(warehouse, ids=(2, 3), error_class="nope") == [2, 3]  # ids win
    assert dlq.get(warehouse.engine, 2) is not None
    assert dlq.get(warehouse.engine, 99) is None


def test_pages_read_every_selected_letter_a_few_at_a_time(
    warehouse: Warehouse, decoder: Decoder
) -> None:
    consume(warehouse, decoder, [REFUSED] * 4)
    dlq.mark_replayed(warehouse.engine, [2], datetime.now(UTC))
    every = dlq.pages(warehouse.engine, dlq.Selection(limit=1), size=2)
    assert [letter.id for letter in every] == [1, 3, 4, 5]
    chosen = dlq.pages(warehouse.engine, dlq.Selection(ids=(2, 5)), size=1)
    assert [letter.id for letter in chosen] == [2, 5]


# --- replaying -----------------------------------------------------------------------------------


def replay(warehouse: Warehouse, *ids: int, dry_run: bool = False) -> list[dlq.ReplayResult]:
    letters = dlq.select(warehouse.engine, dlq.Selection(ids=ids))
    return list(dlq.replay(letters, Decoder(), warehouse, GROUP, dry_run=dry_run))


def test_a_rejected_event_is_stored_by_a_replay_after_the_fix(
    warehouse: Warehouse, decoder: Decoder
) -> None:
    consume(warehouse, decoder, ["ada", REFUSED])
    positions = warehouse.positions(GROUP, [(TOPIC, 0)])
    fix(warehouse)
    [result] = replay(warehouse, 1)
    assert result.outcome is dlq.Outcome.STORED, result.detail
    assert result.detail.startswith(ENROLLMENT)
    assert stored_usernames(warehouse) == ["ada", REFUSED]
    letter = dlq.get(warehouse.engine, 1)
    assert letter is not None
    assert letter.replayed_at is not None
    assert warehouse.positions(GROUP, [(TOPIC, 0)]) == positions  # no position moved
    assert letter_ids(warehouse) == [2]  # the garbage one is left

    [again] = replay(warehouse, 1)  # explicitly named: replayed again, harmlessly
    assert again.outcome is dlq.Outcome.ALREADY_STORED
    assert stored_usernames(warehouse) == ["ada", REFUSED]


def test_a_replay_that_still_fails_leaves_the_letter_and_says_why(
    warehouse: Warehouse, decoder: Decoder
) -> None:
    consume(warehouse, decoder, [REFUSED])
    rejected, garbage = replay(warehouse, 1, 2)
    assert rejected.outcome is dlq.Outcome.FAILED
    assert "IntegrityError: learning_course_enrollment: username refused" in rejected.detail
    assert garbage.outcome is dlq.Outcome.FAILED
    assert garbage.detail.startswith("FramingError: magic byte is 0x07")
    assert TOPIC not in garbage.detail  # the reason, without the location printed beside it
    assert letter_ids(warehouse) == [1, 2]  # neither marked replayed
    [letter] = dlq.select(warehouse.engine, dlq.Selection(ids=(1,)))
    assert letter.error_message == f"{TABLE}: username refused"
    assert stored_usernames(warehouse) == []


def test_the_reason_is_found_even_when_warnings_are_not_logged(
    warehouse: Warehouse, decoder: Decoder, caplog: pytest.LogCaptureFixture
) -> None:
    consume(warehouse, decoder, [REFUSED])
    caplog.set_level("ERROR")
    caplog.clear()
    [result] = replay(warehouse, 1)
    assert "username refused" in result.detail
    assert not caplog.records


def test_a_dry_run_decodes_but_writes_nothing(warehouse: Warehouse, decoder: Decoder) -> None:
    consume(warehouse, decoder, [REFUSED])
    fix(warehouse)
    would, fails = replay(warehouse, 1, 2, dry_run=True)
    assert would.outcome is dlq.Outcome.WOULD_REPLAY
    assert fails.outcome is dlq.Outcome.FAILED
    assert stored_usernames(warehouse) == []
    assert letter_ids(warehouse) == [1, 2]


def test_a_letter_without_raw_value_cannot_be_replayed(warehouse: Warehouse) -> None:
    location = MessageLocation(TOPIC, 0, 0)
    old = DeadLetter(location, None, None, (), ENROLLMENT, "DataError", "before raw values")
    warehouse.write(Batch(dead_letters=[old]), GROUP)
    [result] = replay(warehouse, 1)
    assert (result.outcome, result.detail) == (dlq.Outcome.FAILED, dlq.NO_RAW_VALUE)


def test_summary_counts_and_groups_failures_by_reason() -> None:
    def result(letter_id: int, outcome: dlq.Outcome, detail: str) -> dlq.ReplayResult:
        letter = dlq.StoredLetter(
            letter_id, MessageLocation(TOPIC, 0, letter_id), None, b"", [], None, "E", "m",
            datetime.now(UTC), None,
        )  # fmt: skip
        return dlq.ReplayResult(letter, outcome, detail)

    results = [
        result(1, dlq.Outcome.STORED, "x"),
        result(2, dlq.Outcome.ALREADY_STORED, "x"),
        result(3, dlq.Outcome.FAILED, "FramingError: bad"),
        result(4, dlq.Outcome.FAILED, "FramingError: bad"),
        result(5, dlq.Outcome.FAILED, "other"),
    ]
    assert dlq.summary_lines(results) == [
        "replayed 2 (1 stored, 1 already stored), 3 still failing",
        "  2x FramingError: bad (id 3, 4)",
        "  1x other (id 5)",
    ]
    dry = [result(1, dlq.Outcome.WOULD_REPLAY, "x"), result(2, dlq.Outcome.FAILED, "no")]
    [head, _failure] = dlq.summary_lines(dry, dry_run=True)
    assert head == "dry run: 1 would be replayed, 1 still failing"
    many = [result(n, dlq.Outcome.FAILED, "same") for n in range(12)]
    assert dlq.summary_lines(many)[1] == "  12x same (id 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, … 2 more)"


# --- formatting ----------------------------------------------------------------------------------


def test_hex_preview_shows_the_length_and_64_bytes_at_most() -> None:
    assert dlq.hex_preview(None) == "none"
    assert dlq.hex_preview(b"") == "0 bytes"
    assert dlq.hex_preview(b"\x00\xff") == "2 bytes: 00 ff"
    long = dlq.hex_preview(bytes(range(100)))
    assert long.startswith("100 bytes: 00 01 02")
    assert long.endswith("3e 3f … (36 more bytes not shown)")
    assert "40" not in long.split(": ", 1)[1].split(" …")[0].split()


def test_headers_show_as_text_when_they_are_printable_utf8() -> None:
    assert dlq.header_text(b"org.openedx.x.v1") == "org.openedx.x.v1"
    assert dlq.header_text("ünïcode".encode()) == "ünïcode"
    assert dlq.header_text(b"\xff\xfe") == "(not text) 2 bytes: ff fe"
    assert dlq.header_text(b"a\x00b") == "(not text) 3 bytes: 61 00 62"
    assert dlq.header_text(None) == "(no value)"


def test_show_never_prints_the_value_as_text(warehouse: Warehouse, decoder: Decoder) -> None:
    sent = consume(warehouse, decoder, [REFUSED])
    letter = dlq.get(warehouse.engine, 1)
    assert letter is not None
    text = "\n".join(dlq.show_lines(letter))
    assert f"{REFUSED}@example.org" not in text
    assert "value        " in text
    assert f"{len(sent[REFUSED].value)} bytes: 00 00 00 00 01" in text
    assert "framing      Confluent-framed Avro, schema id 1" in text
    assert f"  ce_type: {ENROLLMENT}" in text
    assert "replayed at  not replayed" in text


def test_list_is_a_table(warehouse: Warehouse, decoder: Decoder) -> None:
    consume(warehouse, decoder, [REFUSED])
    header, first, second = dlq.list_lines(dlq.select(warehouse.engine, dlq.Selection()))
    assert header.split() == ["ID", "MESSAGE", "EVENT", "TYPE", "ERROR", "CLASS", "FIRST", "SEEN",
                              "REPLAYED", "AT"]  # fmt: skip
    assert first.split()[:4] == ["1", f"{TOPIC}[0]@0", ENROLLMENT, "IntegrityError"]
    assert second.split()[:4] == ["2", f"{TOPIC}[0]@1", ENROLLMENT, "FramingError"]
    assert first.endswith("-")


# --- the commands --------------------------------------------------------------------------------


@pytest.fixture
def run(url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in ("SINK_SCHEMA_REGISTRY_URL", "SINK_PII", "SINK_TOPICS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SINK_DATABASE_URL", url)
    monkeypatch.setenv("SINK_PII", "keep")
    monkeypatch.setenv("SINK_LOG_LEVEL", "error")

    def invoke(*arguments: str) -> Any:
        return CliRunner().invoke(cli, ["dlq", *arguments])

    return invoke


def test_dlq_commands(run: Any, warehouse: Warehouse, decoder: Decoder) -> None:
    consume(warehouse, decoder, [REFUSED, "ada"])
    listed = run("list")
    assert listed.exit_code == 0, listed.output
    assert len(listed.output.splitlines()) == 3
    assert "1 more" in run("list", "--limit", "1").output
    assert "FramingError" not in run("list", "--error-class", "IntegrityError").output

    shown = run("show", "1")
    assert shown.exit_code == 0
    assert "username refused" in shown.output
    missing = run("show", "42")
    assert missing.exit_code == 1
    assert "no dead letter 42" in missing.output

    assert run("replay").exit_code == 2  # nothing named
    assert run("replay", "1", "--all").exit_code == 2
    assert run("replay", "7").exit_code == 1

    fix(warehouse)
    dry = run("replay", "--all", "--dry-run")
    assert dry.exit_code == 1  # one would still fail
    assert "dry run: 1 would be replayed, 1 still failing" in dry.output
    done = run("replay", "--error-class", "IntegrityError")
    assert done.exit_code == 0, done.output
    assert "replayed 1 (1 stored, 0 already stored), 0 still failing" in done.output
    assert stored_usernames(warehouse) == ["ada", REFUSED]
    assert run("replay", "--error-class", "IntegrityError").output.strip() == "nothing to replay"
    assert "no dead letters left to replay" not in run("list").output
    remaining = run("list").output.splitlines()
    assert len(remaining) == 2
    assert "FramingError" in remaining[1]
    assert len(run("list", "--all").output.splitlines()) == 3


def test_unmigrated_database_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SINK_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    result = CliRunner().invoke(cli, ["dlq", "list"])
    assert result.exit_code != 0
    assert "sink migrate" in str(result.exception)


def test_empty_table(run: Any, url: str) -> None:
    assert run("list").output.strip() == "no dead letters left to replay"
    assert run("list", "--all").output.strip() == "no dead letters"
    with sa.create_engine(url).connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM sink_dead_letter").scalar() == 0
