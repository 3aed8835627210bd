"""The ``sink`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from sink import __version__, catalog, flatten, schema_check
from sink.avro_schema import canonical_schema
from sink.config import Settings, load_settings, mask_url
from sink.daemon import run_daemon
from sink.errors import ConfigError, SinkError, UnknownEventTypeError
from sink.forget import forget_user
from sink.logs import configure_logging
from sink.writer import Warehouse


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
        schema_check.ensure_at_head(warehouse.engine)
        key = settings.pii_hash_key.value.encode() if settings.pii_hash_key else None
        changed = forget_user(warehouse.engine, user_id, also=also, pii_key=key)
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


@cli.command("config")
@CONFIG_OPTION
def show_config(config_file: Path | None) -> None:
    """Print the effective configuration as JSON, secrets masked."""
    click.echo(json.dumps(load_settings(config_file).masked(), indent=2))


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
        cli(standalone_mode=True)
    except SinkError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2 if isinstance(error, ConfigError) else 1)
