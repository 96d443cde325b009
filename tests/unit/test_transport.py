"""Clients for every URL kind, built offline.

A client's pool builds its connections lazily; building one here from the
pool's own class and options is what redis-py does on first use, without
touching a socket.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
import redis.asyncio

from busignal.transport import Transport


def _connection(client: Any) -> Any:
    pool = client.connection_pool
    return pool.connection_class(**pool.connection_kwargs)


def test_transport_unix_sync_client_builds_its_connection() -> None:
    client = Transport("unix:///run/redis/redis.sock").sync_client()

    connection = _connection(client)

    assert isinstance(connection, redis.UnixDomainSocketConnection)
    assert connection.path == "/run/redis/redis.sock"
    assert connection.socket_timeout == 5.0
    assert connection.socket_connect_timeout == 2.0


def test_transport_unix_async_client_builds_its_connection() -> None:
    client = Transport("unix:///run/redis/redis.sock").async_client()

    connection = _connection(client)

    assert isinstance(connection, redis.asyncio.UnixDomainSocketConnection)
    assert connection.path == "/run/redis/redis.sock"
    assert connection.socket_connect_timeout == 2.0


@pytest.mark.parametrize("kind", ["sync", "async", "blocking"])
def test_transport_unix_clients_pass_no_tcp_only_options(kind: str) -> None:
    transport = Transport("unix:///tmp/redis.sock")

    builders: dict[str, Callable[[], Any]] = {
        "sync": transport.sync_client,
        "async": transport.async_client,
        "blocking": lambda: transport.sync_client(socket_timeout=None),
    }
    client = builders[kind]()

    options = client.connection_pool.connection_kwargs
    assert not {"socket_keepalive", "socket_keepalive_options", "socket_type"} & set(
        options
    )


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6390/0", "rediss://h:6390/0"])
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_transport_tcp_clients_keep_their_connections_alive(
    url: str, kind: str
) -> None:
    transport = Transport(url)
    client: Any = (
        transport.sync_client() if kind == "sync" else transport.async_client()
    )

    connection = _connection(client)

    assert connection.socket_keepalive is True
    assert connection.socket_connect_timeout == 2.0
