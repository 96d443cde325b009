"""The processes a benchmark run owns: one redis-server and its workers.

Everything is started on free loopback ports in a temporary directory and
only what was started here is ever stopped (by its own process object).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import redis

from busignal.cli.embedded import free_port, server_command

__all__ = [
    "MissingTool",
    "Pausable",
    "Proc",
    "RedisServer",
    "children",
    "rss_kib",
    "wait_for",
]

REPO = Path(__file__).resolve().parent.parent


class MissingTool(Exception):
    """A program the harness needs is not installed; the message says which."""


def wait_for(
    condition: Callable[[], object], timeout: float = 20.0, what: str = "condition"
) -> None:
    """Poll ``condition`` until truthy; RuntimeError naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def rss_kib(pid: int, field_name: str = "VmRSS") -> int:
    """A memory figure (kB) of a live process from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field_name} in /proc/{pid}/status")


class Pausable(Protocol):
    """A process a drain can stop while its backlog is written, then let go."""

    def pause(self) -> None: ...

    def resume(self) -> None: ...


@dataclass
class RedisServer:
    """A private redis-server: no persistence, loopback only."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @staticmethod
    def binary() -> str:
        """The redis-server on PATH; MissingTool when there is none."""
        found = shutil.which("redis-server")
        if found is None:
            raise MissingTool(
                "redis-server is not on PATH; install Redis 7 (for example "
                "'apt-get install redis-server') and run again"
            )
        return found

    def version(self) -> str:
        out = subprocess.run(
            [self.binary(), "--version"], capture_output=True, text=True, check=True
        ).stdout
        return next((w[2:] for w in out.split() if w.startswith("v=")), out.strip())

    def start(self) -> None:
        command = server_command(self.binary(), self.port, self.directory)
        self.process = subprocess.Popen(command)
        wait_for(self._answers, what=f"redis-server on port {self.port}")

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@dataclass
class Proc:
    """A worker subprocess (busignal, baseline or another library's)."""

    name: str
    command: Sequence[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), **self.env}
        env.pop("BUSIGNAL_URL", None)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                list(self.command),
                env=env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def check_alive(self) -> None:
        """RuntimeError with the log tail if the process has exited."""
        if self.process is None or self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"worker {self.name} exited early:\n{tail}")

    def pause(self) -> None:
        """SIGSTOP: lets a backlog build up so a drain measures only handling."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.pid, signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def python_module(module: str, *args: str) -> list[str]:
    """The command running ``python -m module args`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid`` (from /proc/*/stat)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces or parentheses
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return sorted(out)
