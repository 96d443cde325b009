"""docker-compose.yml without Docker: what it names exists, and its commands run.

Each service's command runs here as a subprocess, with the compose file's
``redis`` host replaced by this test's own redis-server.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import yaml

from busignal.cli import app as cli

from .servers import RedisServer, wait_for

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_URL = "redis://redis:6379/0"


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE.read_text())[
        "services"
    ]
    return services


def _built() -> dict[str, list[str]]:
    """The services built from this project, with their commands."""
    return {
        name: list(service["command"])
        for name, service in _services().items()
        if "build" in service
    }


def _modules(command: list[str]) -> list[str]:
    """The modules a ``python -m ...`` command imports, parsed as the CLI does."""
    assert command[:2] == ["python", "-m"], command
    if command[2] != "busignal":
        return [command[2]]
    args = cli._parser().parse_args(command[3:])
    assert args.command == "worker", command
    return list(args.modules)


def _local(command: list[str], url: str) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUSIGNAL_")}
    env["BUSIGNAL_URL"] = url
    return [sys.executable, *command[1:]], env


def test_compose_runs_redis_7_with_appendonly() -> None:
    redis_service = _services()["redis"]

    assert redis_service["image"].startswith("redis:7")
    assert "--appendonly" in redis_service["command"]
    assert (
        redis_service["command"][redis_service["command"].index("--appendonly") + 1]
        == "yes"
    )


def test_compose_names_only_modules_and_files_that_exist() -> None:
    services = _services()
    for name, command in _built().items():
        build = services[name]["build"]
        context = ROOT / (build if isinstance(build, str) else build["context"])
        assert (context / "Dockerfile").is_file(), name
        assert services[name]["environment"]["BUSIGNAL_URL"] == COMPOSE_URL, name
        for module in _modules(command):
            assert importlib.util.find_spec(module) is not None, (name, module)
    dockerfile = (ROOT / "Dockerfile").read_text().splitlines()
    for line in dockerfile:
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), line


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def _announced(server: RedisServer) -> set[str]:
    raw = server.client().hgetall("busignal:workers")
    return {str(msgpack.unpackb(status)["service"]) for status in raw.values()}


def test_compose_services_start_with_the_same_commands_outside_docker(
    redis_server: RedisServer,
    processes: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    commands = _built()
    sender = commands.pop("sender")
    for name, command in commands.items():
        argv, env = _local(command, redis_server.url)
        with (tmp_path / f"{name}.log").open("wb") as log:
            processes.append(
                subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=log)
            )
    wait_for(
        lambda: _announced(redis_server) == set(commands),
        timeout=20,
        what=f"workers of {sorted(commands)} to announce themselves",
    )

    argv, env = _local(sender, redis_server.url)
    result = subprocess.run(
        argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert "busignal.examples.billing.charge" in result.stdout
    assert "welcomed ada@example.com" in result.stdout
    assert "UndeliverableError" in result.stdout
    for process in processes:
        process.send_signal(signal.SIGTERM)
    assert [p.wait(30) for p in processes] == [0] * len(processes)


def test_compose_worker_healthcheck_passes_while_redis_answers(
    redis_factory: Callable[..., RedisServer],
) -> None:
    server = redis_factory()
    workers = [name for name in _built() if name != "sender"]
    checks = {name: _services()[name].get("healthcheck", {}) for name in workers}
    assert all(check.get("test", [""])[0] == "CMD" for check in checks.values())
    commands = [_local(check["test"][1:], server.url) for check in checks.values()]

    def run_all() -> list[int]:
        return [
            subprocess.run(argv, env=env, capture_output=True, timeout=60).returncode
            for argv, env in commands
        ]

    up = run_all()
    server.stop()
    down = run_all()

    assert (up, down) == ([0] * len(workers), [1] * len(workers))
