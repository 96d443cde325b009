"""A worker joins its service's consumer groups, or recreates them where they stood.

See ``busignal.wire.groups`` for the record that makes a destroyed group
come back at its last acknowledged id instead of at ``0``.
"""

from __future__ import annotations

import logging
from typing import Any

from busignal.wire.groups import create_args, created, group_lost
from busignal.wire.keys import Keys

__all__ = ["join_group"]

logger = logging.getLogger(__name__)


async def join_group(
    client: Any, keys: Keys, service: str, stream: str, start: str
) -> None:
    """Make sure ``service`` has its group on ``stream``.

    A group that was destroyed comes back where it stood; a group never
    seen starts at ``start`` (``"$"`` or ``"0"``). Raises GroupLost when
    neither is possible (entries after the record were trimmed, or no
    record and ``start`` is ``""``): the worker stops rather than skip or
    re-run events, and the message says what to run.
    """
    done = created(
        await client.execute_command(
            *create_args(stream, keys.groups_of(stream), service, start)
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
    elif not done.made:
        raise group_lost(service, keys.signal_of(stream), stream, done)
