"""Trace context across a send: plain traceparent, and OpenTelemetry spans."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode

from busignal import tracing
from busignal.bus import Bus
from busignal.contrib import otel
from busignal.signal import Signal
from busignal.testing import running_worker

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    """A tracer provider of this test only; the hook is removed after."""
    made = TracerProvider()
    yield made
    otel.uninstrument()
    made.shutdown()


@pytest.fixture
def exporter(provider: TracerProvider) -> InMemorySpanExporter:
    found = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(found))
    return found


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    [span] = [s for s in spans if s.name == name]
    return span


def test_tracing_traceparent_of_caller_is_seen_by_receiver(bus: Bus, name: str) -> None:
    tracing.install(None)
    sig = Signal(name)

    def seen(**kwargs: object) -> str:
        return tracing.traceparent.get()

    sig.connect(seen)
    with running_worker(bus, "svc", signals=[name]), tracing.continuing(PARENT):
        [(_, traceparent)] = sig.send(sender=None)

    assert traceparent == PARENT


def test_otel_outgoing_event_carries_current_span_traceparent(
    provider: TracerProvider,
) -> None:
    otel.instrument()
    with provider.get_tracer("test").start_as_current_span("caller") as span:
        outgoing = tracing.outgoing()

    context = span.get_span_context()
    flags = int(context.trace_flags)
    assert outgoing == (
        f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags:02x}"
    )


def test_otel_outside_span_falls_back_to_traceparent_variable(
    provider: TracerProvider,
) -> None:
    otel.instrument()
    with tracing.continuing(PARENT):
        assert tracing.outgoing() == PARENT


def test_otel_worker_span_is_child_of_caller_span(
    bus: Bus, name: str, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    sig = Signal(name)

    def handler(**kwargs: object) -> str:
        return "done"

    sig.connect(handler)
    with running_worker(bus, "traced", signals=[name]) as worker:
        otel.instrument(worker=worker, tracer_provider=provider)
        with provider.get_tracer("test").start_as_current_span("caller"):
            sig.send(sender=None)

    spans = exporter.get_finished_spans()
    caller = by_name(spans, "caller")
    handled = by_name(spans, f"{name} process")
    assert handled.context is not None
    assert caller.context is not None
    assert handled.context.trace_id == caller.context.trace_id
    assert handled.parent is not None
    assert handled.parent.span_id == caller.context.span_id
    assert handled.kind is SpanKind.CONSUMER
    assert handled.attributes is not None
    assert handled.attributes["messaging.consumer.group.name"] == "traced"


def test_otel_worker_span_records_receiver_error(
    bus: Bus, name: str, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    sig = Signal(name)

    def broken(**kwargs: object) -> None:
        raise ValueError("no")

    sig.connect(broken)
    with running_worker(bus, "traced", signals=[name]) as worker:
        otel.instrument(worker=worker, tracer_provider=provider)
        sig.send_robust(sender=None)

    handled = by_name(exporter.get_finished_spans(), f"{name} process")
    assert handled.status.status_code is StatusCode.ERROR
    assert [e.name for e in handled.events] == ["exception"]
