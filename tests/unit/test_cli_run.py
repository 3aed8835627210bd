"""`sink run` and `sink migrate` as an operator meets them: exit codes and messages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _sink(*arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("SINK_")}
    return subprocess.run(
        [sys.executable, "-m", "sink", *arguments],
        env={**clean, **environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_run_refuses_an_unmigrated_database_and_says_what_to_do(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    result = _sink("run", SINK_DATABASE_URL=url, SINK_TOPICS="t", SINK_METRICS_PORT="0")
    assert result.returncode == 2
    assert "run `sink migrate`" in result.stderr
    assert "Traceback" not in result.stderr

    migrated = _sink("migrate", SINK_DATABASE_URL=url)
    assert migrated.returncode == 0, migrated.stderr
    assert "is at revision" in migrated.stdout


def test_run_without_topics_names_the_setting(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    assert _sink("migrate", SINK_DATABASE_URL=url).returncode == 0
    result = _sink("run", SINK_DATABASE_URL=url, SINK_METRICS_PORT="0")
    assert result.returncode == 2
    assert "SINK_TOPICS" in result.stderr


def test_invalid_setting_fails_at_start_with_its_name() -> None:
    result = _sink("run", SINK_BATCH_MAX_MESSAGES="lots")
    assert result.returncode == 2
    assert "SINK_BATCH_MAX_MESSAGES" in result.stderr
