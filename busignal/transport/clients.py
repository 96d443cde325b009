"""Redis clients for a bus URL: real servers and the in-process ``memory://``.

Every client busignal uses comes from here, so timeouts, retries and the
mapping of connection failures to ``BusUnavailable`` live in one place.

URLs: ``redis://[user:password@]host:port/db``, ``rediss://`` (TLS, with
``ssl_*`` query options as redis-py reads them), ``unix:///path/redis.sock``
and ``memory://[name]`` (fakeredis; one shared in-process server per name).

Redis Cluster: ``redis+cluster://[user:password@]host:port,host:port/`` (or
``rediss+cluster://`` for TLS) names some startup nodes; ``Bus(url,
cluster=True)`` takes a plain ``redis://host:port`` URL of one node, as
redis-py's ``RedisCluster.from_url`` does. The clients are then
``redis.cluster.RedisCluster`` and ``redis.asyncio.cluster.RedisCluster``,
typed as the plain clients: they offer the same commands. A cluster URL
that points at a plain server, or a plain URL that points at a cluster
node, fails with ``ConfigurationError`` at first use (``MOVED`` or "cluster
mode is not enabled"), not with a redirection traceback.

Redis Sentinel: ``redis+sentinel://host:26379,host:26379/MASTER/db`` (or
``rediss+sentinel://``); see ``busignal.transport.sentinel``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from busignal.errors import BusUnavailable, ConfigurationError
from busignal.transport import sentinel

__all__ = [
    "CONNECTION_ERRORS",
    "Transport",
    "cluster_nodes",
    "forget_memory_server",
    "misconfigured",
    "redact",
    "refused_login",
    "unavailable",
]

#: What redis-py raises when a server cannot be reached or stops answering,
#: or a cluster is failing over: CLUSTERDOWN and TRYAGAIN (ask again
#: shortly), a slot no node serves yet, or its own retries running out.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    ConnectionError,
    TimeoutError,
    OSError,
    redis.exceptions.ClusterError,
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
)

_SCHEMES = (
    "redis",
    "rediss",
    "unix",
    "memory",
    "redis+cluster",
    "rediss+cluster",
    *sentinel.SCHEMES,
)
_BACKOFF = ExponentialWithJitterBackoff(base=0.05, cap=0.5)
# Only a refused or dropped connection is retried (briefly). A timeout is
# not: the command may have run, and a send must not outlive its deadline.
_RETRIED: tuple[type[redis.RedisError], ...] = (redis.ConnectionError,)
_CLUSTER_BACKOFF = ExponentialWithJitterBackoff(base=0.1, cap=1.0)
_CLUSTER_RETRIES = 8
#: Query options whose value is a secret: masked by ``redact``.
_SECRET_OPTION = re.compile(r"pass|secret|token", re.IGNORECASE)
_memory_servers: dict[str, Any] = {}
_memory_lock = threading.Lock()


def redact(url: str) -> str:
    """Return ``url`` with every password replaced by ``***``, for messages and logs.

    Both places a password can be: the user info (``redis://u:pw@host``) and
    the query (``?password=pw``, which redis-py reads too). Any query option
    whose name says it is a secret (``password``, ``ssl_password``, ...) is
    masked as well.
    """
    parts = urlsplit(url)
    if parts.password is not None:
        user = parts.username or ""
        hosts = parts.netloc.rpartition("@")[2]  # may list several host:port
        url = urlunsplit(parts._replace(netloc=f"{user}:***@{hosts}"))
    base, mark, query = url.partition("?")
    pairs = parse_qsl(query.partition("#")[0], keep_blank_values=True)
    if not any(_SECRET_OPTION.search(name) for name, _ in pairs):
        return url
    masked = [
        (name, "***" if _SECRET_OPTION.search(name) else value) for name, value in pairs
    ]
    return base + mark + urlencode(masked, safe="*/:")


def cluster_nodes(url: str) -> tuple[str, list[tuple[str, int]]]:
    """Split a cluster URL into a one-node URL (options, credentials) and nodes.

    ``redis+cluster://u:p@a:1,b:2/?x=y`` gives ``("redis://u:p@a:1/?x=y",
    [("a", 1), ("b", 2)])``; a plain URL gives itself and no extra nodes.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.removesuffix("+cluster")
    auth, at, hosts = parts.netloc.rpartition("@")
    nodes: list[tuple[str, int]] = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ConfigurationError(
                f"bad cluster node {item!r} in {redact(url)!r}: write host:port, "
                f"e.g. redis+cluster://10.0.0.1:7000,10.0.0.2:7000"
            )
        nodes.append((host.strip("[]"), int(port)))
    first = f"{auth}{at}{nodes[0][0]}:{nodes[0][1]}"
    return urlunsplit(parts._replace(scheme=scheme, netloc=first)), nodes


def misconfigured(url: str, exc: BaseException) -> ConfigurationError | None:
    """The error for a cluster/non-cluster mix-up behind ``exc``, if it is one."""
    text = str(exc)
    if isinstance(exc, redis.exceptions.MovedError) or text.startswith("MOVED "):
        return ConfigurationError(
            f"{redact(url)} is a node of a Redis Cluster (it answered MOVED {text}); "
            f"use redis+cluster://host:port,... or Bus(url, cluster=True)"
        )
    if isinstance(exc, redis.exceptions.RedisClusterException) and (
        "not enabled" in text or "not a cluster" in text.lower()
    ):
        return ConfigurationError(
            f"{redact(url)} is not a Redis Cluster ({text}); use redis://host:port "
            f"without +cluster or cluster=True"
        )
    return None


def unavailable(url: str, exc: BaseException) -> BusUnavailable:
    """Build the error for a Redis that cannot be reached (password redacted).

    redis-py's own text ends in a period or not, depending on the failure;
    it is put in parentheses without its end punctuation, so the message
    reads as one sentence whatever it was.
    """
    reason = _reason(exc)
    if refused_login(exc):
        return BusUnavailable(
            f"Redis at {redact(url)} refused the login ({reason}); check the "
            f"user and password in BUSIGNAL_URL (or configure(url=...))"
        )
    return BusUnavailable(
        f"cannot reach Redis at {redact(url)} ({reason}); check that the server "
        f"is running and that BUSIGNAL_URL (or configure(url=...)) points at it"
        f"{_tls_hint(url, reason)}"
    )


def _tls_hint(url: str, reason: str) -> str:
    """A word on TLS when the failure looks like one side speaking it alone.

    A TLS port drops a plain connection at once (reset, or closed); a plain
    port answers a TLS handshake with bytes that are no TLS record, or
    waits for a command while the handshake waits for it (a timeout).
    """
    scheme = urlsplit(url).scheme.removesuffix("+cluster")
    text = reason.lower()
    if scheme == "redis" and ("reset by peer" in text or "closed by server" in text):
        return "; if that port serves TLS, use rediss:// (see docs/security.md)"
    handshake = ("wrong version number", "record", "timeout connecting")
    if scheme == "rediss" and any(word in text for word in handshake):
        return "; if that port serves Redis without TLS, use redis://"
    return ""


def refused_login(exc: BaseException) -> bool:
    """True if ``exc`` is, or was raised from, Redis refusing the user or password.

    redis-py's asyncio ``unix://`` connection re-raises the login failure as
    a plain ``ConnectionError`` caused by it, so the causes are looked at too.
    """
    seen: BaseException | None = exc
    for _ in range(5):  # a short chain; never loop on a cycle
        if seen is None:
            return False
        if isinstance(seen, redis.AuthenticationError):
            return True
        seen = seen.__cause__
    return False


def _reason(exc: BaseException) -> str:
    """``exc``'s text without trailing punctuation, or its class name if empty."""
    text = str(exc).strip().rstrip(".!?;:, ").strip()
    return text or type(exc).__name__


def _memory_server(name: str) -> Any:
    try:
        import fakeredis
        import lupa  # noqa: F401 - a send is a Lua script, which fakeredis runs in it
    except ImportError as exc:
        raise ConfigurationError(
            "memory:// needs fakeredis with Lua (lupa); install it with "
            "pip install 'busignal[memory]'"
        ) from exc
    with _memory_lock:
        server = _memory_servers.get(name)
        if server is None:
            server = fakeredis.FakeServer()
            _memory_servers[name] = server
        return server


def forget_memory_server(name: str) -> None:
    """Drop the in-process server of ``memory://name`` and everything it holds.

    Clients already made keep it alive until they are closed; a later
    ``memory://name`` starts empty. Test fixtures call this so a long test
    session does not keep every test's data.
    """
    with _memory_lock:
        _memory_servers.pop(name, None)


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
        cluster: bool = False,
    ) -> None:
        scheme = urlsplit(url).scheme
        if scheme not in _SCHEMES:
            raise ConfigurationError(
                f"unsupported bus URL {redact(url)!r}: use one of "
                + ", ".join(f"{s}://" for s in _SCHEMES)
            )
        self.url = url
        self.is_memory = scheme == "memory"
        self.is_cluster = cluster or scheme.endswith("+cluster")
        if self.is_cluster and scheme in ("memory", "unix", *sentinel.SCHEMES):
            raise ConfigurationError(
                f"{scheme}:// cannot be a Redis Cluster; use redis+cluster://host:port"
            )
        self._node_url, self._nodes = (
            cluster_nodes(url) if self.is_cluster else (url, [])
        )
        self._sentinel = (
            sentinel.SentinelTarget.parse(url, redact(url))
            if sentinel.is_sentinel(url)
            else None
        )
        self.connect_timeout = connect_timeout
        self.socket_timeout = socket_timeout
        # A unix socket has no TCP keepalive, and redis-py 8's
        # UnixDomainSocketConnection refuses the option outright.
        self._tcp = scheme != "unix"

    def _options(self, socket_timeout: float | None) -> dict[str, Any]:
        """The connection options of this URL's kind, for every client built here.

        Only what the kind's connection class accepts: ``Redis.from_url``
        hands every keyword to it, so one TCP-only option kills ``unix://``.
        """
        options: dict[str, Any] = {
            "socket_connect_timeout": self.connect_timeout,
            "socket_timeout": socket_timeout,
            "health_check_interval": 15,
        }
        if self._tcp:
            options["socket_keepalive"] = True
        return options

    def sync_client(self, *, socket_timeout: float | None = -1.0) -> redis.Redis:
        """A new sync client (its own pool); ``socket_timeout=None`` blocks freely."""
        timeout = self.socket_timeout if socket_timeout == -1.0 else socket_timeout
        if self.is_memory:
            server = _memory_server(urlsplit(self.url).netloc or "default")
            import fakeredis

            client: redis.Redis = fakeredis.FakeRedis(server=server)
            return client
        if self.is_cluster:
            return self._sync_cluster(timeout)
        retry = Retry(_BACKOFF, 2, supported_errors=_RETRIED)
        if self._sentinel is not None:
            return self._sentinel.sync_client(self._options(timeout), retry)
        return redis.Redis.from_url(self.url, retry=retry, **self._options(timeout))

    def _sync_cluster(self, timeout: float | None) -> redis.Redis:
        nodes = [redis.cluster.ClusterNode(h, p) for h, p in self._nodes]  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        # Failover: the client refreshes its slot map and retries a command
        # whose node went away, for a few seconds (a replica's promotion).
        retry = Retry(_CLUSTER_BACKOFF, _CLUSTER_RETRIES)
        with self.errors():
            client = redis.cluster.RedisCluster.from_url(
                self._node_url,
                startup_nodes=nodes,
                retry=retry,
                **self._options(timeout),
            )
        # Same command methods as redis.Redis; callers keep one client type.
        return cast(redis.Redis, client)

    def async_client(
        self, *, socket_timeout: float | None = -1.0
    ) -> redis.asyncio.Redis:
        """A new asyncio client (its own pool), for ``asend`` and the worker."""
        timeout = self.socket_timeout if socket_timeout == -1.0 else socket_timeout
        if self.is_memory:
            server = _memory_server(urlsplit(self.url).netloc or "default")
            import fakeredis

            aclient: redis.asyncio.Redis = fakeredis.FakeAsyncRedis(server=server)
            return aclient
        from redis.asyncio.retry import Retry as AsyncRetry

        if self.is_cluster:
            nodes = [redis.asyncio.cluster.ClusterNode(h, p) for h, p in self._nodes]
            cluster = redis.asyncio.cluster.RedisCluster.from_url(
                self._node_url,
                startup_nodes=nodes,
                retry=AsyncRetry(_CLUSTER_BACKOFF, _CLUSTER_RETRIES),
                **self._options(timeout),
            )
            # Same command methods as redis.asyncio.Redis (see sync_client).
            return cast(redis.asyncio.Redis, cluster)
        retry = AsyncRetry(_BACKOFF, 2, supported_errors=_RETRIED)
        if self._sentinel is not None:
            return self._sentinel.async_client(self._options(timeout), retry)
        return redis.asyncio.Redis.from_url(
            self.url, retry=retry, **self._options(timeout)
        )

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn connection failures inside the block into ``BusUnavailable``."""
        try:
            yield
        except CONNECTION_ERRORS as exc:
            raise unavailable(self.url, exc) from exc
        except (redis.ResponseError, redis.exceptions.RedisClusterException) as exc:
            self.raise_misconfigured(exc)
            raise

    def raise_misconfigured(self, exc: BaseException) -> None:
        """Raise ConfigurationError for a cluster/non-cluster mix-up; else return.

        A cluster whose nodes cannot be reached at all is BusUnavailable.
        """
        error = misconfigured(self.url, exc)
        if error is not None:
            raise error from exc
        if isinstance(exc, redis.exceptions.RedisClusterException) and (
            "cannot be connected" in str(exc)
        ):
            raise unavailable(self.url, exc) from exc
