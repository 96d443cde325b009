"""A local Redis Sentinel setup: a master, a replica and three Sentinels.

Every process is ``redis-server`` (``--sentinel`` makes it a Sentinel, the
same binary ``redis-sentinel`` is), on free loopback ports in a temporary
directory; only these processes are ever stopped.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import redis

from .servers import RedisServer, free_port, wait_for

__all__ = ["LocalSentinel"]

MASTER = "mymaster"


@dataclass
class LocalSentinel:
    """A master and one replica watched by three Sentinels (quorum 2)."""

    directory: Path
    master: RedisServer | None = None
    replica: RedisServer | None = None
    sentinel_ports: list[int] = field(default_factory=list)
    _sentinels: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{MASTER}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not on PATH; scripts/test.sh installs it"
            )
        self.master = self._server("master")
        assert self.master.process is not None
        self.replica = self._server(
            "replica", "--replicaof", "127.0.0.1", str(self.master.port)
        )
        for index in range(3):
            self._sentinel(binary, index)
        wait_for(self._watching, 30, "the Sentinels to see the replica and each other")

    def _server(self, name: str, *args: str) -> RedisServer:
        directory = self.directory / name
        directory.mkdir(parents=True)
        server = RedisServer(free_port(), directory, args)
        server.start()
        return server

    def _sentinel(self, binary: str, index: int) -> None:
        assert self.master is not None
        port = free_port()
        directory = self.directory / f"sentinel-{index}"
        directory.mkdir(parents=True)
        config = directory / "sentinel.conf"  # a Sentinel rewrites its own config
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {self.master.port} 2\n"
            f"sentinel down-after-milliseconds {MASTER} 1000\n"
            f"sentinel failover-timeout {MASTER} 5000\n"
        )
        with (directory / "sentinel.log").open("ab") as log:
            self._sentinels.append(
                subprocess.Popen(
                    [binary, str(config), "--sentinel"], stdout=log, stderr=log
                )
            )
        self.sentinel_ports.append(port)

    def _ask(self, port: int, *command: str) -> object:
        client = redis.Redis(port=port, socket_timeout=1, decode_responses=True)
        try:
            return client.execute_command(*command)  # type: ignore[no-untyped-call]  # untyped in redis-py
        except redis.RedisError:
            return None
        finally:
            client.close()

    def _watching(self) -> bool:
        for port in self.sentinel_ports:
            state = self._ask(port, "SENTINEL", "MASTER", MASTER)
            if not isinstance(state, dict):
                return False
            if int(state["num-slaves"]) < 1 or int(state["num-other-sentinels"]) < 2:
                return False
        return True

    def master_port(self) -> int | None:
        """The master's port as the first Sentinel that answers sees it."""
        for port in self.sentinel_ports:
            found = self._ask(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
            if isinstance(found, list | tuple) and found:
                return int(found[1])
        return None

    def kill_master(self) -> None:
        """SIGKILL the master, as a crash would; it is not restarted."""
        assert self.master is not None
        assert self.master.process is not None
        self.master.process.kill()
        self.master.process.wait()

    def wait_promoted(self, timeout: float = 30) -> None:
        """Until every Sentinel names the replica as the master."""
        assert self.replica is not None
        port = self.replica.port

        def promoted() -> bool:
            return all(
                (found := self._ask(p, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER))
                and int(found[1]) == port  # type: ignore[index]  # a list when set
                for p in self.sentinel_ports
            )

        wait_for(promoted, timeout, "a Sentinel failover to the replica")

    def stop(self) -> None:
        for process in self._sentinels:
            if process.poll() is None:
                process.terminate()
                process.wait(10)
        self._sentinels.clear()
        for server in (self.master, self.replica):
            if server is not None:
                server.stop()
