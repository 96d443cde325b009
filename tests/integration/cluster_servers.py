"""A real local Redis Cluster for integration tests, from redis-server binaries.

Masters (and optionally one replica each) on free ports below 55000 whose
cluster bus ports (port + 10000) are free too, in temporary directories;
``stop()`` kills only these processes.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import redis.cluster

from .servers import RedisServer, wait_for


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_ports(count: int) -> list[int]:
    """``count`` ports p with p and p + 10000 free, all below 55000."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(20000, 45000)
        if port not in ports and _free(port) and _free(port + 10000):
            ports.append(port)
    return ports


@dataclass
class LocalCluster:
    """A Redis Cluster of ``masters`` masters and ``replicas`` replicas each."""

    directory: Path
    masters: int = 3
    replicas: int = 0
    node_timeout_ms: int = 1000
    #: AOF on every node (as a failover wants); a benchmark compares with a
    #: server without persistence, so it turns it off.
    appendonly: bool = True
    servers: list[RedisServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The multi-host cluster URL of every master."""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.servers[: self.masters])
        return f"redis+cluster://{hosts}/0"

    def start(self) -> None:
        ports = cluster_ports(self.masters * (1 + self.replicas))
        for port in ports:
            directory = self.directory / f"node-{port}"
            directory.mkdir(parents=True)
            server = RedisServer(
                port,
                directory,
                (
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", f"nodes-{port}.conf",
                    "--cluster-node-timeout", str(self.node_timeout_ms),
                    "--appendonly", "yes" if self.appendonly else "no",
                    "--repl-diskless-sync-delay", "0",
                    "--cluster-replica-validity-factor", "0",
                ),
            )  # fmt: skip
            server.start()
            self.servers.append(server)
        command = [
            shutil.which("redis-cli") or "redis-cli", "--cluster", "create",
            *(f"127.0.0.1:{p}" for p in ports),
            "--cluster-replicas", str(self.replicas), "--cluster-yes",
        ]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True, timeout=30)
        wait_for(self.ok, 20, "cluster_state:ok on every node")
        wait_for(self.replicas_synced, 20, "every replica in sync")

    def ok(self) -> bool:
        """True when every running node says cluster_state:ok and knows all slots."""
        for server in self.servers:
            if server.process is None:
                continue
            try:
                info: Any = server.client().cluster("INFO")
            except redis.RedisError:
                return False
            if info.get("cluster_state") != "ok":
                return False
        return True

    def replicas_synced(self) -> bool:
        """True when every replica's link to its master is up."""
        roles = [s.client().info("replication") for s in self.servers if s.process]
        replicas = [r for r in roles if r.get("role") == "slave"]
        return len(replicas) == self.masters * self.replicas and all(
            r.get("master_link_status") == "up" for r in replicas
        )

    def node_of(self, key: str) -> int:
        """The port of the master that serves ``key``'s slot now."""
        client = self._client()
        try:
            return int(client.get_node_from_key(key).port)
        finally:
            client.close()

    def _client(self) -> Any:
        return redis.cluster.RedisCluster(
            startup_nodes=[
                redis.cluster.ClusterNode("127.0.0.1", s.port)  # type: ignore[no-untyped-call]  # untyped in redis-py
                for s in self.servers
                if s.process is not None
            ]
        )

    def move_slot(self, slot: int, port: int) -> None:
        """Migrate ``slot`` (and its keys) to the master on ``port``, as
        ``redis-cli --cluster reshard`` does: IMPORTING/MIGRATING, MIGRATE
        the keys in batches, then tell every master its new owner."""
        target: Any = self.server(port).client()
        source: Any = self.server(self.node_of_slot(slot)).client()
        target_id = target.execute_command("CLUSTER", "MYID")
        source_id = source.execute_command("CLUSTER", "MYID")
        target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        while keys := source.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 50):
            source.execute_command(
                "MIGRATE", "127.0.0.1", port, "", 0, 5000, "KEYS", *keys
            )
        others: list[Any] = [s.client() for s in self.servers if s.process]
        for client in (target, source, *others):
            client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)

    def node_of_slot(self, slot: int) -> int:
        """The port of the master that serves ``slot`` now."""
        client = self._client()
        try:
            return int(client.nodes_manager.slots_cache[slot][0].port)
        finally:
            client.close()

    def kill(self, port: int) -> None:
        """kill -9 one node (it stays down)."""
        server = self.server(port)
        assert server.process is not None
        server.process.kill()
        server.process.wait()
        server.process = None

    def server(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def replica_of(self, port: int) -> RedisServer:
        """The replica whose master listens on ``port``."""
        for server in self.servers:
            if server.port == port or server.process is None:
                continue
            info = server.client().info("replication")
            if info.get("role") == "slave" and int(info["master_port"]) == port:
                return server
        raise LookupError(f"no replica of {port}")

    def wait_promoted(self, replica: RedisServer, timeout: float = 20) -> None:
        def promoted() -> bool:
            role = replica.client().info("replication").get("role")
            return role == "master" and self.ok()

        wait_for(promoted, timeout, f"replica {replica.port} to be promoted")
        time.sleep(0.2)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
