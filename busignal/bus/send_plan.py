"""One distributed send under way, and what a process knows of services.

``Send`` is the plan of one send: what to write, which replies to wait
for and until when. Whom a send waits for is decided by Redis itself, in
the same script that adds the entry (``ADD_AND_NAME_SERVICES``): exactly
the services (consumer groups) that existed when the entry was added. A
process's memory of services (``Services``) is only a hint, for how many
replies to pop at once and for bounding streams that no service reads.
Kept apart from ``busignal.bus.bus``, which owns the clients and the calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from busignal.bus.collector import Collector
from busignal.wire.codec import MAX_SIZE
from busignal.wire.records import text
from busignal.wire.signing import Signer

__all__ = ["ADD_AND_NAME_SERVICES", "Send", "Services"]

# KEYS: the events stream, the send's reply key. ARGV: MAXLEN for a stream
# that no service reads, then the entry's field/value pairs.
#
# One script, so that adding the entry and naming its services are one
# atomic step: a group created after it does not see the entry (it is not
# waited for), and a group destroyed before it is not waited for either.
# With no service, the script trims the stream (nobody will ever consume
# it: only what a service acknowledged may be trimmed, and none exists) and
# pushes an empty marker onto the reply key, so that the BLPOP queued in the
# same round trip returns at once instead of waiting out the timeout.
ADD_AND_NAME_SERVICES = """
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
local named = {id}
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  for i = 1, #group, 2 do
    if group[i] == 'name' then named[#named + 1] = group[i + 1] end
  end
end
if #named == 1 then
  redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[1])
  redis.call('RPUSH', KEYS[2], '')
  redis.call('PEXPIRE', KEYS[2], 60000)
end
return named
"""


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
    maxlen: int  # bounds the stream when no service reads it
    expected: int  # services seen last time: how many replies to pop at once
    message_id: str = ""  # replies must be signed for it (with a signer)
    signer: Signer | None = None
    max_reply: int = MAX_SIZE

    def queue(self, pipe: Any) -> None:
        """Add the send's one round trip to a (sync or async) pipeline:
        the entry and its services (one script), then the wait for replies."""
        # execute_command, not eval(): a redis-py cluster pipeline refuses eval()
        # but routes EVAL by its keys, which share the signal's slot.
        pipe.execute_command(*self.script())
        self._queue_pops(pipe, self.expected, self.timeout)

    def script(self) -> tuple[Any, ...]:
        """The EVAL that adds the entry and names its services."""
        flat = [item for pair in self.fields.items() for item in pair]
        return (
            "EVAL",
            ADD_AND_NAME_SERVICES,
            2,
            self.stream,
            self.reply_key,
            self.maxlen,
            *flat,
        )

    def keyed(self) -> list[tuple[str, tuple[Any, ...]]]:
        """The script with the key whose node runs it (for a durable send)."""
        return [(self.stream, self.script())]

    def _queue_pops(self, pipe: Any, expected: int, timeout: float) -> None:
        # Wait for one reply, then take every other reply already there: a
        # fan-out's replies often arrive together, one round trip for them.
        pipe.blpop([self.reply_key], timeout=timeout)
        if expected > 1:
            pipe.lpop(self.reply_key, expected - 1)

    def collect_first(self, answers: list[Any], seen: Services) -> Collector:
        """A collector of the replies, holding the first round trip's answers.

        The script's answer names the services to wait for; ``seen`` keeps
        them as the hint for the stream's next sends and publishes.
        """
        services = seen.update(self.stream, answers[0][1:])
        collector = Collector(
            signal=self.signal,
            services=services,
            timeout=self.timeout,
            fail_fast=self.fail_fast,
            find_receiver=self.find_receiver,
            message_id=self.message_id,
            signer=self.signer,
            max_size=self.max_reply,
        )
        if services:  # else the BLPOP took the script's empty marker
            _collect(collector, answers[1:])
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

    Never the answer to whom a send waits for (its script names those);
    a hint for how many replies a send pops at once, and for ``publish``,
    which bounds a stream that no service read when last seen rather than
    look (XINFO GROUPS) on every event. A look is reused for ``ttl`` seconds.
    """

    def __init__(self, ttl: float = 1.0) -> None:
        self.ttl = ttl
        self._seen: dict[str, tuple[list[str], float]] = {}

    def update(self, stream: str, groups: list[Any]) -> list[str]:
        """Record the stream's service names (or XINFO GROUPS entries); return
        the names, sorted."""
        services = sorted(text(g["name"] if isinstance(g, dict) else g) for g in groups)
        self._seen[stream] = (services, time.monotonic())
        return services

    def known(self, stream: str) -> list[str] | None:
        """The stream's services if looked at within the ttl, else None."""
        seen = self._seen.get(stream)
        if seen is None or time.monotonic() - seen[1] >= self.ttl:
            return None
        return seen[0]

    def count(self, stream: str) -> int:
        """How many services the stream had when last seen, however long ago."""
        seen = self._seen.get(stream)
        return len(seen[0]) if seen else 0

    def absent(self, stream: str) -> bool:
        """True when the stream had no service when seen within the ttl."""
        return self.known(stream) == []

    def stale(self, stream: str) -> bool:
        """True when it is time to look at the stream's services again."""
        return self.known(stream) is None
