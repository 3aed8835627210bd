"""``sink demo``: realistic demo data for a local stack (``sink demo produce``)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from sink.config import load_settings
from sink.demo import traffic
from sink.demo.produce import DEFAULT_PARTITIONS, produce
from sink.logs import configure_logging

#: HTTP client loggers of the registry client.


@click.group("demo")
def demo() -> None:
    """Demo data: publish realistic Open edX traffic to Kafka, as Open edX does."""


@demo.command("produce")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file of settings (environment variables SINK_* override it).",
)
@click.option(
    "--events", type=click.IntRange(min=1), required=True, help="How many events to publish."
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    help="Events per second (default: as fast as Kafka takes them).",
)
@click.option(
    "--seed", type=int, default=1, show_default=True, help="Same seed and start: same events."
)
@click.option(
    "--start",
    metavar="ISO-DATE",
    help=f"Start of the {traffic.DAYS}-day timeline (UTC unless it names a zone); default: so "
    "that it ends at the last midnight (UTC).",
)
@click.option(
    "--partitions",
    type=click.IntRange(min=1),
    default=DEFAULT_PARTITIONS,
    show_default=True,
    help="Partitions of the topics it creates.",
)
def produce_command(
    *,
    config_file: Path | None,
    events: int,
    rate: float | None,
    seed: int,
    start: str | None,
    partitions: int,
) -> None:
    """Publish EVENTS events of a coherent Open edX story to Kafka.

    Learners register, log in, enroll, study (tracking logs, grades), pass, earn certificates,
    post in forums, take exams; enterprise learners pay with learner credit. Every message is
    what Open edX sends: Confluent-framed Avro with the schema registered in the Schema Registry,
    CloudEvents headers, Avro-string keys. Topics (prefixed with SINK_TOPIC_PREFIX, created when
    missing): learning-auth, learning-course-lifecycle, learning-certificate-lifecycle,
    learning-discussions, learning-exam-attempt-lifecycle, analytics, enterprise-subsidy.
    """
    settings = load_settings(config_file)
    configure_logging(settings.log_format, settings.log_level)
    begin = None if start is None else _parse_start(start)
    summary = produce(
        settings, traffic.generate(seed, events, begin), rate=rate, partitions=partitions
    )
    click.echo(summary.line())


def _parse_start(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        reason = f"{text!r} is not an ISO 8601 date or time (e.g. 2026-01-05)"
        raise click.BadParameter(reason, param_hint="--start") from None
