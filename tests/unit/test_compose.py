"""docker-compose.yml, the Dockerfile and .dockerignore, checked structurally against the code.

No Docker engine runs on the project's machines, so nothing here starts a container. Instead every
fact the stack depends on is read from where it is defined: settings from ``sink.config``,
subcommands from the click tree of ``sink.cli``, the alembic layout from ``sink.schema_check``,
host ports from ``scripts/services env`` and the default topic pattern from the Makefile.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import attrs
import click
import pytest
import sqlalchemy as sa
import yaml
from confluent_kafka import Consumer

from sink import schema_check
from sink.cli import cli
from sink.config import ENV_PREFIX, KAFKA_ENV_PREFIX, Settings, env_name, load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

INFRASTRUCTURE = ("kafka", "registry", "postgres")
SINK_SERVICES = ("migrate", "sink", "demo")
EXPECTED_SERVICES = {*INFRASTRUCTURE, *SINK_SERVICES, "metabase"}
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
KAFKA_INTERNAL_TOPICS = ("__consumer_offsets", "__transaction_state", "__share_group_state")

Service = dict[str, Any]


# --- reading the files ---------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def services() -> dict[str, Service]:
    found = compose()["services"]
    assert isinstance(found, dict)
    return found


def environment(service: Service) -> dict[str, str]:
    """A service's environment as strings, in either of compose's two spellings."""
    raw = service.get("environment", {})
    if isinstance(raw, list):
        return dict(str(item).split("=", 1) for item in raw)
    return {str(name): str(value) for name, value in raw.items()}


def command(service: Service) -> list[str]:
    raw = service.get("command", [])
    return raw.split() if isinstance(raw, str) else [str(word) for word in raw]


def sink_image_services() -> dict[str, Service]:
    """Services that run the image built from this repository's Dockerfile."""
    return {
        name: service
        for name, service in services().items()
        if isinstance(service.get("build"), dict | str)
    }


def build_context(service: Service) -> str:
    build = service["build"]
    return str(build if isinstance(build, str) else build.get("context", "."))


class Instruction(NamedTuple):
    keyword: str
    arguments: str


@cache
def dockerfile() -> tuple[Instruction, ...]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return tuple(instructions)


def exec_form(arguments: str) -> list[str]:
    parsed = json.loads(arguments)
    assert isinstance(parsed, list), f"expected the JSON (exec) form, got {arguments!r}"
    return [str(word) for word in parsed]


class Copy(NamedTuple):
    sources: tuple[str, ...]
    destination: PurePosixPath  # absolute


def copies() -> Iterator[Copy]:
    """Each COPY of the build context, with its destination resolved against WORKDIR."""
    workdir = PurePosixPath("/")
    for instruction in dockerfile():
        if instruction.keyword == "WORKDIR":
            workdir = workdir / instruction.arguments
        elif instruction.keyword == "COPY":
            words = [w for w in instruction.arguments.split() if not w.startswith("--")]
            *sources, destination = words
            yield Copy(tuple(sources), workdir / destination)


def run_steps() -> Iterator[tuple[PurePosixPath, str]]:
    """Each RUN's shell command with the WORKDIR it runs in."""
    workdir = PurePosixPath("/")
    for instruction in dockerfile():
        if instruction.keyword == "WORKDIR":
            workdir = workdir / instruction.arguments
        elif instruction.keyword == "RUN":
            yield workdir, instruction.arguments


def dockerignore_excludes(path: str) -> bool:
    """Whether Docker leaves ``path`` (relative, /-separated) out of the build context.

    Docker's rules: patterns are matched in order and the last one matching wins; ``!`` re-includes;
    ``*`` stays within a path segment and ``**`` spans any number of them; a pattern that matches a
    directory matches everything below it.
    """
    excluded = False
    for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").strip("/")
        regex = re.compile(_glob_regex(pattern))
        parts = path.split("/")
        prefixes = ("/".join(parts[: i + 1]) for i in range(len(parts)))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            excluded = not negated
    return excluded


def _glob_regex(pattern: str) -> str:
    regex, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex, i = regex + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            regex, i = regex + ".*", i + 2
        elif pattern[i] == "*":
            regex, i = regex + "[^/]*", i + 1
        elif pattern[i] == "?":
            regex, i = regex + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            regex, i = regex + pattern[i : end + 1], end + 1
        else:
            regex, i = regex + re.escape(pattern[i]), i + 1
    return regex


@cache
def host_environment() -> dict[str, str]:
    """``scripts/services env``: the settings a sink on the host uses for the local services."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "services"), "env"],
        capture_output=True,
        text=True,
        check=True,
    )
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in result.stdout.splitlines()
        if line.startswith("export ")
    )
    assert exports, f"scripts/services env printed no export lines: {result.stdout!r}"
    return exports


class PortMapping(NamedTuple):
    host_ip: str
    published: range
    target: int


def port_mappings(service: Service) -> list[PortMapping]:
    """Short-syntax ``[ip:]published[-end]:target`` port entries of a service."""
    mappings = []
    for entry in service.get("ports", []):
        assert isinstance(entry, str), f"use the short port syntax: {entry!r}"
        *host, target = entry.split(":")
        assert len(host) == 2, f"{entry!r}: bind host ports to an address (127.0.0.1)"
        first, _, last = host[1].partition("-")
        mappings.append(
            PortMapping(host[0], range(int(first), int(last or first) + 1), int(target))
        )
    return mappings


def published_as(service: Service, host_port: int) -> int:
    """The container port that ``host_port`` on 127.0.0.1 reaches."""
    for mapping in port_mappings(service):
        if host_port in mapping.published:
            assert mapping.host_ip == "127.0.0.1"
            return mapping.target
    raise AssertionError(f"host port {host_port} is not published by {service.get('image')}")


def setting_variables() -> set[str]:
    """SINK_<NAME> for every field of Settings (kafka_options is the SINK_KAFKA_* family)."""
    return {
        env_name(field.name) for field in attrs.fields(Settings) if field.name != "kafka_options"
    }


def resolve_subcommand(words: Sequence[str]) -> tuple[click.Command, list[str], list[str]]:
    """Walk ``sink``'s click tree along ``words``: the command reached, its path, the rest."""
    current: click.Command = cli
    path: list[str] = []
    rest = list(words)
    while isinstance(current, click.Group) and rest:
        name = rest.pop(0)
        found = current.commands.get(name)
        assert found is not None, (
            f"`sink {' '.join([*path, name])}` is not a command; "
            f"`sink {' '.join(path)}` has {sorted(current.commands)}"
        )
        current, path = found, [*path, name]
    return current, path, rest


# --- the compose file ----------------------------------------------------------------------------


def test_expected_services_exist() -> None:
    missing = EXPECTED_SERVICES - set(services())
    assert not missing, f"docker-compose.yml lacks {sorted(missing)}"


def test_every_image_is_pinned_or_built() -> None:
    for name, service in services().items():
        if "build" in service:
            assert build_context(service) == ".", f"{name}: builds from elsewhere than the repo"
            continue
        image = service.get("image")
        assert isinstance(image, str), f"{name}: neither an image nor a build"
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: image {image!r} has no tag"
        assert "/" not in tag, f"{name}: image {image!r} has no tag"
        assert tag != "latest", f"{name}: image {image!r} is not pinned"
        assert re.search(r"\d", tag), f"{name}: image tag {tag!r} names no version"


def test_services_of_the_sink_image_share_one_build() -> None:
    built = sink_image_services()
    assert set(SINK_SERVICES) <= set(built), "migrate, sink and demo must run the built image"
    assert len({service.get("image") for service in built.values()}) == 1
    for service in built.values():
        build = service["build"]
        dockerfile_name = build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else None
        assert (ROOT / build_context(service) / (dockerfile_name or "Dockerfile")) == DOCKERFILE


def test_sink_environment_variables_are_real_settings() -> None:
    known = setting_variables()
    assert "SINK_DATABASE_URL" in known  # the derivation itself works
    for name, service in services().items():
        for variable in environment(service):
            if not variable.startswith(ENV_PREFIX):
                continue
            assert variable in known or variable.startswith(KAFKA_ENV_PREFIX), (
                f"{name}: {variable} is not a setting of sink.config (known: {sorted(known)})"
            )


@pytest.mark.parametrize("name", SINK_SERVICES)
def test_sink_environment_loads_as_the_sink_loads_it(name: str) -> None:
    env = environment(services()[name])
    settings = load_settings(environ=env)  # raises ConfigError naming any invalid value
    for variable, value in env.items():
        if variable.startswith(KAFKA_ENV_PREFIX) and variable not in setting_variables():
            option = variable.removeprefix(KAFKA_ENV_PREFIX).lower().replace("_", ".")
            assert settings.kafka_options.get(option) == value
    # librdkafka refuses unknown properties when a client is created (no broker is contacted:
    # none is configured).
    if settings.kafka_options:
        Consumer({"group.id": "compose-file-test", **settings.kafka_options}).close()


def test_depends_on_targets_exist_with_valid_conditions() -> None:
    everything = services()
    for name, service in everything.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on without conditions"
        for target, spec in depends_on.items():
            assert target in everything, f"{name} depends on undefined service {target}"
            condition = spec.get("condition")
            assert condition in DEPENDS_ON_CONDITIONS, f"{name} → {target}: {condition!r}"
            if condition == "service_healthy":
                assert not everything[target].get("healthcheck", {}).get("disable"), target
                assert "test" in everything[target].get("healthcheck", {}), (
                    f"{name} waits for {target} to be healthy, but it has no healthcheck"
                )
            if condition == "service_completed_successfully":
                assert everything[target].get("restart", "no") == "no", (
                    f"{name} waits for {target} to finish, but it restarts"
                )


def test_sink_waits_for_the_migration_and_the_services() -> None:
    depends_on = services()["sink"]["depends_on"]
    assert depends_on["migrate"]["condition"] == "service_completed_successfully"
    for infrastructure in INFRASTRUCTURE:
        assert depends_on[infrastructure]["condition"] == "service_healthy"
    assert command(services()["migrate"]) == ["migrate"]


def test_sink_runs_as_replicas_of_one_group() -> None:
    sink = services()["sink"]
    replicas = sink["deploy"]["replicas"]
    assert replicas >= 2
    assert "container_name" not in sink, "a fixed container name forbids replicas"
    assert environment(sink)["SINK_GROUP_ID"]
    for mapping in port_mappings(sink):
        assert len(mapping.published) >= replicas, "each replica needs its own host port"
        assert mapping.target == int(environment(sink)["SINK_METRICS_PORT"])


@pytest.mark.parametrize("name", [*INFRASTRUCTURE, "sink"])
def test_long_running_services_have_healthchecks(name: str) -> None:
    healthcheck = services()[name].get("healthcheck", {})
    assert not healthcheck.get("disable")
    test = healthcheck.get("test")
    assert isinstance(test, list), f"{name}: healthcheck test should be a list"
    assert test[0] in {"CMD", "CMD-SHELL"}
    assert len(test) > 1


def test_sink_healthcheck_probes_healthz_on_the_metrics_port() -> None:
    sink = services()["sink"]
    probe = " ".join(sink["healthcheck"]["test"])
    assert "/healthz" in probe
    assert "SINK_METRICS_PORT" in probe
    assert int(environment(sink)["SINK_METRICS_PORT"]) > 0, "port 0 disables /healthz"


def test_one_shot_services_disable_the_image_healthcheck() -> None:
    for name in ("migrate", "demo"):
        service = services()[name]
        assert service.get("restart") == "no", name
        assert service["healthcheck"] == {"disable": True}, name


@pytest.mark.parametrize("name", SINK_SERVICES)
def test_commands_are_sink_subcommands(name: str) -> None:
    words = command(services()[name])
    leaf, path, arguments = resolve_subcommand(words)
    assert not isinstance(leaf, click.Group), f"`sink {' '.join(path)}` needs a subcommand"
    # click parses the options and arguments as `sink` would, without running the command.
    leaf.make_context(" ".join(["sink", *path]), list(arguments))


def test_demo_produces_the_specified_stream() -> None:
    assert command(services()["demo"]) == ["demo", "produce", "--events", "20000", "--rate", "500"]
    assert {"kafka", "registry"} <= set(services()["demo"]["depends_on"])


def test_sink_subscribes_to_every_topic_like_make_run() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"^TOPICS \?= (.+)$", makefile, re.MULTILINE)
    assert match, "the Makefile no longer defines TOPICS"
    settings = load_settings(environ=environment(services()["sink"]))
    assert settings.resolved_topics() == (match.group(1).strip(),)
    (pattern,) = settings.resolved_topics()
    for internal in KAFKA_INTERNAL_TOPICS:
        assert not re.search(pattern, internal), f"{pattern} would consume {internal}"
    assert re.search(pattern, "learning-course-enrollment-lifecycle")


def test_internal_urls_point_at_compose_services() -> None:
    everything = services()
    env = environment(everything["sink"])

    host, _, port = env["SINK_KAFKA_BOOTSTRAP_SERVERS"].partition(":")
    kafka = environment(everything[host])
    listener = _listener_on(kafka["KAFKA_LISTENERS"], int(port))
    assert _listeners(kafka["KAFKA_ADVERTISED_LISTENERS"])[listener] == f"{host}:{port}"

    registry = urlsplit(env["SINK_SCHEMA_REGISTRY_URL"])
    assert registry.hostname in everything
    assert registry.port in {m.target for m in port_mappings(everything[registry.hostname])}
    assert registry.path == urlsplit(host_environment()["SINK_SCHEMA_REGISTRY_URL"]).path

    database = sa.make_url(env["SINK_DATABASE_URL"])
    postgres = everything[str(database.host)]
    assert database.port in {m.target for m in port_mappings(postgres)}
    postgres_env = environment(postgres)
    assert database.username == postgres_env["POSTGRES_USER"]
    assert database.password == postgres_env["POSTGRES_PASSWORD"]
    assert database.database == postgres_env["POSTGRES_DB"]


def test_host_ports_are_those_of_scripts_services() -> None:
    """A sink on the host with `scripts/services env` reaches the same things as a container."""
    everything = services()
    host = host_environment()
    container = environment(everything["sink"])

    host_kafka = host["SINK_KAFKA_BOOTSTRAP_SERVERS"]
    kafka = environment(everything["kafka"])
    host_port = int(host_kafka.rpartition(":")[2])
    listener = _listener_on(kafka["KAFKA_LISTENERS"], published_as(everything["kafka"], host_port))
    assert _listeners(kafka["KAFKA_ADVERTISED_LISTENERS"])[listener] == host_kafka

    registry = urlsplit(host["SINK_SCHEMA_REGISTRY_URL"])
    target = published_as(everything["registry"], registry.port or 0)
    translated = registry._replace(netloc=f"registry:{target}").geturl()
    assert translated == container["SINK_SCHEMA_REGISTRY_URL"]

    database = sa.make_url(host["SINK_DATABASE_URL"])
    target = published_as(everything["postgres"], database.port or 0)
    assert database.set(host="postgres", port=target) == sa.make_url(container["SINK_DATABASE_URL"])


def test_databases_the_services_use_are_created_at_first_start() -> None:
    everything = services()
    init_mounts = [
        volume.split(":")[0]
        for volume in everything["postgres"].get("volumes", [])
        if ":/docker-entrypoint-initdb.d" in volume
    ]
    assert len(init_mounts) == 1
    scripts = sorted((ROOT / init_mounts[0]).glob("*.sql"))
    assert scripts, f"no SQL files in {init_mounts[0]}"
    created = {
        name.lower()
        for script in scripts
        for name in re.findall(r"CREATE DATABASE (\w+)", script.read_text(encoding="utf-8"))
    }
    registry = environment(everything["registry"])["APICURIO_DATASOURCE_URL"]
    assert registry.startswith("jdbc:postgresql://postgres:5432/")
    assert registry.rpartition("/")[2] in created
    metabase = environment(everything["metabase"])
    assert metabase["MB_DB_HOST"] == "postgres"
    assert metabase["MB_DB_DBNAME"] in created


def test_named_volumes_are_declared() -> None:
    declared = set(compose().get("volumes") or {})
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} is not declared"
    assert declared, "the stack keeps no data across restarts"


def test_dashboard_is_optional() -> None:
    everything = services()
    assert everything["metabase"].get("profiles") == ["dashboard"]
    for name in EXPECTED_SERVICES - {"metabase"}:
        assert "profiles" not in everything[name], f"{name} would not start by default"


def test_compose_interpolation_leaves_values_alone() -> None:
    """Compose substitutes ``$NAME`` in values: a literal dollar must be written ``$$``."""

    def strings(node: object) -> Iterator[str]:
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            for key, value in node.items():
                yield from strings(key)
                yield from strings(value)
        elif isinstance(node, list):
            for item in node:
                yield from strings(item)

    lone = [s for s in strings(compose()) if re.search(r"\$(?!\$)", s.replace("$$", ""))]
    assert not lone, lone


def _listeners(spec: str) -> dict[str, str]:
    """``NAME://host:port,...`` → {NAME: "host:port"}."""
    pairs = (item.partition("://") for item in spec.split(","))
    return {name: address for name, _, address in pairs}


def _listener_on(spec: str, port: int) -> str:
    names = [name for name, address in _listeners(spec).items() if address.endswith(f":{port}")]
    assert len(names) == 1, f"no single listener on port {port} in {spec}"
    return names[0]


# --- the Dockerfile and .dockerignore ------------------------------------------------------------


def test_dockerfile_base_is_a_pinned_slim_python_312() -> None:
    (base,) = [i.arguments for i in dockerfile() if i.keyword == "FROM"]
    assert re.fullmatch(r"python:3\.12\.\d+-slim(-\w+)?", base), base


def test_dockerfile_entrypoint_is_sink_and_default_command_is_real() -> None:
    (entrypoint,) = [exec_form(i.arguments) for i in dockerfile() if i.keyword == "ENTRYPOINT"]
    assert entrypoint == ["sink"]
    (default,) = [exec_form(i.arguments) for i in dockerfile() if i.keyword == "CMD"]
    leaf, _, arguments = resolve_subcommand(default)
    assert leaf.name == "run"
    assert not arguments


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [i.arguments for i in dockerfile() if i.keyword == "USER"]
    assert users, "no USER: the sink would run as root"
    assert users[-1].split(":")[0] not in {"0", "root"}


def test_dockerfile_exposes_the_metrics_port_and_checks_healthz() -> None:
    default_port = attrs.fields(Settings).metrics_port.default
    exposed = {word for i in dockerfile() if i.keyword == "EXPOSE" for word in i.arguments.split()}
    assert str(default_port) in exposed
    (healthcheck,) = [i.arguments for i in dockerfile() if i.keyword == "HEALTHCHECK"]
    probe = exec_form(healthcheck.partition("CMD ")[2])
    assert probe[0] == "python"
    assert "/healthz" in probe[-1]
    assert "SINK_METRICS_PORT" in probe[-1]


def test_dockerfile_defaults_are_valid_settings() -> None:
    defaults: dict[str, str] = {}
    for instruction in dockerfile():
        if instruction.keyword == "ENV":
            for pair in instruction.arguments.split():
                name, _, value = pair.partition("=")
                defaults[name] = value
    sink_defaults = {k: v for k, v in defaults.items() if k.startswith(ENV_PREFIX)}
    assert sink_defaults.get("SINK_LOG_FORMAT") == "json"
    assert set(sink_defaults) <= setting_variables()
    load_settings(environ=sink_defaults)


def test_dockerfile_copies_exist_and_are_in_the_build_context() -> None:
    sources = [source for copy in copies() for source in copy.sources]
    assert sources
    for source in sources:
        path = ROOT / source
        assert path.exists(), f"COPY {source}: not in the repository"
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        wanted = [f for f in files if "__pycache__" not in f.parts]
        assert wanted, f"COPY {source}: nothing to copy"
        for file in wanted:
            relative = file.relative_to(ROOT).as_posix()
            assert not dockerignore_excludes(relative), f"{relative} is excluded by .dockerignore"


def test_dockerignore_keeps_the_context_small() -> None:
    for heavy in (".git/HEAD", ".venv/bin/python", ".services/cache/x", "sink/__pycache__/a.pyc"):
        assert dockerignore_excludes(heavy), heavy


def test_dependencies_are_installed_before_the_source_is_copied() -> None:
    """Build cache: editing the code must not reinstall the dependencies."""
    order = [
        (i.keyword, i.arguments)
        for i in dockerfile()
        if i.keyword == "COPY" or (i.keyword == "RUN" and "pip install" in i.arguments)
    ]
    first_source = next(n for n, (k, a) in enumerate(order) if k == "COPY" and "sink" in a.split())
    dependencies = next(n for n, (k, a) in enumerate(order) if k == "RUN" and "--requirement" in a)
    assert dependencies < first_source
    early = [a for k, a in order[:dependencies] if k == "COPY"]
    assert all("sink" not in a.split() and "migrations" not in a for a in early), early


def test_sink_migrate_finds_alembic_in_the_image() -> None:
    """``sink migrate`` looks for alembic.ini and migrations/ beside the imported package.

    schema_check says where, relative to the package; the image must put them there and import
    the package from that copy (an editable install from that directory), not from site-packages.
    """
    root = schema_check.PROJECT_ROOT
    package = Path(schema_check.__file__).resolve().parent.relative_to(root).as_posix()
    ini = schema_check.ALEMBIC_INI.relative_to(root).as_posix()
    migrations = schema_check.MIGRATIONS.relative_to(root).as_posix()

    placed: dict[str, PurePosixPath] = {}
    for copy in copies():
        for source in copy.sources:
            is_dir = str(copy.destination).endswith("/") or len(copy.sources) > 1
            target = copy.destination / PurePosixPath(source).name if is_dir else copy.destination
            placed[source.rstrip("/")] = target
    for needed in (package, ini, migrations):
        assert needed in placed, f"the Dockerfile does not copy {needed}"
    image_root = placed[package].parent
    assert placed[ini] == image_root / ini
    assert placed[migrations] == image_root / migrations

    editable = [
        workdir
        for workdir, step in run_steps()
        if "pip install" in step and ("--editable ." in step or "-e ." in step)
    ]
    assert editable == [image_root], "install the package in editable mode from where it is copied"
