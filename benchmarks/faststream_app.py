"""The FastStream app for the comparison rows: the same ``x + 1`` on the same Redis.

Run as its users run one: ``faststream run benchmarks.faststream_app:app
--workers N``. Each handler reads a Redis stream through a consumer group
(``StreamSub(stream, group=..., consumer=...)``), FastStream's defaults
otherwise (XREADGROUP blocking 100 ms, no COUNT). The consumer name holds
the process id: ``--workers N`` spawns N processes that each import this
module, and each must be its own consumer in the group.

``BENCH_FASTSTREAM_ROLE`` picks the handlers, so that the one-process app
and the two-process app of the two-worker drain never read each other's
streams: ``one`` (round trips, sync and async drains) or ``two``.
FastStream is optional and its decorators are typed for its own use, so
it is imported as plain module objects (mypy strict stays clean whether
or not it is installed).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

_faststream: Any = importlib.import_module("faststream")
_redis: Any = importlib.import_module("faststream.redis")
_url = os.environ.get("BENCH_FASTSTREAM_URL", "redis://127.0.0.1:6379/3")
_role = os.environ.get("BENCH_FASTSTREAM_ROLE", "one")

#: The streams (each read by the consumer group ``GROUP``).
PING, DRAIN, ADRAIN, DRAIN2 = "fs.ping", "fs.drain", "fs.adrain", "fs.drain2"
GROUP = "faststream"

#: ``logger=None``: FastStream logs two lines per message (received,
#: processed) at whatever level ``--log-level`` names, WARNING included;
#: only a broker without a logger stays quiet, as busignal's worker is.
broker: Any = _redis.RedisBroker(_url, logger=None)
app: Any = _faststream.FastStream(broker)


def _sub(stream: str) -> Any:
    consumer = f"{os.uname().nodename}-{os.getpid()}"
    return broker.subscriber(
        stream=_redis.StreamSub(stream, group=GROUP, consumer=consumer)
    )


async def _aplus_one(x: int) -> int:
    """The trivial handler, as a coroutine (FastStream's own idiom)."""
    return x + 1


def _plus_one(x: int) -> int:
    """The trivial handler, as a plain function (FastStream runs it in a thread)."""
    return x + 1


if _role == "one":
    _sub(PING)(_aplus_one)
    _sub(DRAIN)(_plus_one)
    _sub(ADRAIN)(_aplus_one)
else:
    _sub(DRAIN2)(_plus_one)
