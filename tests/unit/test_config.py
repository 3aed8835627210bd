"""Settings: sources, precedence, validation messages and secret masking."""

from __future__ import annotations

import json
import re
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner

from sink.cli import cli
from sink.config import Secret, Settings, env_name, load_settings
from sink.errors import ConfigError


def test_defaults_need_no_environment() -> None:
    settings = load_settings(environ={})
    assert settings.group_id == "openedx-event-sink"
    assert settings.database_url.value == "sqlite:///sink.db"
    assert settings.pii == "drop"
    assert settings.topics == ()


def test_environment_overrides_file(tmp_path: Path) -> None:
    config = tmp_path / "sink.toml"
    config.write_text('group_id = "from-file"\ntopics = ["a", "b"]\nbatch_max_messages = 10\n')
    settings = load_settings(config, environ={"SINK_GROUP_ID": "from-env"})
    assert settings.group_id == "from-env"
    assert settings.topics == ("a", "b")
    assert settings.batch_max_messages == 10


def test_topics_prefix_and_patterns() -> None:
    settings = load_settings(
        environ={
            "SINK_TOPICS": "learning-course-lifecycle, ^analytics.*",
            "SINK_TOPIC_PREFIX": "prod",
        }
    )
    assert settings.topics == ("learning-course-lifecycle", "^analytics.*")
    assert settings.resolved_topics() == ("prod-learning-course-lifecycle", "^prod-analytics.*")


def test_librdkafka_options_pass_through(tmp_path: Path) -> None:
    config = tmp_path / "sink.toml"
    config.write_text('[kafka]\n"security.protocol" = "SASL_SSL"\n"enable.idempotence" = true\n')
    settings = load_settings(
        config,
        environ={"SINK_KAFKA_SASL_MECHANISM": "PLAIN", "SINK_KAFKA_BOOTSTRAP_SERVERS": "k:9092"},
    )
    assert settings.kafka_bootstrap_servers == "k:9092"
    assert settings.kafka_options == {
        "security.protocol": "SASL_SSL",
        "enable.idempotence": "true",
        "sasl.mechanism": "PLAIN",
    }


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"SINK_BATCH_MAX_MESSAGES": "many"}, "SINK_BATCH_MAX_MESSAGES"),
        ({"SINK_BATCH_MAX_MESSAGES": "0"}, "SINK_BATCH_MAX_MESSAGES"),
        ({"SINK_BATCH_MAX_SECONDS": "-1"}, "SINK_BATCH_MAX_SECONDS"),
        ({"SINK_SCHEMA_REGISTRY_TIMEOUT_S": "0"}, "SINK_SCHEMA_REGISTRY_TIMEOUT_S"),
        ({"SINK_PII": "shred"}, "SINK_PII"),
        ({"SINK_PII": "hash"}, "SINK_PII_HASH_KEY"),
        ({"SINK_DATABASE_URL": "not a url"}, "SINK_DATABASE_URL"),
        ({"SINK_TOPICS": "^(unclosed"}, "SINK_TOPICS"),
        ({"SINK_GROUP_ID": " "}, "SINK_GROUP_ID"),
        ({"SINK_LOG_FORMAT": "xml"}, "SINK_LOG_FORMAT"),
    ],
)
def test_invalid_settings_name_the_setting(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(environ=environ)


def test_unknown_file_setting_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "sink.toml"
    config.write_text("batch_size = 3\n")
    with pytest.raises(ConfigError, match="unknown setting 'batch_size'"):
        load_settings(config, environ={})


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml", environ={})
    broken = tmp_path / "broken.toml"
    broken.write_text("topics = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken, environ={})


def test_secrets_never_shown() -> None:
    settings = load_settings(
        environ={
            "SINK_DATABASE_URL": "postgresql+psycopg://sink:hunter2@db:5432/sink",
            "SINK_SCHEMA_REGISTRY_BASIC_AUTH": "user:hunter2",
            "SINK_PII": "hash",
            "SINK_PII_HASH_KEY": "hunter2",
            "SINK_KAFKA_SASL_PASSWORD": "hunter2",
        }
    )
    shown = json.dumps(settings.masked())
    assert "hunter2" not in shown
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings)
    assert settings.pii_hash_key == Secret("hunter2")
    assert "postgresql+psycopg://sink:***@db:5432/sink" in shown


def test_sink_config_command_prints_masked_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SINK_DATABASE_URL", "postgresql+psycopg://sink:hunter2@db/sink")
    monkeypatch.setenv("SINK_TOPICS", "a,b")
    result = CliRunner().invoke(cli, ["config"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["topics"] == ["a", "b"]
    assert "hunter2" not in result.output
    assert Settings().group_id == shown["group_id"]


def test_readme_lists_every_setting() -> None:
    """The README's configuration table and the settings have the same variables."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    listed = set(re.findall(r"^\| `(SINK_[A-Z_<>]+)` \|", readme, flags=re.MULTILINE))
    names = {env_name(field.name) for field in attrs.fields(Settings)} - {"SINK_KAFKA_OPTIONS"}
    assert listed == names | {"SINK_KAFKA_<OPTION>"}
