"""Durable writes: a send or publish returns once Redis has the entry safe.

``durable="fsync"`` (or ``True``) waits for ``WAITAOF 1 0``: the server
has written the entry to its append-only file and fsynced it (Redis 7.2
or later, ``appendonly yes``). ``durable="replica"`` waits for ``WAIT 1``:
at least one replica has the entry in memory. Both commands wait for the
writes made *on the same connection* before them, so the writes and the
wait go in one round trip on one connection: on a Redis Cluster, on a
connection to the node that holds the entry's slot.

When the server does not confirm within the timeout, the entry may or
may not have been written and may or may not survive a crash:
``BusUnavailable`` says so. A server that cannot confirm at all (AOF
off, too old for ``WAITAOF``) raises ``ConfigurationError`` saying why.
An in-process ``memory://`` bus has nothing to wait for and confirms at
once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import redis

from busignal.errors import BusUnavailable, ConfigurationError
from busignal.transport.raw import RawPipeline, round_trip, xadd
from busignal.wire.records import text

if TYPE_CHECKING:
    from busignal.transport.clients import Transport

__all__ = [
    "FSYNC",
    "REPLICA",
    "Durability",
    "Writer",
    "append",
    "durability",
    "write",
]

FSYNC = "fsync"
REPLICA = "replica"
Durability = str  # FSYNC or REPLICA

#: One write and the key whose slot (node) it goes to.
Keyed = tuple[str, tuple[Any, ...]]


class Timeouts(Protocol):
    @property
    def timeout(self) -> float: ...


class Writer(Protocol):
    """What a durable write needs of its bus (``busignal.Bus`` is one)."""

    @property
    def transport(self) -> Transport: ...
    @property
    def config(self) -> Timeouts: ...
    def blocking_client(self, timeout: float) -> redis.Redis: ...


def durability(value: object) -> Durability | None:
    """The durability an option names: None, ``"fsync"`` or ``"replica"``.

    ``True`` means ``"fsync"``; ``None`` and ``False`` mean not durable.
    ConfigurationError names anything else.
    """
    if value is None or value is False:
        return None
    if value is True:
        return FSYNC
    if value in (FSYNC, REPLICA):
        return str(value)
    raise ConfigurationError(
        f"durable must be True, False, 'fsync' (Redis fsynced its AOF) or "
        f"'replica' (a replica has the entry), got {value!r}"
    )


def wait_command(mode: Durability, timeout: float) -> tuple[Any, ...]:
    """WAITAOF or WAIT, timing out after ``timeout`` seconds (never 0: forever)."""
    millis = max(1, int(timeout * 1000))
    if mode == FSYNC:
        return ("WAITAOF", 1, 0, millis)
    return ("WAIT", 1, millis)


def write(
    bus: Writer, writes: Sequence[Keyed], mode: Durability, timeout: float
) -> list[Any]:
    """Run ``writes`` and wait until Redis confirms them; return their replies.

    Each node's writes and its wait go in one round trip on one connection
    (the wait covers only that connection's writes). Raises BusUnavailable
    when a node does not confirm within ``timeout`` seconds.
    """
    client = bus.blocking_client(timeout)
    if bus.transport.is_memory:  # nothing to fsync or replicate in-process
        pipe = RawPipeline(client)
        for _, command in writes:
            pipe.execute_command(*command)
        return pipe.execute()
    by_node: dict[str, tuple[redis.Redis, list[int]]] = {}
    for index, (key, _) in enumerate(writes):
        if bus.transport.is_cluster:
            node: Any = client.get_node_from_key(key)  # type: ignore[attr-defined]  # a RedisCluster here
            name, connection = node.name, node.redis_connection
        else:
            name, connection = "", client
        by_node.setdefault(name, (connection, []))[1].append(index)
    replies: list[Any] = [None] * len(writes)
    for name, (connection, indexes) in by_node.items():
        commands = [writes[i][1] for i in indexes]
        where = name or "Redis"
        try:
            answers = round_trip(connection, [*commands, wait_command(mode, timeout)])
        except redis.exceptions.AskError as exc:  # MOVED too: a node of its own
            raise BusUnavailable(
                f"durable write: the slot moved away from {where} ({exc}), as in "
                f"a failover or resharding; the entry was not written there: "
                f"send or publish again"
            ) from exc
        except redis.ResponseError as exc:
            raise _refused(mode, exc, where) from exc
        _confirm(mode, answers[-1], timeout, where)
        for index, answer in zip(indexes, answers, strict=False):
            replies[index] = answer
    return replies


def _confirm(mode: Durability, reply: Any, timeout: float, where: str) -> None:
    """Raise BusUnavailable unless the wait's reply confirms the writes."""
    if mode == FSYNC:
        confirmed = bool(reply) and int(reply[0]) >= 1
        what = "fsynced its append-only file"
    else:
        confirmed = int(reply) >= 1
        what = "passed the entry to a replica"
    if not confirmed:
        raise BusUnavailable(
            f"durable={mode!r}: {where} has not {what} within {timeout:g}s; the "
            f"entry may or may not have been written, and may be lost if the "
            f"server fails; publish it again only if receivers can take a "
            f"duplicate"
        )


def _refused(mode: Durability, exc: redis.ResponseError, where: str) -> Exception:
    """What a refused WAITAOF or WAIT means, as an error that says what to do."""
    message = str(exc)
    written = "the entry was written, but its durability is not confirmed"
    if "unknown command" in message.lower() and "waitaof" in message.lower():
        return ConfigurationError(
            f"durable='fsync' needs WAITAOF (Redis 7.2 or later), and {where} is "
            f"too old for it ({message}); {written}: upgrade the server, or use "
            f"durable='replica' with a replica attached"
        )
    if "appendonly" in message.lower():
        return ConfigurationError(
            f"durable='fsync' needs the server's append-only file, and {where} "
            f"has appendonly off ({message}); {written}: set 'appendonly yes', "
            f"or use durable='replica'"
        )
    return exc


def append(
    bus: Writer,
    encoded: Sequence[tuple[str, dict[bytes, bytes]]],
    mode: Durability,
    maxlen: Callable[[str], int | None],
) -> list[str]:
    """XADD each ``(stream, fields)`` and wait for Redis to confirm; the ids."""
    writes = [
        (stream, xadd(stream, fields, maxlen(stream))) for stream, fields in encoded
    ]
    return [text(i) for i in write(bus, writes, mode, bus.config.timeout)]
