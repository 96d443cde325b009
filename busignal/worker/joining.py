"""A worker joins its service's consumer groups, or recreates them where they stood.

See ``busignal.wire.groups`` for the record that makes a destroyed group
come back at its last acknowledged id instead of at ``0``, and for when a
group whose stream is new since (Redis restarted empty) comes back at ``0``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import redis

from busignal.wire.groups import Created, create_args, created, group_lost
from busignal.wire.keys import Keys
from busignal.worker.reading import Entry

__all__ = ["Groups", "group_gone", "join_group"]

logger = logging.getLogger(__name__)


def group_gone(exc: BaseException) -> bool:
    """Whether Redis refused a command because a stream or its group is gone.

    ``NOGROUP`` (XREADGROUP, XPENDING, XCLAIM, XACK's record) or ``no such
    key`` (XINFO on a stream that is not there): the group was destroyed,
    or Redis lost its data (restarted empty, flushed). The worker recreates
    its groups (``join_group``) rather than stop.
    """
    if not isinstance(exc, redis.ResponseError):
        return False
    message = str(exc)
    return "NOGROUP" in message or "no such key" in message.lower()


async def join_group(
    client: Any, keys: Keys, service: str, stream: str, start: str, seen: str = ""
) -> Created:
    """Make sure ``service`` has its group on ``stream``; say what was done.

    A group that was destroyed comes back where it stood; a group never
    seen starts at ``start`` (``"$"`` or ``"0"``). With no record, a group
    whose stream is new since the worker saw it up to ``seen`` (Redis lost
    its data) comes back at ``0``: nothing of what was there can be run
    again or skipped any more, and every event sent since runs. Raises
    GroupLost when none of these holds (entries after the record were
    trimmed, or no record, ``start`` is ``""`` and the stream is not new):
    the worker stops rather than skip or re-run events, and the message
    says what to run.
    """
    done = created(
        await client.execute_command(
            *create_args(stream, keys.groups_of(stream), service, start, seen=seen)
        )
    )
    if done.kind == "created":
        logger.info("service %s joined %s at %s", service, stream, done.at)
    elif done.kind == "restored":
        logger.warning(
            "service %s: its consumer group on %s was gone; recreated it where "
            "it stood, after %s",
            service,
            stream,
            done.at,
        )
    elif done.kind == "renewed":
        logger.warning(
            "service %s: its consumer group on %s was gone with the record of "
            "where it stood, and the stream holds none of what the worker saw "
            "in it (up to %s): Redis restarted without its data, or was "
            "flushed. Recreated the group at the start of the stream: events "
            "sent since run; those Redis lost are gone",
            service,
            stream,
            seen,
        )
    elif not done.made:
        raise group_lost(service, keys.signal_of(stream), stream, done)
    return done


class Groups:
    """One worker's consumer groups: joined, and recreated when they vanish.

    ``seen`` holds, per stream, an id the worker saw in it lately (at a
    join, or the last of a batch it read): what tells a stream Redis lost
    from one it kept, should the group vanish (``join_group``).
    """

    def __init__(self, keys: Keys, service: str) -> None:
        self.keys = keys
        self.service = service
        self.seen: dict[str, str] = {}

    def saw(self, entries: Sequence[Entry]) -> None:
        """Note the last of a batch's entries (one dict write: any thread)."""
        if entries:
            self.seen[entries[-1][0]] = entries[-1][1]

    async def join(self, client: Any, streams: Sequence[str], start: str) -> None:
        """``join_group`` on each stream, from where the worker saw it."""
        for stream in streams:
            seen = self.seen.get(stream, "")
            done = await join_group(
                client, self.keys, self.service, stream, start, seen
            )
            self.seen[stream] = done.last
