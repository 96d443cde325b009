"""Every Redis key busignal uses, built in one place.

One signal's keys share the literal hash tag ``{sig:NAME}`` so that on a
Redis Cluster they live in one slot. The namespace isolates tenants and
tests without FLUSHALL.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

__all__ = ["Keys"]

_EVENTS_SUFFIX = "}:events"


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names for one namespace."""

    namespace: str = "busignal"

    def events(self, signal: str) -> str:
        """The stream holding one entry per send of ``signal``."""
        return f"{self.namespace}:{{sig:{signal}}}:events"

    def dead(self, signal: str) -> str:
        """The stream of ``signal``'s entries that failed past the limit."""
        return f"{self.namespace}:{{sig:{signal}}}:dead"

    def reply(self, message_id: str) -> str:
        """The list a worker of each service pushes its reply for one send to."""
        return f"{self.namespace}:reply:{message_id}"

    @property
    def workers(self) -> str:
        """The hash of worker heartbeats: consumer name -> encoded status."""
        return f"{self.namespace}:workers"

    def events_pattern(self) -> str:
        """A SCAN pattern matching every signal's events stream."""
        return f"{self.namespace}:{{sig:*}}:events"

    def signal_of(self, events_key: str) -> str:
        """The signal name of an events stream key (inverse of ``events``)."""
        return _signal_of(self.namespace, events_key)


@functools.lru_cache(maxsize=1024)
def _signal_of(namespace: str, events_key: str) -> str:
    # A worker asks this for every entry it reads; the answers are few.
    prefix = f"{namespace}:{{sig:"
    if not (events_key.startswith(prefix) and events_key.endswith(_EVENTS_SUFFIX)):
        raise ValueError(f"{events_key!r} is not an events key of {namespace!r}")
    return events_key[len(prefix) : -len(_EVENTS_SUFFIX)]
