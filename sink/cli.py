"""The ``sink`` command line."""

from __future__ import annotations

import sys

import click

from sink import __version__
from sink.errors import SinkError


@click.group()
@click.version_option(__version__, prog_name="sink")
def cli() -> None:
    """openedx-event-sink: Open edX event-bus topics into a SQL warehouse."""


@cli.command()
def run() -> None:
    """Run the sink daemon (consume, decode, write). Not built yet."""
    raise click.ClickException(
        "`sink run` is not built yet: the consumer daemon is tracked in the project's issues. "
        "Today the package provides the local service harness and its tests."
    )


def main() -> None:
    """Console-script entry point: report sink errors as one clear line, exit non-zero."""
    try:
        cli(standalone_mode=True)
    except SinkError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
