"""The sink's settings: one typed object from ``SINK_*`` environment variables and a TOML file.

Precedence, lowest first: defaults, the TOML file (``--config``), environment variables. Every
invalid value fails at start with a :class:`~sink.errors.ConfigError` naming the setting. Secrets
are held in :class:`Secret` so that printing the settings (``sink config``) never shows them.

librdkafka options pass through untouched: ``SINK_KAFKA_SASL_MECHANISM=PLAIN`` becomes
``sasl.mechanism=PLAIN`` (underscores become dots), and the TOML file's ``[kafka]`` table is copied
key for key.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, cast

import attrs
import sqlalchemy as sa

from sink.errors import ConfigError

PiiPolicy = Literal["drop", "hash", "keep"]
PII_POLICIES: tuple[PiiPolicy, ...] = ("drop", "hash", "keep")
ENV_PREFIX = "SINK_"
KAFKA_ENV_PREFIX = "SINK_KAFKA_"


@attrs.frozen(repr=False)
class Secret:
    """A value that must never be printed or logged; ``str()`` and ``repr()`` mask it."""

    value: str

    def __repr__(self) -> str:
        return "Secret('********')"

    def __str__(self) -> str:
        return "********"


@attrs.frozen
class Settings:
    """Effective configuration of the sink.

    Attributes:
        kafka_bootstrap_servers: Kafka bootstrap servers (``host:port,...``).
        topics: Topics to consume; an entry starting with ``^`` is a regular expression.
        topic_prefix: Open edX ``EVENT_BUS_TOPIC_PREFIX``: topic ``<prefix>-<name>``.
        group_id: Kafka consumer group shared by all replicas.
        schema_registry_url: Confluent-compatible Schema Registry; None decodes with local schemas.
        schema_registry_basic_auth: ``user:password`` for the registry, if it needs one.
        schema_registry_timeout_s: Seconds a registry request may take before it is retried.
        database_url: SQLAlchemy URL of the warehouse.
        pii: What to do with personal values: drop (NULL), hash (keyed HMAC-SHA256) or keep.
        pii_hash_key: Secret key of the HMAC when ``pii`` is ``hash``.
        batch_max_messages: Most messages written in one database transaction.
        batch_max_seconds: Longest time a batch collects messages before it is written.
        metrics_port: Port of the Prometheus ``/metrics`` and health endpoints; 0 disables them.
        failure_budget: Consecutive failed attempts after which the daemon exits non-zero.
        log_format: ``text`` or ``json``.
        log_level: Python logging level name.
        kafka_options: Extra librdkafka options, passed through as given.
    """

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    topics: tuple[str, ...] = ()
    topic_prefix: str | None = None
    group_id: str = "openedx-event-sink"
    schema_registry_url: str | None = None
    schema_registry_basic_auth: Secret | None = None
    schema_registry_timeout_s: float = 10.0
    database_url: Secret = Secret("sqlite:///sink.db")
    pii: PiiPolicy = "drop"
    pii_hash_key: Secret | None = None
    batch_max_messages: int = 5000
    batch_max_seconds: float = 1.0
    metrics_port: int = 9108
    failure_budget: int = 10
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    kafka_options: Mapping[str, str] = attrs.field(
        factory=dict, repr=lambda options: repr(_masked_options(options))
    )

    def resolved_topics(self) -> tuple[str, ...]:
        """Topic names (or ``^`` patterns) with the Open edX topic prefix applied."""
        if not self.topic_prefix:
            return self.topics
        return tuple(_prefixed(topic, self.topic_prefix) for topic in self.topics)

    def masked(self) -> dict[str, Any]:
        """The settings as plain values with every secret masked, for display."""
        shown = attrs.asdict(self, recurse=False)
        shown["database_url"] = mask_url(self.database_url.value)
        for name, value in shown.items():
            if isinstance(value, Secret):
                shown[name] = str(value)
            elif isinstance(value, tuple):
                shown[name] = list(value)
        shown["kafka_options"] = _masked_options(self.kafka_options)
        return shown


def _prefixed(topic: str, prefix: str) -> str:
    if topic.startswith("^"):
        return f"^{re.escape(prefix)}-{topic[1:]}"
    return f"{prefix}-{topic}"


def _masked_options(options: Mapping[str, str]) -> dict[str, str]:
    return {key: "********" if _is_secret_option(key) else value for key, value in options.items()}


def _is_secret_option(key: str) -> bool:
    return any(word in key for word in ("password", "secret", "jaas", "key.pem", "token"))


def mask_url(url: str) -> str:
    """A database URL with its password replaced by stars."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "********"


# --- loading ---------------------------------------------------------------------------------


def _text(value: object, setting: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{setting} must be a non-empty string, got {value!r}")
    return value.strip()


def _optional_text(value: object, setting: str) -> str | None:
    if value is None or value == "":
        return None
    return _text(value, setting)


def _topics(value: object, setting: str) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ConfigError(f"{setting} must be a comma-separated list of topics, got {value!r}")
    topics = tuple(item.strip() for item in items if item.strip())
    for topic in topics:
        if topic.startswith("^"):
            try:
                re.compile(topic)
            except re.error as error:
                raise ConfigError(f"{setting}: invalid topic pattern {topic!r}: {error}") from None
    return topics


def _integer(minimum: int) -> Callable[[object, str], int]:
    def parse(value: object, setting: str) -> int:
        try:
            number = int(cast(Any, value))
        except (TypeError, ValueError):
            raise ConfigError(f"{setting} must be an integer, got {value!r}") from None
        if number < minimum:
            raise ConfigError(f"{setting} must be >= {minimum}, got {number}")
        return number

    return parse


def _positive_float(value: object, setting: str) -> float:
    try:
        number = float(cast(Any, value))
    except (TypeError, ValueError):
        raise ConfigError(f"{setting} must be a number, got {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{setting} must be > 0, got {number}")
    return number


def _choice(*choices: str) -> Callable[[object, str], str]:
    def parse(value: object, setting: str) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ConfigError(f"{setting} must be one of {', '.join(choices)}; got {value!r}")
        return text

    return parse


def _secret(value: object, setting: str) -> Secret | None:
    text = _optional_text(value, setting)
    return None if text is None else Secret(text)


def _database_url(value: object, setting: str) -> Secret:
    url = _text(value, setting)
    try:
        sa.make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigError(f"{setting} is not a database URL (e.g. sqlite:///sink.db)") from None
    return Secret(url)


Parser = Callable[[object, str], object]

# setting name → parser; the environment variable is SINK_<NAME upper-cased>.
PARSERS: dict[str, Parser] = {
    "kafka_bootstrap_servers": _text,
    "topics": _topics,
    "topic_prefix": _optional_text,
    "group_id": _text,
    "schema_registry_url": _optional_text,
    "schema_registry_basic_auth": _secret,
    "schema_registry_timeout_s": _positive_float,
    "database_url": _database_url,
    "pii": _choice(*PII_POLICIES),
    "pii_hash_key": _secret,
    "batch_max_messages": _integer(1),
    "batch_max_seconds": _positive_float,
    "metrics_port": _integer(0),
    "failure_budget": _integer(1),
    "log_format": _choice("text", "json"),
    "log_level": _choice("debug", "info", "warning", "error"),
}


def env_name(setting: str) -> str:
    return ENV_PREFIX + setting.upper()


def load_settings(
    config_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from defaults, then the TOML file, then ``SINK_*`` environment variables."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    kafka_options: dict[str, str] = {}
    if config_file is not None:
        file_values = _read_toml(config_file)
        kafka_options.update(_kafka_table(file_values.pop("kafka", {}), config_file))
        for key, value in file_values.items():
            if key not in PARSERS:
                known = ", ".join(sorted(PARSERS))
                raise ConfigError(f"{config_file}: unknown setting {key!r} (known: {known})")
            values[key] = PARSERS[key](value, f"{key} in {config_file}")
    for setting, parse in PARSERS.items():
        name = env_name(setting)
        if name in environ:
            values[setting] = parse(environ[name], name)
    kafka_options.update(_kafka_environment(environ))
    if "log_level" in values:
        values["log_level"] = str(values["log_level"]).upper()
    settings = Settings(kafka_options=kafka_options, **values)  # type: ignore[arg-type]
    _check(settings)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"--config: file {path} not found") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"--config: {path} is not valid TOML: {error}") from None


def _kafka_table(table: object, path: Path) -> dict[str, str]:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [kafka] must be a table of librdkafka options")
    return {str(key): _librdkafka_value(value) for key, value in table.items()}


def _librdkafka_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _kafka_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``SINK_KAFKA_SASL_MECHANISM=PLAIN`` → ``{"sasl.mechanism": "PLAIN"}``."""
    own = env_name("kafka_bootstrap_servers")
    return {
        name.removeprefix(KAFKA_ENV_PREFIX).lower().replace("_", "."): value
        for name, value in environ.items()
        if name.startswith(KAFKA_ENV_PREFIX) and name != own
    }


def _check(settings: Settings) -> None:
    """Rules that involve several settings."""
    if settings.pii == "hash" and settings.pii_hash_key is None:
        raise ConfigError(
            f"{env_name('pii')}=hash needs a secret key: set {env_name('pii_hash_key')}"
        )
