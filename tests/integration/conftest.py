"""Fixtures: real redis-server processes and real worker subprocesses."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import redis

import busignal
from busignal.bus.bus import Bus
from busignal.bus.default import reset_default

from .cluster_servers import LocalCluster
from .servers import RedisServer, WorkerProcess, free_port, wait_for

_counter = itertools.count()


@pytest.fixture
def redis_factory(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Start redis-server processes on free ports; all are stopped after the test.

    ``start(*args, unix_socket=False, username=None, password=None,
    binary=None)``: see ``RedisServer``.
    """
    servers: list[RedisServer] = []

    def start(
        *args: str,
        unix_socket: bool = False,
        username: str | None = None,
        password: str | None = None,
        binary: str | None = None,
    ) -> RedisServer:
        directory = tmp_path / f"redis-{next(_counter)}"
        directory.mkdir()
        server = RedisServer(
            free_port(),
            directory,
            args,
            unix_socket=unix_socket,
            username=username,
            password=password,
            binary=binary,
        )
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def redis_server(redis_factory: Callable[..., RedisServer]) -> RedisServer:
    return redis_factory()


@pytest.fixture
def bus(redis_server: RedisServer) -> Iterator[Bus]:
    """The default bus, on this test's own redis-server."""
    configured = busignal.configure(url=redis_server.url, timeout=10)
    assert configured is not None
    yield configured
    busignal.configure(None)
    reset_default()


@pytest.fixture
def worker_factory(
    tmp_path: Path, redis_server: RedisServer
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``busignal worker`` subprocesses; each is stopped after the test.

    ``start(service, *modules, ready=True)`` waits until the worker has
    announced itself in the workers hash.
    """
    workers: list[WorkerProcess] = []

    def start(
        service: str,
        *modules: str,
        extra: Sequence[str] = (),
        url: str | None = None,
        env: dict[str, str] | None = None,
        ready: bool = True,
    ) -> WorkerProcess:
        log = tmp_path / f"worker-{service}-{len(workers)}.log"
        worker = WorkerProcess(
            service,
            modules or ("receivers",),
            url or redis_server.url,
            log,
            extra,
            env or {"TEST_REDIS_URL": url or redis_server.url},
        )
        before = _worker_names(redis_server.client())
        worker.start()
        workers.append(worker)
        if ready:
            wait_for(
                lambda: _new_worker(redis_server.client(), before, worker),
                timeout=15,
                what=f"worker of {service} to start:\n{worker.output()}",
            )
        return worker

    yield start
    for worker in workers:
        worker.stop()


def _worker_names(client: redis.Redis) -> set[bytes | str]:
    return set(client.hkeys("busignal:workers"))


def _new_worker(
    client: redis.Redis, before: set[bytes | str], worker: WorkerProcess
) -> bool:
    if worker.process is not None and worker.process.poll() is not None:
        raise AssertionError(f"worker exited early:\n{worker.output()}")
    return bool(_worker_names(client) - before)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A local three-master Redis Cluster, one per test module that asks."""
    local = LocalCluster(tmp_path_factory.mktemp("cluster"))
    try:
        local.start()
        yield local
    finally:
        local.stop()
