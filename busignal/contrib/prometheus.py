"""Prometheus metrics for a worker: ``busignal worker --metrics-addr 9100``.

Needs the ``metrics`` extra (``pip install 'busignal[metrics]'``). The
metrics, all labelled by ``signal`` and ``service``:

- ``busignal_events_handled_total`` (+ ``outcome``: ``ok``, ``failed``, or
  ``no_receivers`` when no receiver matched the sender)
- ``busignal_receiver_failures_total`` (+ ``receiver``)
- ``busignal_dead_letters_total``
- ``busignal_handling_seconds``: histogram of a delivery's handling time
- ``busignal_receiver_seconds``: histogram of each receiver's run (+ ``receiver``)
- ``busignal_stream_lag`` and ``busignal_stream_pending``: per consumer group
  (``service``) of each stream this worker serves, read with XINFO GROUPS at
  scrape time, in one pipelined round trip
- ``busignal_redis_up``: 1 when that read succeeded

Use it with your own ``Worker``::

    serve_metrics(worker, 9100)   # before worker.run(); binds 127.0.0.1
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import redis

from busignal.errors import ConfigurationError
from busignal.wire.records import text

try:
    from prometheus_client import (
        REGISTRY,
        CollectorRegistry,
        Counter,
        Histogram,
        start_http_server,
    )
    from prometheus_client.core import GaugeMetricFamily, Metric
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ConfigurationError(
        "metrics need prometheus-client: pip install 'busignal[metrics]'"
    ) from exc

if TYPE_CHECKING:
    from busignal.bus.bus import Bus
    from busignal.wire.envelope import Envelope
    from busignal.worker.delivery import Job
    from busignal.worker.worker import Worker

__all__ = ["PrometheusObserver", "StreamCollector", "serve_metrics"]

logger = logging.getLogger(__name__)

LABELS = ("signal", "service")


class PrometheusObserver:
    """A worker observer that counts and times what the worker does."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.events = Counter(
            "busignal_events_handled",
            "Deliveries handled, by outcome",
            [*LABELS, "outcome"],
            registry=registry,
        )
        self.failures = Counter(
            "busignal_receiver_failures",
            "Receiver runs that raised",
            [*LABELS, "receiver"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "busignal_dead_letters",
            "Entries moved to the dead letters",
            LABELS,
            registry=registry,
        )
        self.handling = Histogram(
            "busignal_handling_seconds",
            "Time to handle a delivery (its batch's receivers), in seconds",
            LABELS,
            registry=registry,
        )
        self.receiver_seconds = Histogram(
            "busignal_receiver_seconds",
            "Time one receiver ran, in seconds",
            [*LABELS, "receiver"],
            registry=registry,
        )

    def handled(self, job: Job, seconds: float) -> None:
        signal, service = job.delivery.signal, job.delivery.service
        outcome = "ok" if job.outcomes else "no_receivers"
        if job.failed:
            outcome = "failed"
        self.events.labels(signal, service, outcome).inc()
        self.handling.labels(signal, service).observe(seconds)
        for each in job.outcomes:
            receiver = each.receiver_id
            self.receiver_seconds.labels(signal, service, receiver).observe(
                each.seconds
            )
            if each.error is not None:
                self.failures.labels(signal, service, receiver).inc()

    def dead_lettered(self, signal: str, service: str, reason: str) -> None:
        self.dead_letters.labels(signal, service).inc()

    def skipped_duplicate(self, signal: str, service: str, envelope: Envelope) -> None:
        """Counted as ``busignal_events_handled{outcome="duplicate"}``."""
        self.events.labels(signal, service, "duplicate").inc()


class StreamCollector(Collector):
    """Consumer-group lag and pending counts, read from Redis at scrape time.

    One XINFO GROUPS per stream, pipelined into one round trip on the bus's
    sync client, so a scrape costs one short request however many signals
    the worker serves.
    """

    def __init__(self, bus: Bus, streams: Callable[[], Sequence[str]]) -> None:
        self.bus = bus
        self.streams = streams

    def describe(self) -> Iterable[Metric]:
        # Describing without reading Redis keeps registration free of I/O.
        return list(self._families())

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily(
                "busignal_stream_lag",
                "Entries of the stream not yet delivered to the group",
                labels=LABELS,
            ),
            GaugeMetricFamily(
                "busignal_stream_pending",
                "Entries delivered to the group but not acknowledged",
                labels=LABELS,
            ),
            GaugeMetricFamily(
                "busignal_redis_up", "1 if the last scrape could read Redis"
            ),
        )

    def collect(self) -> Iterator[Metric]:
        lag, pending, up = self._families()
        streams = list(self.streams())
        try:
            pipe = self.bus.client.pipeline(transaction=False)
            for stream in streams:
                pipe.xinfo_groups(stream)
            answers: list[Any] = pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:
            logger.warning("cannot read consumer groups for metrics: %s", exc)
            up.add_metric([], 0)
            return iter((lag, pending, up))
        up.add_metric([], 1)
        for stream, groups in zip(streams, answers, strict=True):
            if isinstance(groups, Exception):
                continue  # the stream does not exist yet
            signal = self.bus.keys.signal_of(stream)
            for group in groups:
                service = text(group["name"])
                pending.add_metric([signal, service], float(group["pending"]))
                if group.get("lag") is not None:  # None: Redis cannot tell
                    lag.add_metric([signal, service], float(group["lag"]))
        return iter((lag, pending, up))


def serve_metrics(
    worker: Worker,
    port: int,
    *,
    addr: str = "127.0.0.1",
    registry: CollectorRegistry = REGISTRY,
) -> PrometheusObserver:
    """Observe ``worker`` and serve its metrics over HTTP on ``port``.

    The server is a daemon thread of this process; call this once per
    process before ``worker.run()``.
    """
    observer = PrometheusObserver(registry)
    registry.register(
        StreamCollector(worker.bus, lambda: worker.routes.streams(worker.keys))
    )
    worker.observers.append(observer)
    try:
        start_http_server(port, addr=addr, registry=registry)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot serve metrics on {addr}:{port}: {exc}; choose a free port"
        ) from exc
    logger.info("serving Prometheus metrics on %s:%d/metrics", addr, port)
    return observer
