"""Clients for a Redis master found through Redis Sentinel.

``redis+sentinel://[user:password@]host:26379,host2:26379/mymaster[/db]``
(``rediss+sentinel://`` for TLS) names the Sentinels, the master's name as
the Sentinels know it, and the database. The password (in the user part or
as ``?password=``) logs in to the master; ``?sentinel_password=`` (and
``?sentinel_username=``) to Sentinels that require one. Other query options
are redis-py's, as for ``redis://`` and ``rediss://``; with TLS, the
``ssl_*`` options hold for the Sentinels as well as the master.

Every connection asks a Sentinel where the master is when it connects
(redis-py's ``SentinelConnectionPool``), so after a failover the next
connection goes to the promoted replica; a connection still open to a
demoted master gets READONLY and is dropped. The raw command path
(``transport.raw``) takes its connections from the same pool, so it follows
the master too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.connection
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

from busignal.errors import ConfigurationError

__all__ = ["SCHEMES", "SentinelTarget", "is_sentinel"]

SCHEMES = ("redis+sentinel", "rediss+sentinel")
_EXAMPLE = "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster/0"


def is_sentinel(url: str) -> bool:
    return urlsplit(url).scheme in SCHEMES


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    """What a Sentinel URL names: the Sentinels, the master, how to log in."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    #: Keyword arguments for the master's connections (db, login, TLS, ...).
    options: dict[str, Any] = field(default_factory=dict)
    #: Keyword arguments for the Sentinels' connections (login, TLS).
    sentinel_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, url: str, redacted: str) -> SentinelTarget:
        """Read a Sentinel URL; ConfigurationError (``redacted`` shown) if malformed."""
        parts = urlsplit(url)
        tls = parts.scheme == "rediss+sentinel"
        auth, at, hosts = parts.netloc.rpartition("@")
        sentinels = tuple(_node(item, redacted) for item in hosts.split(","))
        path = [p for p in parts.path.split("/") if p]
        if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
            raise ConfigurationError(
                f"{redacted!r} does not name a master: write "
                f"redis+sentinel://host:port,.../MASTER_NAME[/DB], e.g. {_EXAMPLE}"
            )
        query = dict(parse_qsl(parts.query))
        sentinel_login = {
            key.removeprefix("sentinel_"): query.pop(key)
            for key in ("sentinel_username", "sentinel_password")
            if key in query
        }
        # redis-py reads the rest (types included) as it does for redis://.
        plain = f"{'rediss' if tls else 'redis'}://{auth}{at}localhost/"
        options = redis.connection.parse_url(plain + "?" + urlencode(query))  # type: ignore[no-untyped-call]  # untyped in redis-py
        for key in ("host", "port", "connection_class"):
            options.pop(key, None)
        options["db"] = int(path[1]) if len(path) == 2 else options.get("db", 0)
        tls_options = {k: v for k, v in options.items() if k.startswith("ssl_")}
        if tls:
            options["ssl"] = True
            tls_options["ssl"] = True
        return cls(sentinels, path[0], options, {**sentinel_login, **tls_options})

    def where(self) -> str:
        """The master and its Sentinels, for messages (never a password)."""
        hosts = ", ".join(f"{h}:{p}" for h, p in self.sentinels)
        return f"master {self.master!r} through the Sentinels {hosts}"

    def _sentinel_kwargs(self, connect_timeout: float) -> dict[str, Any]:
        # No retries: one Sentinel's failure is followed by asking the next,
        # and the master's connection retries the whole round itself.
        return {
            "socket_connect_timeout": connect_timeout,
            "socket_timeout": connect_timeout,
            "retry": Retry(NoBackoff(), 0),
            **self.sentinel_options,
        }

    def sync_client(self, options: dict[str, Any], retry: Retry) -> redis.Redis:
        """A client of the master; ``options`` are the bus's timeouts and such."""
        manager = _Sentinel(
            self,
            list(self.sentinels),
            sentinel_kwargs=self._sentinel_kwargs(options["socket_connect_timeout"]),
        )
        client: redis.Redis = manager.master_for(  # type: ignore[no-untyped-call]  # untyped in redis-py
            self.master, retry=retry, **{**self.options, **options}
        )
        return client

    def async_client(self, options: dict[str, Any], retry: Any) -> redis.asyncio.Redis:
        """The asyncio twin of ``sync_client``."""
        kwargs = self._sentinel_kwargs(options["socket_connect_timeout"])
        from redis.asyncio.retry import Retry as AsyncRetry

        kwargs["retry"] = AsyncRetry(NoBackoff(), 0)
        manager = _AsyncSentinel(self, list(self.sentinels), sentinel_kwargs=kwargs)
        client: redis.asyncio.Redis = manager.master_for(
            self.master, retry=retry, **{**self.options, **options}
        )
        return client


def _node(item: str, redacted: str) -> tuple[str, int]:
    host, _, port = item.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ConfigurationError(
            f"bad Sentinel {item!r} in {redacted!r}: write host:port, e.g. {_EXAMPLE}"
        )
    return host.strip("[]"), int(port)


def _not_found(
    target: SentinelTarget, exc: Exception
) -> redis.sentinel.MasterNotFoundError:
    """redis-py's error, reworded: which master, which Sentinels, and why.

    redis-py lists each Sentinel that failed (its client and error, joined
    by " - "); the reason here says whether none answered, or those that
    did knew no healthy master by that name.
    """
    failed, asked = str(exc).count(" - "), len(target.sentinels)
    if failed >= asked:
        reason = "no Sentinel answered"
    else:
        which = (
            "no Sentinel"
            if not failed
            else f"{asked - failed} of {asked} Sentinels answered and none"
        )
        reason = (
            f"{which} knows a healthy master named {target.master!r}: check the "
            f"name (sentinel monitor NAME ...) or wait for a failover to end"
        )
    return redis.sentinel.MasterNotFoundError(f"{target.where()}: {reason}")


class _Sentinel(redis.sentinel.Sentinel):
    """redis-py's Sentinel, whose failure to find a master says what was asked."""

    def __init__(self, target: SentinelTarget, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]  # untyped in redis-py
        self.target = target

    def discover_master(self, service_name: str) -> Any:
        try:
            return super().discover_master(service_name)  # type: ignore[no-untyped-call]  # untyped in redis-py
        except redis.sentinel.MasterNotFoundError as exc:
            raise _not_found(self.target, exc) from None


class _AsyncSentinel(redis.asyncio.sentinel.Sentinel):
    """The asyncio twin of ``_Sentinel``."""

    def __init__(self, target: SentinelTarget, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]  # untyped in redis-py
        self.target = target

    async def discover_master(self, service_name: str) -> Any:
        try:
            return await super().discover_master(service_name)
        except redis.asyncio.sentinel.MasterNotFoundError as exc:
            error = _not_found(self.target, exc)
            raise redis.asyncio.sentinel.MasterNotFoundError(str(error)) from None
