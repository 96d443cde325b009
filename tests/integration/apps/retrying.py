"""Service 'retrying': receivers with retry policies, for the retry tests.

Each run appends ``attempt|time`` to ``retry:runs:RECEIVER`` in the test
Redis (one event per test), the time taken by the receiver itself, so the
test measures the spacing of the runs as the receiver saw them.
"""

from __future__ import annotations

import time
from typing import Any

from faults_common import client

from busignal import Retry, Signal, current_delivery, receiver

always_down = Signal("retry_always_down")
wrong_error = Signal("retry_wrong_error")
siblings = Signal("retry_siblings")
no_policy = Signal("retry_no_policy")


def run(name: str) -> int:
    """Write down one run of receiver ``name``; return its attempt."""
    delivery = current_delivery.get()
    assert delivery is not None
    client().rpush(f"retry:runs:{name}", f"{delivery.attempt}|{time.time()}")
    return delivery.attempt


@receiver(
    always_down,
    retry=Retry(
        attempts=4, backoff=0.5, max_backoff=1.5, jitter=False, on=(ConnectionError,)
    ),
)
def on_always_down(sender: Any, **kwargs: Any) -> None:
    run("down")
    raise ConnectionError("the payment provider is away")


@receiver(wrong_error, retry=Retry(attempts=5, on=(ConnectionError, TimeoutError)))
def on_wrong_error(sender: Any, **kwargs: Any) -> None:
    run("wrong")
    raise KeyError("order 7 is not in the catalogue")


@receiver(siblings)
def first(sender: Any, **kwargs: Any) -> None:
    run("first")


@receiver(
    siblings, retry=Retry(attempts=3, backoff=0.3, jitter=False, on=(TimeoutError,))
)
def flaky(sender: Any, **kwargs: Any) -> str:
    if run("flaky") < 3:
        raise TimeoutError("the search index is slow")
    return "indexed"


@receiver(siblings)
def last(sender: Any, **kwargs: Any) -> None:
    run("last")


@receiver(no_policy)
def on_no_policy(sender: Any, **kwargs: Any) -> None:
    run("plain")
    raise RuntimeError("no policy: the worker's defaults apply")


takeover = Signal("retry_takeover")


@receiver(takeover)
def steady(sender: Any, **kwargs: Any) -> None:
    run("steady")


@receiver(
    takeover, retry=Retry(attempts=2, backoff=4.0, jitter=False, on=(TimeoutError,))
)
def patient(sender: Any, **kwargs: Any) -> None:
    if run("patient") < 2:
        raise TimeoutError("try again in a while")
