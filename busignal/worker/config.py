"""How one worker process serves its service: ``WorkerConfig``.

Apart from ``busignal.worker.worker`` so that the worker's parts can be
given it without importing the worker.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass

from busignal.errors import ConfigurationError

__all__ = ["WorkerConfig", "default_consumer_name"]


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """How one worker process serves its service."""

    service: str
    concurrency: int = 8
    batch: int = 100
    block_ms: int = 1000
    heartbeat_interval: float = 2.0
    min_idle_ms: int = 30_000
    #: Seconds between the runs of a failed receiver that has no retry policy.
    retry_backoff: float = 2.0
    max_deliveries: int = 5
    grace: float = 30.0
    consumer: str | None = None
    dead_maxlen: int = 100_000

    def __post_init__(self) -> None:
        if not self.service or any(c in self.service for c in " {}"):
            raise ConfigurationError(f"invalid service name {self.service!r}")
        if self.concurrency < 1 or self.batch < 1 or self.max_deliveries < 1:
            raise ConfigurationError(
                "concurrency, batch and max_deliveries must be at least 1"
            )
        if not 0 <= self.retry_backoff < float("inf"):
            raise ConfigurationError(
                f"retry_backoff (--retry-backoff) must be a number of seconds, "
                f"0 or more; got {self.retry_backoff!r}"
            )


def default_consumer_name(service: str) -> str:
    """A consumer name unique to this process: service, host, pid, random."""
    return f"{service}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
