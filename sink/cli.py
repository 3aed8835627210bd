"""The ``sink`` command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import click
import sqlalchemy as sa

from sink import __version__, catalog, dlq, flatten, replay, schema_check
from sink.avro_schema import canonical_schema
from sink.config import Settings, load_settings, mask_url
from sink.daemon import run_daemon
from sink.decoder import Decoder
from sink.demo.command import demo
from sink.errors import ConfigError, SinkError, UnknownEventTypeError
from sink.forget import forget_user
from sink.logs import configure_logging
from sink.reports.command import report_command
from sink.writer import Warehouse
from sink.writer.failures import as_sink_error, classify


@click.group()
@click.version_option(__version__, prog_name="sink")
def cli() -> None:
    """openedx-event-sink: Open edX event-bus topics into a SQL warehouse."""


CONFIG_OPTION = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file of settings (environment variables SINK_* override it).",
)


def _settings(config_file: Path | None) -> Settings:
    settings = load_settings(config_file)
    configure_logging(settings.log_format, settings.log_level)
    return settings


@cli.command()
@CONFIG_OPTION
@click.option(
    "--stop-at-end",
    is_flag=True,
    help="Exit once every assigned partition is caught up (batch or backfill mode).",
)
def run(config_file: Path | None, stop_at_end: bool) -> None:
    """Run the sink: consume the topics, decode, write to the warehouse exactly once."""
    run_daemon(_settings(config_file), stop_at_end=stop_at_end)


@cli.command()
@CONFIG_OPTION
def migrate(config_file: Path | None) -> None:
    """Create or upgrade the warehouse tables to this version (safe with several replicas)."""
    settings = _settings(config_file)
    revision = schema_check.migrate(settings.database_url.value)
    click.echo(f"warehouse {mask_url(settings.database_url.value)} is at revision {revision}")


@cli.command("forget-user")
@CONFIG_OPTION
@click.argument("user_id", type=int)
@click.option(
    "--also",
    multiple=True,
    help="Another identifier of the user to erase (old username, anonymous id); repeatable.",
)
def forget_user_command(config_file: Path | None, user_id: int, also: tuple[str, ...]) -> None:
    """Erase every personal value of USER_ID across all tables, in one transaction."""
    settings = _settings(config_file)
    warehouse = Warehouse.from_settings(settings)
    try:
        warehouse.check_schema()
        key = settings.pii_hash_key.value.encode() if settings.pii_hash_key else None
        decoder = Decoder.from_settings(settings)
        changed = forget_user(warehouse.engine, user_id, also=also, pii_key=key, decoder=decoder)
    finally:
        warehouse.close()
    if not changed:
        click.echo(f"no personal value of user {user_id} was stored")
    for table, rows in changed.items():
        click.echo(f"{table}: {rows} row(s) redacted")


@cli.command()
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Aligned text table, or a JSON list of objects.",
)
@click.option(
    "--columns",
    "list_columns",
    is_flag=True,
    help="List the payload columns of every table instead: type, nullability, personal data, "
    "and the full path of names shortened to fit 63 characters.",
)
def events(output_format: str, list_columns: bool) -> None:
    """List the event types the sink consumes, their payload class and table."""
    if list_columns:
        _echo_columns(output_format)
        return
    specs = catalog.all_specs()
    if output_format == "json":
        click.echo(json.dumps([_spec_as_json(spec) for spec in specs], indent=2))
        return
    rows = [("EVENT TYPE", "DATA CLASS", "TABLE")]
    rows += [(spec.event_type, spec.data_class.__name__, spec.table) for spec in specs]
    for row in _aligned(rows):
        click.echo(row)


@cli.command()
@click.argument("event_type", required=False)
def schemas(event_type: str | None) -> None:
    """Print the canonical Avro schema of EVENT_TYPE, or of every event type keyed by type."""
    if event_type is None:
        every = {spec.event_type: canonical_schema(spec) for spec in catalog.all_specs()}
        click.echo(json.dumps(every, indent=2))
        return
    try:
        spec = catalog.spec_for(event_type)
    except UnknownEventTypeError as error:
        hint = "`sink events` lists the known ones"
        raise click.BadParameter(f"{error}; {hint}", param_hint="EVENT_TYPE") from None
    click.echo(json.dumps(canonical_schema(spec), indent=2))


cli.add_command(report_command)
cli.add_command(demo)


@cli.command("config")
@CONFIG_OPTION
def show_config(config_file: Path | None) -> None:
    """Print the effective configuration as JSON, secrets masked."""
    click.echo(json.dumps(load_settings(config_file).masked(), indent=2))


@contextmanager
def _warehouse(settings: Settings) -> Iterator[Warehouse]:
    """The settings' warehouse, checked to be migrated, closed afterwards."""
    warehouse = Warehouse.from_settings(settings)
    try:
        warehouse.check_schema()
        yield warehouse
    finally:
        warehouse.close()


# --- sink replay ---------------------------------------------------------------------------------


@cli.command("replay")
@CONFIG_OPTION
@click.option(
    "--from",
    "from_time",
    metavar="ISO_TIME",
    help="Re-read from the first message at or after this time (ISO 8601, UTC unless it names "
    "a zone). Only rewinds: no position moves forward.",
)
@click.option(
    "--from-offset",
    type=click.IntRange(min=0),
    help="Re-read from this offset in every partition (clamped to what the partition holds). "
    "May move positions forward, skipping messages: warned.",
)
@click.option(
    "--topic",
    "only",
    multiple=True,
    help="Only this topic of the group (repeatable); default: all the group's topics.",
)
@click.option("--yes", is_flag=True, help="Apply without asking (required when not interactive).")
def replay_command(
    config_file: Path | None,
    from_time: str | None,
    from_offset: int | None,
    only: tuple[str, ...],
    yes: bool,
) -> None:
    """Rewind the group's positions (database and Kafka) to re-read from a time or an offset.

    Shows the stored and new position of every partition and asks before applying. Stop every
    `sink run` of the group first: the replay refuses while the group has active members. Then
    start the sink again; events stored already are skipped when re-read.
    """
    if (from_time is None) == (from_offset is None):
        raise click.UsageError("give one of --from ISO_TIME or --from-offset N")
    when = None if from_time is None else _parse_time(from_time)
    settings = _settings(config_file)
    kafka = replay.KafkaGroup(settings)
    try:
        with _warehouse(settings) as warehouse:
            moves = replay.plan(
                kafka, warehouse, settings, when=when, offset=from_offset, only=only
            )
            _show_plan(moves, settings.group_id, when, from_offset)
            if not replay.new_positions(moves):
                click.echo("nothing to change")
                return
            replay.ensure_group_stopped(kafka, settings.group_id)
            _confirm(f"Move {len(replay.new_positions(moves))} position(s) of group "
                     f"{settings.group_id}?", yes)  # fmt: skip
            moved = replay.apply(moves, kafka, warehouse, settings.group_id)
    finally:
        kafka.close()
    click.echo(
        f"moved {moved} position(s) of group {settings.group_id} in the database and Kafka; "
        "the next `sink run` reads from there (events stored already are skipped)"
    )


def _parse_time(text: str) -> datetime:
    try:
        return replay.parse_time(text)
    except ValueError:
        reason = f"{text!r} is not an ISO 8601 time (e.g. 2026-03-04T05:06:07Z)"
        raise click.BadParameter(reason, param_hint="--from") from None


def _show_plan(
    moves: Sequence[replay.Move], group_id: str, when: datetime | None, offset: int | None
) -> None:
    origin = f"offset {offset}" if when is None else when.isoformat()
    click.echo(f"replay of group {group_id} from {origin}:")
    for line in replay.plan_lines(moves):
        click.echo(line)
    for warning in replay.forward_warnings(moves):
        click.echo(warning, err=True)


def _interactive() -> bool:
    """Whether someone can answer a question (stdin is a terminal)."""
    return sys.stdin.isatty()


def _confirm(question: str, yes: bool) -> None:
    """Return when confirmed (``--yes``, or the user says yes); refuse when nobody can answer."""
    if yes:
        return
    if not _interactive():
        raise click.ClickException(
            "not applied: stdin is not a terminal, so nobody can confirm; pass --yes to apply"
        )
    click.confirm(question, abort=True)


# --- sink dlq ------------------------------------------------------------------------------------


@cli.group("dlq")
def dlq_group() -> None:
    """Inspect and replay dead letters: messages the sink could not store."""


@dlq_group.command("list")
@CONFIG_OPTION
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=dlq.DEFAULT_LIMIT,
    show_default=True,
    help="Show at most this many (oldest first).",
)
@click.option("--error-class", help="Only dead letters of this error class.")
@click.option("--topic", help="Only dead letters of this topic.")
@click.option("--all", "include_replayed", is_flag=True, help="Include those replayed already.")
def dlq_list(
    config_file: Path | None,
    limit: int,
    error_class: str | None,
    topic: str | None,
    include_replayed: bool,
) -> None:
    """List dead letters (by default those not replayed yet)."""
    selection = dlq.Selection(
        error_class=error_class, topic=topic, include_replayed=include_replayed, limit=limit
    )
    with _warehouse(_settings(config_file)) as warehouse:
        letters = dlq.select(warehouse.engine, selection)
        total = dlq.count(warehouse.engine, selection)
    if not letters:
        click.echo("no dead letters" + ("" if include_replayed else " left to replay"))
        return
    for line in dlq.list_lines(letters):
        click.echo(line)
    if total > len(letters):
        click.echo(f"... and {total - len(letters)} more (--limit shows more)")


@dlq_group.command("show")
@CONFIG_OPTION
@click.argument("letter_id", metavar="ID", type=int)
def dlq_show(config_file: Path | None, letter_id: int) -> None:
    """Show every field of dead letter ID (key and value as length and hex preview only)."""
    with _warehouse(_settings(config_file)) as warehouse:
        letter = dlq.get(warehouse.engine, letter_id)
    if letter is None:
        raise click.ClickException(f"no dead letter {letter_id} (`sink dlq list --all` lists them)")
    for line in dlq.show_lines(letter):
        click.echo(line)


@dlq_group.command("replay")
@CONFIG_OPTION
@click.argument("letter_ids", metavar="[ID]...", nargs=-1, type=int)
@click.option("--all", "replay_all", is_flag=True, help="Every dead letter not replayed yet.")
@click.option("--error-class", help="Every dead letter of this class not replayed yet.")
@click.option("--dry-run", is_flag=True, help="Decode only: say what would be replayed.")
def dlq_replay(
    config_file: Path | None,
    letter_ids: tuple[int, ...],
    replay_all: bool,
    error_class: str | None,
    dry_run: bool,
) -> None:
    """Decode dead letters again and store their events (after a fix), positions untouched.

    Uses the current settings (schema registry, PII policy). A replayed dead letter gets its
    `replayed_at` set; one that still fails is left as it is, with the reason printed. IDs are
    replayed even when replayed already (harmless: events are stored once); --all and
    --error-class pick those not replayed yet. Exits 1 when any still fails.
    """
    selection = _replay_selection(letter_ids, replay_all, error_class)
    settings = _settings(config_file)
    with _warehouse(settings) as warehouse:
        if missing := sorted(set(letter_ids) - _existing(warehouse, letter_ids)):
            raise click.ClickException(f"no dead letter {', '.join(map(str, missing))}")
        results = []
        replaying = dlq.replay(
            dlq.pages(warehouse.engine, selection),
            Decoder.from_settings(settings),
            warehouse,
            settings.group_id,
            dry_run=dry_run,
        )
        for result in replaying:
            click.echo(result.line())
            results.append(result)
    if not results:
        click.echo("nothing to replay")
        return
    for line in dlq.summary_lines(results, dry_run=dry_run):
        click.echo(line)
    if any(not result.outcome.succeeded for result in results):
        sys.exit(1)


def _existing(warehouse: Warehouse, letter_ids: Sequence[int]) -> set[int]:
    if not letter_ids:
        return set()
    found = dlq.select(warehouse.engine, dlq.Selection(ids=tuple(letter_ids)))
    return {letter.id for letter in found}


def _replay_selection(
    letter_ids: tuple[int, ...], replay_all: bool, error_class: str | None
) -> dlq.Selection:
    if letter_ids and (replay_all or error_class):
        raise click.UsageError("give dead letter IDs, or --all / --error-class, not both")
    if not (letter_ids or replay_all or error_class):
        raise click.UsageError("name the dead letters: IDs, --all or --error-class CLASS")
    return dlq.Selection(ids=letter_ids, error_class=error_class)


def _spec_as_json(spec: catalog.EventSpec) -> dict[str, str]:
    return {
        "event_type": spec.event_type,
        "data_key": spec.data_key,
        "data_class": spec.data_class.__name__,
        "table": spec.table,
    }


def _aligned(rows: list[tuple[str, str, str]]) -> list[str]:
    """Left-align the columns of ``rows`` two spaces apart."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _column_rows() -> list[dict[str, str | bool]]:
    """One row per payload column of every event and child table, in catalog order."""
    rows: list[dict[str, str | bool]] = []
    for model in flatten.all_models():
        tables = [(model.name, model.columns)]
        tables += [(child.name, child.columns) for child in model.children]
        rows += [
            {
                "table": table,
                "column": column.name,
                "type": column.type.value,
                "nullable": column.nullable,
                "personal": column.personal,
                "full_path": column.full_name,
            }
            for table, columns in tables
            for column in columns
        ]
    return rows


def _echo_columns(output_format: str) -> None:
    rows = _column_rows()
    if output_format == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    lines = [("TABLE", "COLUMN", "TYPE", "NULL", "PERSONAL", "FULL PATH (IF SHORTENED)")]
    lines += [
        (
            str(row["table"]),
            str(row["column"]),
            str(row["type"]),
            "yes" if row["nullable"] else "no",
            "yes" if row["personal"] else "",
            "" if row["full_path"] == row["column"] else str(row["full_path"]),
        )
        for row in rows
    ]
    widths = [max(len(line[index]) for line in lines) for index in range(len(lines[0]))]
    for line in lines:
        click.echo("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def main() -> None:
    """Console-script entry point: report sink errors as one clear line, exit non-zero.

    Exit status 2 means the settings (or the database schema) need fixing; 1 any other failure.
    """
    try:
        try:
            cli(standalone_mode=True)
        except sa.exc.DBAPIError as error:  # from a command's own queries, outside the writer
            raise as_sink_error(error, classify(error)) from error
    except SinkError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2 if isinstance(error, ConfigError) else 1)
