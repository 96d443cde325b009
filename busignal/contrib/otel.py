"""OpenTelemetry traces across the bus (extra ``otel``: the API only).

``instrument()`` records a PRODUCER span around every ``send`` and
``publish`` (``send order_paid``, ``publish order_paid``), a child of the
current span if there is one, and puts its W3C ``traceparent`` on the
event. On the worker side, ``SpanObserver`` records one CONSUMER span per
delivery (``process order_paid``), a child of that PRODUCER span, so a
trace shows the send and each service's handling of it, whether or not
the sender was in a span::

    from busignal.contrib import otel

    otel.instrument()                      # in every process that sends
    otel.instrument(worker=worker)         # and in a worker you run yourself

Attributes follow the OpenTelemetry messaging semantic conventions:
``messaging.system`` (``busignal``), ``messaging.operation.type``
(``send``, ``process``), ``messaging.operation.name``,
``messaging.destination.name`` (the signal), ``messaging.message.id``,
``messaging.consumer.group.name`` (the service) and
``messaging.batch.message_count`` for a batch.

Configure the OpenTelemetry SDK (a TracerProvider with an exporter) as
usual: busignal depends on the API only, and which SDK and exporter to
use is the application's choice.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, cast

from busignal import tracing
from busignal.errors import ConfigurationError

try:
    from opentelemetry import trace
    from opentelemetry.trace import (
        Span,
        SpanKind,
        Status,
        StatusCode,
        TracerProvider,
    )
    from opentelemetry.trace.propagation.tracecontext import (
        TraceContextTextMapPropagator,
    )
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ConfigurationError(
        "tracing needs OpenTelemetry: pip install 'busignal[otel]'"
    ) from exc

if TYPE_CHECKING:
    from busignal.worker.delivery import Job
    from busignal.worker.worker import Worker

__all__ = [
    "SpanObserver",
    "current_traceparent",
    "instrument",
    "producer",
    "uninstrument",
]

SYSTEM = "busignal"

# The envelope carries a W3C traceparent, so it is produced and read with the
# W3C propagator whatever the process's global propagators are (B3, Jaeger).
_propagator = TraceContextTextMapPropagator()


def current_traceparent() -> str:
    """The current span's W3C ``traceparent``, or "" outside any span."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent", "")


def instrument(
    *, worker: Worker | None = None, tracer_provider: TracerProvider | None = None
) -> SpanObserver | None:
    """Record a PRODUCER span per send and publish, and carry it on the event.

    With ``worker``, also record a span per delivery that worker handles,
    current while its receivers run, and return the observer that does it.
    """
    tracing.install(current_traceparent, producer(tracer_provider))
    if worker is None:
        return None
    observer = SpanObserver(tracer_provider)
    worker.observers.append(observer)
    worker.receiving = observer.receiving
    return observer


def uninstrument(*, worker: Worker | None = None) -> None:
    """Stop the PRODUCER spans and OpenTelemetry's trace context on events
    (and, with ``worker``, stop recording its deliveries)."""
    tracing.install(None)
    if worker is not None:
        worker.receiving = None
        worker.observers[:] = [
            o for o in worker.observers if not isinstance(o, SpanObserver)
        ]


def producer(tracer_provider: TracerProvider | None = None) -> tracing.Producer:
    """The hook that runs a send or publish inside its PRODUCER span.

    The span is current while the event is encoded, so the traceparent the
    event carries is this span's; an error raised (BusUnavailable,
    SignalTimeout, a receiver's error that ``send`` raises) is recorded on
    it and marks it failed.
    """
    tracer = trace.get_tracer("busignal", tracer_provider=tracer_provider)

    @contextmanager
    def producing(signal: str, operation: str, count: int) -> Iterator[object]:
        attributes: dict[str, str | int] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "send",
            "messaging.operation.name": operation,
            "messaging.destination.name": signal,
        }
        if count != 1:
            attributes["messaging.batch.message_count"] = count
        with tracer.start_as_current_span(
            f"{operation} {signal}", kind=SpanKind.PRODUCER, attributes=attributes
        ) as span:
            yield span

    return producing


class SpanObserver:
    """A worker observer that records each delivery as a CONSUMER span.

    The span's parent is the sender's span (from the envelope's
    traceparent). It starts when the delivery's receivers start and is the
    current span while they run (``receiving``, the worker's hook), so the
    spans they open are its children and the events they send carry it on;
    it ends once they are done (``handled``), marked as an error, with an
    exception event per receiver that raised, when one did.
    """

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self.tracer = trace.get_tracer("busignal", tracer_provider=tracer_provider)

    def receiving(self, job: Job) -> AbstractContextManager[object]:
        """Make the delivery's span current around a part of its receivers.

        Called once for the sync receivers and once for the async ones (a
        thread, then a task): the span starts at the first.
        """
        span = job.trace_state
        if span is None:
            span = job.trace_state = self._start(job, time.time_ns())
        return trace.use_span(cast("Span", span), end_on_exit=False)

    def handled(self, job: Job, seconds: float) -> None:
        end = time.time_ns()
        span = job.trace_state
        if span is None:  # the hook was not installed: the batch's timing
            span = self._start(job, end - int(seconds * 1e9))
        assert isinstance(span, Span)
        span.set_attribute("busignal.receivers", [o.receiver_id for o in job.outcomes])
        for outcome in job.outcomes:
            if outcome.error is not None:
                span.record_exception(
                    outcome.error, attributes={"busignal.receiver": outcome.receiver_id}
                )
        if job.failed:
            span.set_status(Status(StatusCode.ERROR, "a receiver raised"))
        span.end(end_time=end)

    def _start(self, job: Job, start_time: int) -> Span:
        delivery = job.delivery
        parent = _propagator.extract({"traceparent": delivery.trace})
        return self.tracer.start_span(
            f"process {delivery.signal}",
            context=parent,
            kind=SpanKind.CONSUMER,
            start_time=start_time,
            attributes={
                "messaging.system": SYSTEM,
                "messaging.operation.type": "process",
                "messaging.operation.name": "process",
                "messaging.destination.name": delivery.signal,
                "messaging.message.id": delivery.message_id,
                "messaging.consumer.group.name": delivery.service,
                "busignal.entry_id": delivery.entry_id,
                "busignal.attempt": delivery.attempt,
            },
        )

    def dead_lettered(self, signal: str, service: str, reason: str) -> None:
        """Nothing: the observer is not told which trace the entry was in.

        A receiver failure that led to it is already on the delivery's span.
        """
