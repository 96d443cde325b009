"""Real redis-server and ``busignal worker`` processes for integration tests.

Everything here starts its own processes on free loopback ports, in
temporary directories, and kills only what it started.
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

import redis

from busignal.cli.embedded import free_port, server_command

__all__ = ["APPS", "RedisServer", "WorkerProcess", "free_port", "wait_for"]

APPS = Path(__file__).parent / "apps"


def wait_for(
    condition: Callable[[], object], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Poll ``condition`` until it is truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class RedisServer:
    """One redis-server process started by a test.

    With ``unix_socket`` it also listens on ``directory/redis.sock`` and its
    ``url`` is the ``unix://`` one; with ``username`` and ``password`` (an
    ACL user that ``args`` creates) its ``url`` and ``client()`` log in.
    """

    port: int
    directory: Path
    args: Sequence[str] = ()
    process: subprocess.Popen[bytes] | None = None
    unix_socket: bool = False
    username: str | None = None
    password: str | None = None
    #: Another server binary (a valkey-server), else redis-server from PATH.
    binary: str | None = None

    @property
    def socket_path(self) -> Path:
        return self.directory / "redis.sock"

    @property
    def url(self) -> str:
        login = f"{self.username}:{self.password}@" if self.username else ""
        if self.unix_socket:
            return f"unix://{login}{self.socket_path}"
        return f"redis://{login}127.0.0.1:{self.port}/0"

    def client(self, socket_timeout: float = 5) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=socket_timeout)

    def start(self) -> None:
        binary = self.binary or shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not on PATH; scripts/test.sh installs it"
            )
        extra = list(self.args)
        if self.unix_socket:
            # AF_UNIX paths are limited to ~107 bytes; say so rather than hang.
            assert len(str(self.socket_path)) < 100, f"too long: {self.socket_path}"
            extra += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        command = server_command(binary, self.port, self.directory, *extra)
        self.process = subprocess.Popen(command)
        wait_for(self._answers, what=f"redis-server on port {self.port}")

    def _answers(self) -> bool:
        client = self.client(socket_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class WorkerProcess:
    """One ``busignal worker`` subprocess started by a test."""

    service: str
    modules: Sequence[str]
    url: str
    log: Path
    extra: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            sys.executable, "-m", "busignal", "worker", *self.modules,
            "--service", self.service, "--url", self.url, "--log-level", "INFO",
            "--heartbeat", "0.5", *self.extra,
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(APPS), **self.env}
        env.pop("BUSIGNAL_URL", None)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def send_signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)
        assert self.process is not None
        self.process.wait()

    def wait(self, timeout: float = 30) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
