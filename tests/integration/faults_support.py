"""Shared helpers for the fault-injection tests (``test_faults_*.py``).

The receivers live in ``apps/faults_receivers.py``: every execution is
counted in the hash ``faults:ledger:<service>`` under its stream entry id,
so a test compares what ``publish`` returned with what was handled.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass

import redis

from .servers import APPS, RedisServer, WorkerProcess, wait_for

SERVICE = "faults"
NAMESPACE = "busignal"


def events_key(signal: str) -> str:
    return f"{NAMESPACE}:{{sig:{signal}}}:events"


def dead_key(signal: str) -> str:
    return f"{NAMESPACE}:{{sig:{signal}}}:dead"


def ledger(server: RedisServer, service: str = SERVICE) -> dict[str, int]:
    """Stream entry id -> how many times the service's receiver ran it."""
    raw: dict[bytes, bytes] = server.client().hgetall(f"faults:ledger:{service}")  # type: ignore[assignment]  # sync client
    return {k.decode(): int(v) for k, v in raw.items()}


@dataclass(frozen=True, slots=True)
class Tally:
    """Events sent, handled, lost and duplicated, for one fault scenario."""

    name: str
    sent: int
    handled: int
    lost: int
    duplicated: int

    def line(self) -> str:
        return (
            f"faults[{self.name}]: sent={self.sent} handled={self.handled} "
            f"lost={self.lost} duplicated={self.duplicated}"
        )


def tally(name: str, sent: Iterable[str], counts: dict[str, int]) -> Tally:
    """Compare the ids sent with the ledger, print the one-line summary."""
    ids = set(sent)
    handled = ids & counts.keys()
    result = Tally(
        name,
        sent=len(ids),
        handled=len(handled),
        lost=len(ids - handled),
        duplicated=sum(counts[i] - 1 for i in handled),
    )
    print(result.line())
    return result


def wait_handled(
    server: RedisServer,
    ids: Iterable[str],
    timeout: float,
    service: str = SERVICE,
) -> None:
    """Wait until every id in ``ids`` ran at least once."""
    wanted = set(ids)

    def done() -> bool:
        return wanted <= ledger(server, service).keys()

    wait_for(done, timeout, f"{len(wanted)} events handled by {service}")


def pending(server: RedisServer, signal: str, group: str = SERVICE) -> int:
    """How many entries of the signal's stream the group has not acknowledged."""
    try:
        summary = server.client().xpending(events_key(signal), group)
    except redis.ResponseError:
        return 0
    return int(summary["pending"])


def pending_for_pid(
    server: RedisServer, signal: str, pid: int, group: str = SERVICE
) -> int:
    """How many entries the worker process ``pid`` holds unacknowledged."""
    try:
        summary = server.client().xpending(events_key(signal), group)
    except redis.ResponseError:
        return 0
    return sum(
        int(c["pending"])
        for c in summary["consumers"]
        if f":{pid}:"
        in (c["name"].decode() if isinstance(c["name"], bytes) else c["name"])
    )


def kill_redis(server: RedisServer) -> None:
    """kill -9 the server (no shutdown save); its --dir stays for a restart."""
    assert server.process is not None
    server.process.kill()
    server.process.wait()
    server.process = None


def xtrim_calls(server: RedisServer) -> int:
    """How many XTRIM commands the server has run (INFO commandstats)."""
    stats: dict[str, dict[str, int]] = server.client().info("commandstats")
    return int(stats.get("cmdstat_xtrim", {}).get("calls", 0))


def cli(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m busignal ARGS`` and capture its output."""
    environ = {**os.environ, "PYTHONPATH": str(APPS), **(env or {})}
    environ.pop("BUSIGNAL_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "busignal", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def alive(worker: WorkerProcess) -> bool:
    """True while the worker process runs (it survived the fault)."""
    return worker.process is not None and worker.process.poll() is None


def elapsed_since(start: float) -> float:
    return time.monotonic() - start
