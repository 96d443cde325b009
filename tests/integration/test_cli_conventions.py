"""The worker CLI's conventions against real servers: ping, JSON logs,
environment defaults, ``inspect --watch`` and ``worker --reload``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

from busignal.bus.bus import Bus
from busignal.dispatch.signal import Signal

from .servers import APPS, RedisServer, WorkerProcess, free_port, wait_for

order_paid = Signal("order_paid")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUSIGNAL_")}
    return {**env, "PYTHONPATH": str(APPS), **extra}


def _busignal(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "busignal", *args],
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; any still running at the end are killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


# -- ping ---------------------------------------------------------------------


def test_ping_exits_0_with_the_server_version(redis_server: RedisServer) -> None:
    version = redis_server.client().info("server")["redis_version"]

    done = _busignal("ping", BUSIGNAL_URL=redis_server.url)

    assert done.returncode == 0, done.stderr
    assert done.stdout == f"PONG from redis {version} at {redis_server.url}\n"


def test_ping_exits_1_when_redis_is_unreachable() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"

    done = _busignal("ping", "--url", url, "--timeout", "1")

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(f"busignal: cannot reach Redis at {url}")


def test_ping_exits_1_hiding_the_password_of_a_refused_login(
    redis_factory: Callable[..., RedisServer],
) -> None:
    acl = ("--user", "alice", "on", ">right-pw", "~*", "&*", "+@all")
    server = redis_factory(*acl, username="alice", password="right-pw")
    url = server.url.replace(":right-pw@", ":wrong-pw@")

    done = _busignal("ping", "--url", url)

    assert done.returncode == 1
    assert "refused the login" in done.stderr
    assert "wrong-pw" not in done.stderr


# -- logs and environment defaults ---------------------------------------------


def _start_worker(
    processes: list[subprocess.Popen[str]], *args: str, **env: str
) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "busignal", "worker", "billing", *args],
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    processes.append(process)
    return process


def _lines_until(stream: IO[str], found: Callable[[str], bool]) -> list[str]:
    lines: list[str] = []
    for line in stream:
        lines.append(line)
        if found(line):
            return lines
    raise AssertionError(f"the stream ended before the line looked for:\n{lines}")


def test_worker_json_logs_are_one_object_a_line_with_delivery_fields(
    bus: Bus, redis_server: RedisServer, processes: list[subprocess.Popen[str]]
) -> None:
    worker = _start_worker(
        processes,
        *("--service", "billing", "--url", redis_server.url, "--heartbeat", "0.5"),
        *("--log-format", "json", "--log-level", "DEBUG"),
        TEST_REDIS_URL=redis_server.url,  # where the receivers record their runs
    )
    assert worker.stderr is not None
    first = _lines_until(worker.stderr, lambda line: "joined" in line)
    wait_for(lambda: redis_server.client().hlen("busignal:workers"), what="a worker")

    results = order_paid.send(sender=None, amount=5)
    worker.send_signal(signal.SIGTERM)
    _, rest = worker.communicate(timeout=30)

    records = [json.loads(line) for line in [*first, *rest.splitlines()]]
    assert worker.returncode == 0
    assert results
    charged = [r for r in records if r.get("receiver") == "billing.charge"]
    assert len(charged) == 1
    assert charged[0]["signal"] == "order_paid"
    assert charged[0]["service"] == "billing"
    assert charged[0]["ok"] is True
    assert charged[0]["level"] == "DEBUG"
    assert isinstance(charged[0]["duration"], float)
    assert {"time", "logger", "message", "message_id"} <= set(charged[0])


def test_worker_takes_its_flags_from_the_environment(
    redis_server: RedisServer, processes: list[subprocess.Popen[str]]
) -> None:
    worker = _start_worker(
        processes,
        BUSIGNAL_URL=redis_server.url,
        BUSIGNAL_SERVICE="billing",
        BUSIGNAL_WORKER_NAME="billing-from-env",
        BUSIGNAL_HEARTBEAT="0.5",
        BUSIGNAL_LOG_FORMAT="json",
    )

    wait_for(
        lambda: redis_server.client().hexists("busignal:workers", "billing-from-env"),
        timeout=15,
        what="the worker named by BUSIGNAL_WORKER_NAME to announce itself",
    )
    worker.send_signal(signal.SIGTERM)
    _, logs = worker.communicate(timeout=30)

    assert worker.returncode == 0
    assert all(json.loads(line) for line in logs.splitlines())


def test_worker_env_default_that_is_not_a_number_is_a_usage_error(
    redis_server: RedisServer,
) -> None:
    done = _busignal(
        "worker", "billing", "--service", "billing",
        BUSIGNAL_URL=redis_server.url, BUSIGNAL_CONCURRENCY="eight",
    )  # fmt: skip

    assert done.returncode == 2
    assert "BUSIGNAL_CONCURRENCY='eight'" in done.stderr
    assert "--concurrency" in done.stderr


def test_worker_says_once_at_start_that_it_has_no_secret(
    bus: Bus, worker_factory: Callable[..., WorkerProcess]
) -> None:
    worker = worker_factory("billing", "billing")

    output = worker.output()
    assert output.count("no secret") == 1, output
    assert "serving" in output


def test_worker_metrics_addr_binds_the_address_given(
    bus: Bus, worker_factory: Callable[..., WorkerProcess]
) -> None:
    port = free_port()

    worker_factory("billing", "billing", extra=["--metrics-addr", f"127.0.0.1:{port}"])

    wait_for(
        lambda: _get(f"http://127.0.0.1:{port}/metrics").startswith("# HELP"),
        what="the metrics server",
    )


def _get(url: str) -> str:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return str(response.read().decode())
    except OSError:
        return ""


# -- inspect --watch -------------------------------------------------------------


def test_inspect_watch_json_prints_a_report_a_line_until_interrupted(
    bus: Bus, redis_server: RedisServer, processes: list[subprocess.Popen[str]]
) -> None:
    watching = subprocess.Popen(
        [sys.executable, "-m", "busignal", "inspect", "--json", "--watch", "0.1"],
        env=_env(BUSIGNAL_URL=redis_server.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    processes.append(watching)
    assert watching.stdout is not None
    first = json.loads(watching.stdout.readline())

    order_paid.publish(sender=None, amount=1)
    later = _lines_until(
        watching.stdout, lambda line: bool(json.loads(line)["signals"])
    )
    watching.send_signal(signal.SIGINT)
    watching.communicate(timeout=30)

    assert first["signals"] == []
    assert json.loads(later[-1])["signals"][0]["name"] == "order_paid"
    assert watching.returncode == 0


def test_inspect_watch_too_short_is_a_usage_error(redis_server: RedisServer) -> None:
    done = _busignal("inspect", "--watch", "0", BUSIGNAL_URL=redis_server.url)

    assert done.returncode == 2
    assert "--watch" in done.stderr


# -- worker --reload ------------------------------------------------------------


def test_worker_reload_restarts_with_the_changed_receivers(
    bus: Bus,
    redis_server: RedisServer,
    processes: list[subprocess.Popen[str]],
    tmp_path: Path,
) -> None:
    module = tmp_path / "reloaded.py"
    source = (
        "from busignal import Signal, receiver\n"
        "@receiver(Signal('order_paid'))\n"
        "def version(sender, **kwargs):\n"
        "    return {!r}\n"
    )
    module.write_text(source.format("v1"))
    reloader = subprocess.Popen(
        [sys.executable, "-m", "busignal", "worker", "reloaded", "--reload"],
        env=_env(
            BUSIGNAL_URL=redis_server.url,
            BUSIGNAL_SERVICE="dev",
            BUSIGNAL_HEARTBEAT="0.5",
        ),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    processes.append(reloader)

    def answer() -> object:
        results = order_paid.using(timeout=1).send_robust(sender=None)
        return results[0][1] if results else None

    wait_for(lambda: answer() == "v1", timeout=30, what="the first worker")
    module.write_text(source.format("v2"))
    wait_for(lambda: answer() == "v2", timeout=30, what="the reloaded worker")
    reloader.send_signal(signal.SIGTERM)
    reloader.wait(30)

    assert reloader.returncode == 0


# -- a pipe closed early --------------------------------------------------------


def _into_a_closed_pipe(
    url: str, command: list[str]
) -> subprocess.CompletedProcess[str]:
    """Run ``busignal COMMAND`` whose stdout is a pipe nobody reads any more:
    ``busignal inspect --json | head -1``, once head has its line."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "busignal", *command],
            env=_env(BUSIGNAL_URL=url),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "command",
    [
        ["inspect", "--json"],
        ["inspect"],
        ["acl", "worker"],
        ["service", "create", "order_paid", "billing"],
    ],
)
def test_output_into_a_pipe_closed_early_exits_141_quietly(
    redis_server: RedisServer, command: list[str]
) -> None:
    done = _into_a_closed_pipe(redis_server.url, command)

    assert done.stderr == ""
    assert done.returncode == 141


@pytest.mark.parametrize("command", [["--help"], ["inspect", "--help"]])
def test_help_into_a_pipe_closed_early_is_quiet(
    redis_server: RedisServer, command: list[str]
) -> None:
    done = _into_a_closed_pipe(redis_server.url, command)

    assert done.stderr == ""
    assert done.returncode in (0, 141)
