"""Redis clients for a bus URL: real servers and the in-process ``memory://``.

Every client busignal uses comes from here, so timeouts, retries and the
mapping of connection failures to ``BusUnavailable`` live in one place.

URLs: ``redis://[user:password@]host:port/db``, ``rediss://`` (TLS, with
``ssl_*`` query options as redis-py reads them), ``unix:///path/redis.sock``
and ``memory://[name]`` (fakeredis; one shared in-process server per name).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from busignal.errors import BusUnavailable, ConfigurationError

__all__ = [
    "CONNECTION_ERRORS",
    "Transport",
    "redact",
    "unavailable",
]

#: What redis-py raises when a server cannot be reached or stops answering.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    ConnectionError,
    TimeoutError,
    OSError,
)

_SCHEMES = ("redis", "rediss", "unix", "memory")
_BACKOFF = ExponentialWithJitterBackoff(base=0.05, cap=0.5)
# Only a refused or dropped connection is retried (briefly). A timeout is
# not: the command may have run, and a send must not outlive its deadline.
_RETRIED: tuple[type[redis.RedisError], ...] = (redis.ConnectionError,)
_memory_servers: dict[str, Any] = {}
_memory_lock = threading.Lock()


def redact(url: str) -> str:
    """Return ``url`` with its password replaced by ``***``, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def unavailable(url: str, exc: BaseException) -> BusUnavailable:
    """Build the error for a Redis that cannot be reached (password redacted)."""
    return BusUnavailable(
        f"cannot reach Redis at {redact(url)}: {exc}. Check that the server is "
        f"running and that BUSIGNAL_URL (or configure(url=...)) points at it"
    )


def _memory_server(name: str) -> Any:
    try:
        import fakeredis
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigurationError(
            "memory:// needs fakeredis; install it with 'pip install busignal[memory]'"
        ) from exc
    with _memory_lock:
        server = _memory_servers.get(name)
        if server is None:
            server = fakeredis.FakeServer()
            _memory_servers[name] = server
        return server


class Transport:
    """Creates the sync and async Redis clients for one URL.

    ``socket_timeout`` bounds every plain command; blocking commands (BLPOP,
    XREADGROUP BLOCK) use the ``blocking`` clients, whose socket timeout is
    the command's own block time plus ``socket_timeout``.
    """

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 2.0,
        socket_timeout: float = 5.0,
    ) -> None:
        scheme = urlsplit(url).scheme
        if scheme not in _SCHEMES:
            raise ConfigurationError(
                f"unsupported bus URL {redact(url)!r}: use one of "
                + ", ".join(f"{s}://" for s in _SCHEMES)
            )
        self.url = url
        self.is_memory = scheme == "memory"
        self.connect_timeout = connect_timeout
        self.socket_timeout = socket_timeout

    def _options(self, socket_timeout: float | None) -> dict[str, Any]:
        return {
            "socket_connect_timeout": self.connect_timeout,
            "socket_timeout": socket_timeout,
            "socket_keepalive": True,
            "health_check_interval": 15,
        }

    def sync_client(self, *, socket_timeout: float | None = -1.0) -> redis.Redis:
        """A new sync client (its own pool); ``socket_timeout=None`` blocks freely."""
        timeout = self.socket_timeout if socket_timeout == -1.0 else socket_timeout
        if self.is_memory:
            import fakeredis

            name = urlsplit(self.url).netloc or "default"
            client: redis.Redis = fakeredis.FakeRedis(server=_memory_server(name))
            return client
        retry = Retry(_BACKOFF, 2, supported_errors=_RETRIED)
        return redis.Redis.from_url(self.url, retry=retry, **self._options(timeout))

    def async_client(
        self, *, socket_timeout: float | None = -1.0
    ) -> redis.asyncio.Redis:
        """A new asyncio client (its own pool), for ``asend`` and the worker."""
        timeout = self.socket_timeout if socket_timeout == -1.0 else socket_timeout
        if self.is_memory:
            import fakeredis

            name = urlsplit(self.url).netloc or "default"
            aclient: redis.asyncio.Redis = fakeredis.FakeAsyncRedis(
                server=_memory_server(name)
            )
            return aclient
        from redis.asyncio.retry import Retry as AsyncRetry

        retry = AsyncRetry(_BACKOFF, 2, supported_errors=_RETRIED)
        return redis.asyncio.Redis.from_url(
            self.url, retry=retry, **self._options(timeout)
        )

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn connection failures inside the block into ``BusUnavailable``."""
        try:
            yield
        except CONNECTION_ERRORS as exc:
            if isinstance(exc, redis.ResponseError):
                raise
            raise unavailable(self.url, exc) from exc
