"""Trace context across a send: plain traceparent, and OpenTelemetry spans."""

from __future__ import annotations

import asyncio
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

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
from busignal.errors import SerializationError
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
    sent = by_name(spans, f"send {name}")
    handled = by_name(spans, f"process {name}")
    assert handled.context is not None
    assert caller.context is not None
    assert sent.context is not None
    assert handled.context.trace_id == caller.context.trace_id
    assert sent.parent is not None
    assert sent.parent.span_id == caller.context.span_id
    assert handled.parent is not None
    assert handled.parent.span_id == sent.context.span_id
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

    handled = by_name(exporter.get_finished_spans(), f"process {name}")
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
    handled = by_name(spans, f"process {name}")
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

    assert sorted(s.name for s in exporter.get_finished_spans()) == [
        f"process {sig.name}",
        f"send {sig.name}",
    ]


def test_otel_send_outside_any_span_is_one_trace_from_producer_to_consumer(
    bus: Bus, name: str, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    sig = Signal(name)
    sig.connect(lambda **kwargs: None, weak=False)
    with running_worker(bus, "traced", signals=[name]) as worker:
        otel.instrument(worker=worker, tracer_provider=provider)
        sig.send(sender=None)

    spans = exporter.get_finished_spans()
    sent = by_name(spans, f"send {name}")
    handled = by_name(spans, f"process {name}")
    assert sent.parent is None  # the root: the worker's span is no orphan
    assert sent.kind is SpanKind.PRODUCER
    assert sent.context is not None
    assert handled.context is not None
    assert handled.context.trace_id == sent.context.trace_id
    assert handled.parent is not None
    assert handled.parent.span_id == sent.context.span_id


def test_otel_spans_carry_the_messaging_conventions(
    bus: Bus, name: str, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    sig = Signal(name)
    sig.connect(lambda **kwargs: None, weak=False)
    with running_worker(bus, "traced", signals=[name]) as worker:
        otel.instrument(worker=worker, tracer_provider=provider)
        sig.send(sender=None)

    spans = exporter.get_finished_spans()
    sent = by_name(spans, f"send {name}").attributes
    handled = by_name(spans, f"process {name}").attributes
    assert sent is not None
    assert handled is not None
    assert dict(sent) == {
        "messaging.system": "busignal",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": name,
    }
    assert handled["messaging.system"] == "busignal"
    assert handled["messaging.operation.type"] == "process"
    assert handled["messaging.destination.name"] == name
    assert handled["messaging.consumer.group.name"] == "traced"
    assert "messaging.operation" not in handled  # the deprecated name


def test_otel_publish_is_a_producer_span_the_worker_span_hangs_under(
    bus: Bus, name: str, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    sig = Signal(name)
    sig.connect(lambda **kwargs: None, weak=False)
    with running_worker(bus, "traced", signals=[name]) as worker:
        otel.instrument(worker=worker, tracer_provider=provider)
        with provider.get_tracer("test").start_as_current_span("caller"):
            sig.publish(sender=None)
        deadline = time.monotonic() + 10  # publish does not wait: the worker
        while not any(
            s.kind is SpanKind.CONSUMER for s in exporter.get_finished_spans()
        ):
            assert time.monotonic() < deadline, "the event was never handled"
            time.sleep(0.01)

    spans = exporter.get_finished_spans()
    published = by_name(spans, f"publish {name}")
    handled = by_name(spans, f"process {name}")
    assert published.kind is SpanKind.PRODUCER
    assert published.attributes is not None
    assert published.attributes["messaging.operation.type"] == "send"
    assert published.attributes["messaging.operation.name"] == "publish"
    assert published.context is not None
    assert handled.parent is not None
    assert handled.parent.span_id == published.context.span_id


def test_otel_publish_many_is_one_span_counting_the_batch(
    bus: Bus, name: str, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    otel.instrument(tracer_provider=provider)

    Signal(name).publish_many(None, ({"n": n} for n in range(3)))

    [span] = exporter.get_finished_spans()
    assert span.name == f"publish {name}"
    assert span.attributes is not None
    assert span.attributes["messaging.batch.message_count"] == 3


def test_otel_asend_runs_in_its_producer_span(
    bus: Bus, name: str, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    sig = Signal(name)

    async def handler(**kwargs: object) -> str:
        return tracing.traceparent.get()

    sig.connect(handler)
    with running_worker(bus, "traced", signals=[name]):
        otel.instrument(tracer_provider=provider)
        [(_, carried)] = asyncio.run(sig.asend(sender=None))

    sent = by_name(exporter.get_finished_spans(), f"send {name}")
    assert sent.context is not None
    assert isinstance(carried, str)
    assert f"-{sent.context.span_id:016x}-" in carried


def test_otel_producer_span_records_a_failed_send(
    bus: Bus, name: str, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    otel.instrument(tracer_provider=provider)

    with pytest.raises(SerializationError):
        Signal(name).send(sender=None, thing=object())

    [span] = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]


def test_otel_extra_depends_on_the_api_only() -> None:
    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]

    assert [dep.split(">")[0] for dep in extras["otel"]] == ["opentelemetry-api"]
