"""Clients for every URL kind, and the words of a connection failure, offline.

A client's pool builds its connections lazily; building one here from the
pool's own class and options is what redis-py does on first use, without
touching a socket.
"""

from __future__ import annotations

import re
import sys
import tomllib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from busignal.errors import ConfigurationError
from busignal.transport.clients import Transport, redact, unavailable

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


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


@pytest.mark.parametrize(
    ("reason", "shown"),
    [
        (
            "Error 111 connecting to 127.0.0.1:1. Connection refused.",
            "Error 111 connecting to 127.0.0.1:1. Connection refused",
        ),
        (
            "Error 111 connecting to 127.0.0.1:1. Connection refused",
            "Error 111 connecting to 127.0.0.1:1. Connection refused",
        ),
        ("Connection closed by server!", "Connection closed by server"),
        ("Timeout reading from socket;  ", "Timeout reading from socket"),
        ("", "ConnectionError"),
    ],
)
def test_unavailable_message_is_one_clean_sentence(reason: str, shown: str) -> None:
    error = unavailable("redis://u:pw@127.0.0.1:1/0", redis.ConnectionError(reason))

    tls = "closed by server" in reason
    hint = "; if that port serves TLS, use rediss:// (see docs/security.md)"
    assert str(error) == (
        f"cannot reach Redis at redis://u:***@127.0.0.1:1/0 ({shown}); check that "
        f"the server is running and that BUSIGNAL_URL (or configure(url=...)) "
        f"points at it{hint if tls else ''}"
    )


def test_unavailable_names_the_credentials_for_a_refused_login() -> None:
    refused = redis.AuthenticationError(
        "invalid username-password pair or user is disabled."
    )

    text = str(unavailable("redis://alice:secret@127.0.0.1:1/0", refused))

    assert text == (
        "Redis at redis://alice:***@127.0.0.1:1/0 refused the login (invalid "
        "username-password pair or user is disabled); check the user and "
        "password in BUSIGNAL_URL (or configure(url=...))"
    )


@pytest.mark.parametrize("missing", ["fakeredis", "lupa"])
def test_memory_url_without_fakeredis_names_an_extra_that_exists(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # as if not installed

    with pytest.raises(ConfigurationError) as raised:
        Transport(f"memory://{uuid.uuid4().hex}").sync_client()

    found = re.search(r"pip install '?busignal\[(\w+)\]'?", str(raised.value))
    assert found is not None, str(raised.value)
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    assert any(dep.startswith("fakeredis[lua]") for dep in extras[found.group(1)])


def test_unavailable_sees_a_refused_login_behind_a_connection_error() -> None:
    # redis-py's asyncio unix:// connection wraps the login failure this way.
    wrapped = redis.ConnectionError("invalid username-password pair.")
    wrapped.__cause__ = redis.AuthenticationError("invalid username-password pair.")

    text = str(unavailable("unix://alice:secret@/run/redis.sock", wrapped))

    assert text.startswith(
        "Redis at unix://alice:***@/run/redis.sock refused the login"
    )


@pytest.mark.parametrize(
    ("url", "cluster"),
    [("redis+cluster://127.0.0.1:7000,127.0.0.1:7001/0", False),
     ("redis://127.0.0.1:7000/0", True)],
)  # fmt: skip
def test_transport_async_cluster_nodes_build_their_connections(
    url: str, cluster: bool
) -> None:
    client: Any = Transport(url, cluster=cluster).async_client()

    for node in client.nodes_manager.startup_nodes.values():
        connection = node.connection_class(**node.connection_kwargs)
        assert connection.socket_keepalive is True
        assert connection.socket_connect_timeout == 2.0


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://h:1/0?password=pw", "redis://h:1/0?password=***"),
        (
            "redis://u:pw@h:1/0?socket_timeout=1&password=p%40w",
            "redis://u:***@h:1/0?socket_timeout=1&password=***",
        ),
        (
            "rediss://h:1/0?ssl_ca_certs=/ca.pem&ssl_password=pw",
            "rediss://h:1/0?ssl_ca_certs=/ca.pem&ssl_password=***",
        ),
        (
            "unix:///run/redis.sock?password=pw&db=1",
            "unix:///run/redis.sock?password=***&db=1",
        ),
        ("redis://h:1/0?db=1", "redis://h:1/0?db=1"),
    ],
)
def test_redact_hides_passwords_in_the_query_too(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_unavailable_hides_a_query_password() -> None:
    error = unavailable(
        "redis://127.0.0.1:1/0?password=hunter2", redis.ConnectionError("x")
    )

    assert "hunter2" not in str(error)
    assert "password=***" in str(error)
