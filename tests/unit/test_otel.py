"""Trace context across a send: plain traceparent, and OpenTelemetry spans."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode

from busignal import tracing
from busignal.bus.bus import Bus
from busignal.contrib import otel
from busignal.dispatch.signal import Signal
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


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_otel_worker_span_is_current_while_the_receivers_run(
    bus: Bus,
    name: str,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    kind: str,
) -> None:
    # A span a receiver opens is a child of the delivery's span, which lasts
    # as long as the receiver; an event the receiver sends carries that span.
    sig = Signal(name)
    tracer = provider.get_tracer("test")

    def work() -> str:
        with tracer.start_as_current_span("inside"):
            time.sleep(0.02)
        return tracing.outgoing()

    if kind == "sync":

        def handler(**kwargs: object) -> str:
            return work()

    else:

        async def handler(**kwargs: object) -> str:  # type: ignore[misc]
            return work()

    sig.connect(handler)
    with running_worker(bus, "traced", signals=[name]) as worker:
        otel.instrument(worker=worker, tracer_provider=provider)
        [(_, carried)] = sig.send(sender=None)

    spans = exporter.get_finished_spans()
    handled = by_name(spans, f"{name} process")
    inside = by_name(spans, "inside")
    context = handled.context
    assert context is not None
    assert inside.parent is not None
    assert inside.parent.span_id == context.span_id
    assert handled.start_time is not None
    assert inside.start_time is not None
    assert handled.end_time is not None
    assert inside.end_time is not None
    assert handled.start_time <= inside.start_time
    assert inside.end_time <= handled.end_time
    flags = int(context.trace_flags)
    assert carried == f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags:02x}"


def test_otel_uninstrument_stops_the_worker_spans(
    bus: Bus, name: str, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    sig = Signal(name)
    sig.connect(lambda **kwargs: None, weak=False)
    with running_worker(bus, "traced", signals=[name]) as worker:
        otel.instrument(worker=worker, tracer_provider=provider)
        sig.send(sender=None)
        otel.uninstrument(worker=worker)
        sig.send(sender=None)

    assert len(exporter.get_finished_spans()) == 1
