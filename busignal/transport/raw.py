"""Commands to Redis as plain argument tuples, without redis-py's pipeline.

A redis-py pipeline costs about 2 us of Python a command (its command
objects, wrappers and reply callbacks), as much as encoding an event; the
hot paths spell their few commands themselves and send them here:

- ``round_trip`` / ``RawPipeline``: one round trip on a pooled connection,
  for senders (publish, publish_many, send).
- ``PipelinedConnection``: send now, receive later, on one connection: the worker's lane
  asks Redis for its next batch before it runs the one in hand, so that
  Redis prepares it while the receivers run (two cores working instead of
  taking turns). The worker reads XREADGROUP replies raw
  (``busignal.worker.reading.raw_entries``): redis-py's parsing builds
  structures the worker would only take apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from hiredis import pack_command

__all__ = ["PipelinedConnection", "RawPipeline", "round_trip", "xadd"]


def round_trip(client: redis.Redis, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Send ``commands`` in one round trip on one of ``client``'s connections.

    What a redis-py pipeline does, without its per-command Python (about
    2 us a command, as much as encoding an event): the replies come raw,
    and the first command error is raised once every reply is read. A lost
    connection is retried by the client's policy, as a pipeline would be.
    """
    pool = client.connection_pool
    connection: Any = pool.get_connection()
    try:
        replies: list[Any] = connection.retry.call_with_retry(
            lambda: _exchange(connection, commands),
            lambda error: connection.disconnect(),
        )
    finally:
        pool.release(connection)
    for reply in replies:
        if isinstance(reply, redis.ResponseError):
            raise reply
    return replies


class RawPipeline:
    """The few pipeline commands the senders use, sent by ``round_trip``.

    A stand-in for ``client.pipeline(transaction=False)`` on one Redis:
    the same calls, the same parsed replies where a caller reads them
    (XINFO GROUPS), raw ones elsewhere (entry ids, popped replies).
    """

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._commands: list[tuple[Any, ...]] = []
        self._parsers: dict[int, Any] = {}

    def xadd(
        self, stream: str, fields: dict[bytes, bytes], maxlen: int | None = None
    ) -> None:
        self._commands.append(xadd(stream, fields, maxlen))

    def xinfo_groups(self, stream: str) -> None:
        self._parsers[len(self._commands)] = self._client.response_callbacks[
            "XINFO GROUPS"
        ]
        self._commands.append(("XINFO", "GROUPS", stream))

    def execute_command(self, *args: Any) -> None:
        """Queue any command; its reply comes back raw."""
        self._commands.append(args)

    def blpop(self, keys: Sequence[str], timeout: float) -> None:
        self._commands.append(("BLPOP", *keys, timeout))

    def lpop(self, key: str, count: int) -> None:
        self._commands.append(("LPOP", key, count))

    def execute(self) -> list[Any]:
        replies = round_trip(self._client, self._commands)
        for index, parse in self._parsers.items():
            replies[index] = parse(replies[index])
        return replies


def xadd(
    stream: str, fields: dict[bytes, bytes], maxlen: int | None
) -> tuple[Any, ...]:
    """XADD's arguments, as redis-py spells them (an approximate MAXLEN)."""
    flat = [item for pair in fields.items() for item in pair]
    if maxlen is None:
        return ("XADD", stream, "*", *flat)
    return ("XADD", stream, "MAXLEN", "~", maxlen, "*", *flat)


def _pack(commands: Sequence[tuple[Any, ...]]) -> list[bytes]:
    """The commands in Redis's protocol, ready for ``send_packed_command``.

    hiredis packs a command in C; redis-py's own packing walks every
    argument in Python first (a generator step per argument: per entry id
    of an XACK, per field of an XADD). The commands here are spelled word
    by word, with str, bytes and int arguments only, which is what
    hiredis takes (hiredis comes with ``redis[hiredis]``, a dependency).
    """
    return [b"".join(map(pack_command, commands))]


def _exchange(connection: Any, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    connection.send_packed_command(_pack(commands))
    replies: list[Any] = []
    for _ in commands:
        try:
            replies.append(connection.read_response())
        except redis.ResponseError as exc:
            replies.append(exc)
    return replies


class PipelinedConnection:
    """One connection with at most one batch of commands awaiting replies.

    ``send()`` then ``receive()``; after any exception, call ``reset()``
    (the connection is in an unknown state, the replies owed are lost).
    """

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._connection: Any = None
        self._owed = 0

    def builder(self) -> redis.client.Pipeline:
        """A pipeline that spells commands (``command_stack``); never executed."""
        return self._client.pipeline(transaction=False)

    def send(self, commands: list[tuple[Any, ...]]) -> None:
        """Send commands, each a tuple of its arguments (``("XACK", ...)``)."""
        if self._owed:
            raise RuntimeError("receive() the replies owed before sending again")
        connection = self._connection
        if connection is None:
            pool = self._client.connection_pool
            connection = self._connection = pool.get_connection()
        connection.send_packed_command(_pack(commands))
        self._owed = len(commands)

    def receive(self) -> list[Any]:
        """The replies of the last ``send()``, raw; a command's error is returned
        in its place, like ``pipeline.execute(raise_on_error=False)``."""
        owed, self._owed = self._owed, 0
        replies: list[Any] = []
        for _ in range(owed):
            try:
                replies.append(self._connection.read_response())
            except redis.ResponseError as exc:
                replies.append(exc)
        return replies

    def reset(self) -> None:
        """Drop the connection (after an error); the next send reconnects."""
        connection, self._connection = self._connection, None
        self._owed = 0
        if connection is not None:
            connection.disconnect()
            self._client.connection_pool.release(connection)

    def close(self) -> None:
        self.reset()
        self._client.close()
