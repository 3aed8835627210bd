"""The wheel: an installed sink (no checkout around it) migrates a warehouse.

The migrations live at the top of the checkout (``migrations/``); the wheel carries them as
``sink/migrations`` (``pyproject.toml``). This builds the wheel, installs it without dependencies
into a folder of its own, and runs ``python -m sink migrate`` from there, far from the checkout,
with the development environment's dependencies.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_every_package_of_sink_is_in_the_wheel_list() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    inits = (REPO / "sink").rglob("__init__.py")
    on_disk = {".".join(init.parent.relative_to(REPO).parts) for init in inits}
    assert on_disk <= listed
    assert {"sink.migrations", "sink.migrations.versions"} <= listed


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheels, target = tmp_path_factory.mktemp("wheels"), tmp_path_factory.mktemp("site")
    pip = [sys.executable, "-m", "pip"]
    build = [*pip, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(REPO)]
    subprocess.run(build, check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("*.whl")
    install = [*pip, "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    return target


def test_an_installed_sink_migrates_without_the_checkout(installed: Path, tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SINK_")}
    environment |= {"PYTHONPATH": str(installed), "SINK_DATABASE_URL": "sqlite:///warehouse.db"}
    where = [sys.executable, "-c", "import sink.schema_check as s; print(s.MIGRATIONS)"]
    found = subprocess.run(
        where, cwd=tmp_path, env=environment, check=True, capture_output=True, text=True
    )
    assert Path(found.stdout.strip()) == installed / "sink" / "migrations"
    migrate = [sys.executable, "-m", "sink", "migrate"]
    result = subprocess.run(
        migrate, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "is at revision" in result.stdout
    assert (tmp_path / "warehouse.db").stat().st_size > 0
