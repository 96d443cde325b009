"""One distributed send under way, and what a process knows of services.

``Send`` is the plan of one send: what to write, which replies to wait
for and until when. ``Services`` is this process's short-lived memory of
which services (consumer groups) read each stream, so that a send knows
whom to wait for without a metadata query each time. Kept apart from
``busignal.bus``, which owns the clients and the send and publish calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from busignal.reply import Collector

__all__ = ["Send", "Services", "text"]


def text(value: object) -> str:
    """A Redis reply (entry id, group name) as a str."""
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True, slots=True)
class Send:
    """One send under way: what to write and how long to wait for replies."""

    signal: str
    stream: str
    reply_key: str
    fields: dict[bytes, bytes]
    timeout: float
    deadline: float
    fail_fast: bool
    find_receiver: Callable[[str], Callable[..., object] | None]
    services: list[str] | None  # None: look them up in the first round trip
    maxlen: int | None
    wait_now: bool  # services are expected: BLPOP in the first round trip

    def queue(self, pipe: Any) -> None:
        """Add the send's first round trip to a (sync or async) pipeline."""
        pipe.xadd(self.stream, self.fields, maxlen=self.maxlen)
        if self.services is None:
            pipe.xinfo_groups(self.stream)
        if self.wait_now:
            self._queue_pops(pipe, len(self.services or ()), self.timeout)

    def _queue_pops(self, pipe: Any, expected: int, timeout: float) -> None:
        # Wait for one reply, then take every other reply already there: a
        # fan-out's replies often arrive together, one round trip for them.
        pipe.blpop([self.reply_key], timeout=timeout)
        if expected > 1:
            pipe.lpop(self.reply_key, expected - 1)

    def collect_first(self, answers: list[Any], seen: Services) -> Collector:
        """A collector of the replies, holding the first round trip's answers."""
        answers = answers[1:]  # the XADD's entry id
        services = self.services
        if services is None:  # not known lately: XINFO GROUPS was asked
            services = seen.update(self.stream, answers.pop(0))
        collector = Collector(
            signal=self.signal,
            services=services,
            timeout=self.timeout,
            fail_fast=self.fail_fast,
            find_receiver=self.find_receiver,
        )
        if self.wait_now:
            _collect(collector, answers)
        return collector

    def queue_more(self, pipe: Any, collector: Collector, remaining: float) -> None:
        """Add a round trip waiting for the replies still missing."""
        self._queue_pops(pipe, len(collector.missing()), remaining)

    @staticmethod
    def collect_more(collector: Collector, answers: list[Any]) -> bool:
        """Take a ``queue_more`` round trip's replies; False when none came."""
        return _collect(collector, answers)

    def remaining(self, collector: Collector) -> float:
        """Seconds left to wait for replies; 0 when done or out of time."""
        return 0.0 if collector.done else self.deadline - time.time()


def _collect(collector: Collector, answers: list[Any]) -> bool:
    """Take the replies of a BLPOP and an optional LPOP; False if BLPOP timed out."""
    popped = answers[0]
    if popped is None:
        return False
    collector.add(popped[1])
    for reply in answers[1] if len(answers) > 1 and answers[1] else ():
        collector.add(reply)
    return True


class Services:
    """What this process last saw of each stream's services (consumer groups).

    Looking (XINFO GROUPS) on every event would be a metadata query per
    send, so a look is reused for ``ttl`` seconds: a service that joined
    since is not waited for (its reply is ignored), one whose group was
    destroyed since makes one send time out. ``publish`` looks too, to bound
    streams no service reads.
    """

    def __init__(self, ttl: float = 1.0) -> None:
        self.ttl = ttl
        self._seen: dict[str, tuple[list[str], float]] = {}

    def update(self, stream: str, groups: list[Any]) -> list[str]:
        """Record an XINFO GROUPS answer; return the service names, sorted."""
        services = sorted(text(g["name"]) for g in groups)
        self._seen[stream] = (services, time.monotonic())
        return services

    def known(self, stream: str) -> list[str] | None:
        """The stream's services if looked at within the ttl, else None.

        ``present`` tells whether the last look, however old, found any.
        """
        seen = self._seen.get(stream)
        if seen is None or time.monotonic() - seen[1] >= self.ttl:
            return None
        return seen[0]

    def present(self, stream: str) -> bool:
        """True when the stream had services when last seen."""
        seen = self._seen.get(stream)
        return bool(seen and seen[0])

    def absent(self, stream: str) -> bool:
        """True when the stream had no service when seen within the ttl."""
        return self.known(stream) == []

    def stale(self, stream: str) -> bool:
        """True when it is time to look at the stream's services again."""
        return self.known(stream) is None
