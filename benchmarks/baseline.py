"""The baseline: the loop a person would write by hand on redis-py + msgpack.

Caller: one pipeline of XADD and BLPOP on a reply key. Worker (run as its
own process, ``python -m benchmarks.baseline``): XREADGROUP COUNT 100, run
the handler, one pipeline of RPUSH replies and XACK. Nothing busignal does
beyond that (validation, signing, timeouts, retries, heartbeats) is here,
so this is the limit busignal is measured against.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Sequence
from typing import Any

import msgpack
import redis

__all__ = ["publish_loop", "publish_pipelined", "roundtrips"]

BODY = b"b"


def roundtrips(
    client: redis.Redis, stream: str, count: int, replies: int = 1
) -> list[float]:
    """``count`` sequential request/replies; each one's seconds."""
    out: list[float] = []
    for x in range(count):
        started = time.perf_counter()
        key = f"bl:reply:{uuid.uuid4().hex}"
        pipe = client.pipeline(transaction=False)
        pipe.xadd(stream, {BODY: msgpack.packb([x, key])})
        pipe.blpop([key], timeout=10)
        got: Any = pipe.execute()[1]
        for _ in range(replies - 1):
            got = client.blpop([key], timeout=10)
        if got is None:
            raise RuntimeError(f"baseline worker did not answer on {stream}")
        out.append(time.perf_counter() - started)
    return out


def publish_loop(client: redis.Redis, stream: str, count: int) -> float:
    """Seconds for ``count`` plain XADDs, one round trip each."""
    started = time.perf_counter()
    for x in range(count):
        client.xadd(stream, {BODY: msgpack.packb([x, ""])})
    return time.perf_counter() - started


def publish_pipelined(
    client: redis.Redis, stream: str, count: int, batch: int
) -> float:
    """Seconds for ``count`` XADDs sent ``batch`` per pipeline."""
    started = time.perf_counter()
    for first in range(0, count, batch):
        pipe = client.pipeline(transaction=False)
        for x in range(first, min(first + batch, count)):
            pipe.xadd(stream, {BODY: msgpack.packb([x, ""])})
        pipe.execute()
    return time.perf_counter() - started


def handler(x: int) -> int:
    return x + 1


def serve(url: str, stream: str, group: str) -> None:
    """The baseline worker loop; runs until killed."""
    client = redis.Redis.from_url(url)
    consumer = f"{group}-{os.getpid()}"
    try:
        client.xgroup_create(stream, group, id="$", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    start = "0"  # our own pending entries first (this also joins the group)
    while True:
        response: Any = client.xreadgroup(
            group, consumer, {stream: start}, count=100, block=1000
        )
        if not response or not response[0][1]:
            start = ">"
            continue
        pipe = client.pipeline(transaction=False)
        ids = []
        for _, items in response:
            for entry_id, fields in items:
                x, reply_key = msgpack.unpackb(fields[BODY])
                result = handler(x)
                if reply_key:
                    pipe.rpush(reply_key, msgpack.packb(result))
                ids.append(entry_id)
        pipe.xack(stream, group, *ids)
        pipe.execute()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baseline")
    parser.add_argument("--url", required=True)
    parser.add_argument("--stream", required=True)
    parser.add_argument("--group", required=True)
    args = parser.parse_args(argv)
    serve(args.url, args.stream, args.group)


if __name__ == "__main__":
    main()
