"""``busignal inspect`` as a user runs it, on a namespace with real traffic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgpack
import pytest

from busignal import Signal
from busignal.bus.bus import Bus

from .servers import APPS, RedisServer, WorkerProcess, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(APPS))

from signals_shared import order_paid  # noqa: E402


def _inspect(*args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    """``busignal inspect ARGS``, its stdout a pipe, on an 80-column "terminal"."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUSIGNAL_")}
    env["COLUMNS"] = str(columns)
    return subprocess.run(
        [sys.executable, "-m", "busignal", "inspect", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture
def traffic(
    bus: Bus,
    redis_server: RedisServer,
    worker_factory: Callable[..., WorkerProcess],
) -> RedisServer:
    """A billing worker that has answered one send and dead-lettered one event."""
    # A long heartbeat keeps the worker from trimming (every 10 beats) the
    # stream whose length the tests read back.
    worker_factory(
        "billing", "billing", extra=("--max-deliveries", "1", "--heartbeat", "30")
    )
    assert order_paid.send_robust(None, amount=5)
    order_paid.publish(None, amount=-1)
    dead = bus.keys.dead("order_paid")
    wait_for(lambda: redis_server.client().xlen(dead) == 1, what="a dead letter")
    return redis_server


def test_inspect_json_reports_signals_services_workers_and_dead_letters(
    traffic: RedisServer,
) -> None:
    result = _inspect("--url", traffic.url, "--json")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    signals = {s["name"]: s for s in report["signals"]}
    assert signals["order_paid"]["dead"] == 1
    assert signals["order_paid"]["length"] == 2
    (service,) = signals["order_paid"]["services"]
    assert service["name"] == "billing"
    assert service["consumers"] == 1
    assert service["pending"] == 0
    (worker,) = report["workers"]
    assert worker["service"] == "billing"
    assert worker["age"] < 5


def test_inspect_prints_readable_tables(traffic: RedisServer) -> None:
    result = _inspect("--url", traffic.url, "--plain")

    assert result.returncode == 0, result.stderr
    assert "signals (" in result.stdout
    assert "live workers (1)" in result.stdout
    line = next(x for x in result.stdout.splitlines() if x.startswith("order_paid"))
    assert line.split()[:4] == ["order_paid", "2", "1", "billing"]


def test_inspect_through_a_pipe_keeps_long_signal_names_whole(
    bus: Bus, redis_server: RedisServer
) -> None:
    name = "orders.fulfilment.warehouse_pick_list_generated_for_region_eu"
    assert len(name) >= 60
    Signal(name).using(bus=bus).publish(None, order=1)

    result = _inspect("--url", redis_server.url)

    assert result.returncode == 0, result.stderr
    [line] = [x for x in result.stdout.splitlines() if name in x]
    assert line.split()[:3] == [name, "1", "0"]
    assert "┃" not in result.stdout  # plain text, not a rich table


def _workers(url: str) -> dict[str, list[dict[str, object]]]:
    result = _inspect("--url", url, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    return {"live": report["workers"], "lost": report["lost"]}


def _pids(workers: list[dict[str, object]]) -> set[object]:
    return {w["pid"] for w in workers}


def test_inspect_shows_a_killed_worker_as_lost_within_a_few_heartbeats(
    redis_server: RedisServer, worker_factory: Callable[..., WorkerProcess]
) -> None:
    # the factory's workers beat every 0.5 s: lost 1.5 s after the last beat
    kept = worker_factory("billing", "billing")
    killed = worker_factory("billing", "billing")
    assert _pids(_workers(redis_server.url)["live"]) == {kept.pid, killed.pid}

    killed.kill()  # SIGKILL: no chance to delete its record
    wait_for(
        lambda: _pids(_workers(redis_server.url)["lost"]) == {killed.pid},
        timeout=10,
        what="the killed worker to be listed as lost",
    )

    workers = _workers(redis_server.url)
    assert _pids(workers["live"]) == {kept.pid}
    [lost] = workers["lost"]
    assert isinstance(lost["age"], float)
    assert lost["age"] >= 1.5
    plain = _inspect("--url", redis_server.url).stdout
    assert "lost workers (1)" in plain
    assert str(lost["name"]) in plain.split("lost workers (1)")[1]


def test_inspect_a_live_worker_deletes_the_record_of_one_lost_long_ago(
    bus: Bus, redis_server: RedisServer, worker_factory: Callable[..., WorkerProcess]
) -> None:
    ago = time.time() - 3600
    record = {"service": "billing", "pid": 1, "seen": ago, "started": ago - 60}
    redis_server.client().hset(bus.keys.workers, "gone", msgpack.packb(record))
    assert [w["name"] for w in _workers(redis_server.url)["lost"]] == ["gone"]

    worker_factory("billing", "billing")

    wait_for(
        lambda: not redis_server.client().hexists(bus.keys.workers, "gone"),
        timeout=10,
        what="a live worker to delete the record lost an hour ago",
    )
    assert _workers(redis_server.url)["lost"] == []


def test_inspect_of_an_empty_namespace_exits_zero(redis_server: RedisServer) -> None:
    result = _inspect("--url", redis_server.url, "--namespace", "nothing-here")

    assert result.returncode == 0, result.stderr
    assert "signals (0)" in result.stdout


def test_inspect_unreachable_url_is_one_redacted_line() -> None:
    url = f"redis://admin:s3cret-pw@127.0.0.1:{free_port()}/0"

    result = _inspect("--url", url)

    assert result.returncode != 0
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "s3cret-pw" not in result.stderr
    assert "admin:***@127.0.0.1" in result.stderr
