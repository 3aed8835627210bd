"""Print the requirements of pyproject.toml, one per line, for the image's dependency layer.

The Dockerfile installs these before it copies the source, so that editing the code does not
reinstall the dependencies (only a change of pyproject.toml does). Printed: the build system's
requirements (the package is then installed with ``--no-build-isolation``), the runtime
dependencies, and those of the extras named with ``--extras`` (comma-separated, e.g. ``duckdb``).
Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path


def requirements(pyproject: Path, extras: list[str]) -> list[str]:
    """Build requirements, runtime dependencies, then those of each extra, in that order."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    project = data["project"]
    optional = project.get("optional-dependencies", {})
    unknown = sorted(set(extras) - set(optional))
    if unknown:
        known = ", ".join(sorted(optional)) or "none"
        raise SystemExit(f"unknown extra(s) {', '.join(unknown)} (known: {known})")
    lines = [*data["build-system"]["requires"], *project["dependencies"]]
    for extra in extras:
        lines.extend(optional[extra])
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject", type=Path)
    parser.add_argument("--extras", default="", help="comma-separated extras, e.g. duckdb")
    arguments = parser.parse_args(argv)
    extras = [name.strip() for name in arguments.extras.split(",") if name.strip()]
    sys.stdout.write("".join(f"{line}\n" for line in requirements(arguments.pyproject, extras)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
