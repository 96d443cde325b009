"""Running one delivery's receivers inside a worker.

A *delivery* is an envelope as a worker read it: which stream entry, which
service, which attempt. Receivers can read it from ``current_delivery`` to
make their side effects idempotent (the message id is the same on every
attempt, also after a dead-letter replay). ``attempt`` is the receiver's
own: a receiver run again after its retry backoff sees 2, 3, ..., while a
sibling that already succeeded is not run again. Deliveries cut short by a
crash count too, so ``attempt > 1`` means "this may have run before".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, cast

from busignal.tracing import traceparent
from busignal.wire.envelope import Envelope, Mode
from busignal.wire.reply import Outcome

if TYPE_CHECKING:
    from busignal.dispatch.signal import Registration, Signal
    from busignal.worker.outcomes import Outcomes
    from busignal.worker.routes import Match

__all__ = ["Delivery", "Job", "Receiving", "current_delivery"]

logger = logging.getLogger(__name__)


#: Wraps each part of a job's receivers' run, in the thread or task where it
#: runs (an OpenTelemetry span made current: ``busignal.contrib.otel``).
Receiving = Callable[["Job"], AbstractContextManager[object]]


@dataclass(slots=True)
class Delivery:
    """Where an envelope came from, as the worker running it sees it.

    Treat it as read-only; it is not frozen only because a worker makes one
    per event and frozen dataclasses are slow to create.
    """

    message_id: str
    entry_id: str
    signal: str
    service: str
    attempt: int
    trace: str = ""


current_delivery: ContextVar[Delivery | None] = ContextVar(
    "busignal_current_delivery", default=None
)


class Job:
    """One delivery's receivers and what they did.

    Sync receivers run first, in connection order (in a worker thread), then
    async receivers concurrently on the loop, as Django's ``send`` does.
    ``send`` (fail-fast) stops at the first error; ``send_robust`` and
    ``publish`` run every receiver.

    A plain slotted class with a positional constructor: a worker makes one
    per event, and this is the cheapest object Python makes.
    """

    __slots__ = (
        "attempts",
        "delivery",
        "entry_id",
        "envelope",
        "errors",
        "fields",
        "has_async",
        "outcomes",
        "receiving",
        "recorded",
        "registrations",
        "sender",
        "stream",
        "trace_state",
    )

    def __init__(
        self,
        stream: str,
        entry_id: str,
        fields: dict[bytes, bytes],
        envelope: Envelope,
        delivery: Delivery,
        registrations: Sequence[Match],
        sender: object,
        has_async: bool | None = None,
    ) -> None:
        self.stream = stream
        self.entry_id = entry_id
        self.fields = fields
        self.envelope = envelope
        self.delivery = delivery
        self.registrations = registrations
        self.sender = sender
        #: Whether any receiver is a coroutine function (given when known).
        self.has_async: bool = (
            any(reg.is_async for _, reg in registrations)
            if has_async is None
            else has_async
        )
        self.outcomes: list[Outcome] = []
        #: How many receivers raised.
        self.errors = 0
        #: Wraps each part of the receivers' run (a tracing span), if set.
        self.receiving: Receiving | None = None
        #: What ``receiving`` keeps between the parts (an open span).
        self.trace_state: object = None
        #: Receiver id -> its own attempt, on a retry (else ``delivery``'s).
        self.attempts: dict[str, int] | None = None
        #: What the service's receivers did on earlier deliveries, if recorded.
        self.recorded: Outcomes | None = None

    def __repr__(self) -> str:
        return (
            f"<Job {self.envelope.signal} entry {self.entry_id} on {self.stream}: "
            f"{len(self.outcomes)} outcomes, {self.errors} errors>"
        )

    def delivery_for(self, receiver_id: str) -> Delivery:
        """The delivery as one receiver sees it: with its own attempt."""
        attempts = self.attempts
        if attempts is None or receiver_id not in attempts:
            return self.delivery
        return replace(self.delivery, attempt=attempts[receiver_id])

    def _own_delivery(self, receiver_id: str) -> Delivery | None:
        """A receiver's own delivery on a retry; None when it is the job's."""
        return None if self.attempts is None else self.delivery_for(receiver_id)

    @property
    def fail_fast(self) -> bool:
        return self.envelope.mode is Mode.SEND

    @property
    def failed(self) -> bool:
        return self.errors > 0

    def _record_error(
        self, receiver_id: str, exc: BaseException, started: float
    ) -> None:
        seconds = time.perf_counter() - started
        self.outcomes.append(Outcome(receiver_id, None, exc, seconds))
        self.errors += 1
        # ERROR with the traceback whatever the mode, as Django's send_robust
        # logs: error trackers hooked into logging report ERROR and up, and
        # this process is the only one holding the receiver's traceback.
        fields = {
            "receiver": receiver_id,
            "signal": self.envelope.signal,
            "message_id": self.envelope.message_id,
            "entry_id": self.entry_id,
            "stream": self.stream,
            "service": self.delivery.service,
        }
        logger.error(
            "receiver %s raised %s for signal %s (message %s, entry %s, service %s)",
            receiver_id,
            type(exc).__name__,
            self.envelope.signal,
            self.envelope.message_id,
            self.entry_id,
            self.delivery.service,
            exc_info=exc,
            extra={f"busignal_{k}": v for k, v in fields.items()},
        )

    def run_sync(self) -> None:
        """Run the sync receivers in order; call from a worker thread."""
        token = current_delivery.set(self.delivery)
        trace = traceparent.set(self.delivery.trace)
        try:
            self.run_sync_in_context()
        finally:
            traceparent.reset(trace)
            current_delivery.reset(token)

    def run_sync_in_context(self) -> None:
        """Run the sync receivers (within ``receiving``), with this job's
        delivery and trace already made current by the caller (``run_chunk``)."""
        if self.receiving is None:
            self._run_receivers()
        else:
            with self.receiving(self):
                self._run_receivers()

    def _run_receivers(self) -> None:
        """Run the sync receivers, with this job's delivery already current."""
        clock = time.perf_counter
        outcomes = self.outcomes
        sender = self.sender
        kwargs = self.envelope.kwargs
        own_attempts = self.attempts is not None
        for signal, reg in self.registrations:
            if reg.is_async:
                continue
            if own_attempts:  # reset by the caller (run_sync, run_chunk)
                current_delivery.set(self.delivery_for(reg.receiver_id))
            started = clock()
            try:
                value = reg.receiver(signal=signal, sender=sender, **kwargs)
            except Exception as exc:
                self._record_error(reg.receiver_id, exc, started)
                if self.fail_fast:
                    return
            else:
                outcomes.append(
                    Outcome(reg.receiver_id, value, None, clock() - started)
                )

    async def _await_receivers(
        self, regs: list[Match]
    ) -> Sequence[tuple[object, float] | BaseException]:
        kwargs = self.envelope.kwargs
        if len(regs) == 1:
            # One receiver needs no task of its own (a task per job is a
            # third of an async drain's cost); several run concurrently.
            signal, reg = regs[0]
            delivery = self._own_delivery(reg.receiver_id)
            return [await _timed_call(signal, reg, self.sender, kwargs, delivery)]
        calls = [
            _timed_call(s, r, self.sender, kwargs, self._own_delivery(r.receiver_id))
            for s, r in regs
        ]
        return await asyncio.gather(*calls, return_exceptions=True)

    async def run_async(self) -> None:
        """Run the async receivers concurrently, after the sync ones."""
        if self.fail_fast and self.failed:
            return
        regs = [(s, r) for s, r in self.registrations if r.is_async]
        if not regs:
            return
        token = current_delivery.set(self.delivery)
        trace = traceparent.set(self.delivery.trace)
        started = time.perf_counter()
        within = nullcontext() if self.receiving is None else self.receiving(self)
        try:
            with within:
                results = await self._await_receivers(regs)
        finally:
            traceparent.reset(trace)
            current_delivery.reset(token)
        for (_, reg), result in zip(regs, results, strict=True):
            if isinstance(result, Exception):
                self._record_error(reg.receiver_id, result, started)
            elif isinstance(result, BaseException):
                raise result
            else:
                value, seconds = result
                self.outcomes.append(Outcome(reg.receiver_id, value, None, seconds))


async def _timed_call(
    signal: Signal,
    reg: Registration,
    sender: object,
    kwargs: dict[str, object],
    delivery: Delivery | None,
) -> tuple[object, float] | BaseException:
    """One async receiver's value and seconds, or its exception (as
    ``gather(..., return_exceptions=True)`` gives it); ``delivery`` is
    made current around it when the receiver has one of its own."""
    token = None if delivery is None else current_delivery.set(delivery)
    started = time.perf_counter()
    try:
        value = await cast(
            "Awaitable[object]", reg.receiver(signal=signal, sender=sender, **kwargs)
        )
    except Exception as exc:
        return exc
    finally:
        if token is not None:
            current_delivery.reset(token)
    return value, time.perf_counter() - started


async def run_async_job(job: Job) -> None:
    """Run a job whose receivers are all async, in a task or context of its own.

    The common job (one receiver, no span, no receiver's own attempt) is
    run here in one coroutine instead of the three of ``run_async``; its
    delivery and trace are set without being reset, as the context is the
    job's own.
    """
    regs = job.registrations
    if len(regs) != 1 or job.receiving is not None or job.attempts is not None:
        await job.run_async()
        return
    signal, reg = regs[0]
    delivery = job.delivery
    current_delivery.set(delivery)
    traceparent.set(delivery.trace)
    started = time.perf_counter()
    try:
        # No typing.cast here: it is a call, as costly as the rest of a line.
        value = await reg.receiver(  # type: ignore[misc]  # an async receiver
            signal=signal, sender=job.sender, **job.envelope.kwargs
        )
    except Exception as exc:
        job._record_error(reg.receiver_id, exc, started)
    else:
        seconds = time.perf_counter() - started
        job.outcomes.append(Outcome(reg.receiver_id, value, None, seconds))


def run_chunk(jobs: Sequence[Job]) -> None:
    """Run the sync part of several jobs in one thread hop.

    Each job's delivery and trace are made current in turn, and the values
    from before the chunk put back once at its end. The trace is set only
    when it changes (untraced events all carry ""): setting a context
    variable costs as much as running a trivial receiver.
    """
    token = current_delivery.set(None)
    trace = traceparent.set("")
    current = ""
    clock = time.perf_counter
    try:
        for job in jobs:
            delivery = job.delivery
            current_delivery.set(delivery)
            if delivery.trace != current:
                current = delivery.trace
                traceparent.set(current)
            if job.receiving is not None or job.attempts is not None:
                job.run_sync_in_context()
                continue
            # The common case of ``_run_receivers`` (no span, no receiver's
            # own attempt), inline: the call cost as much as ``x + 1``.
            sender, kwargs, outcomes = job.sender, job.envelope.kwargs, job.outcomes
            for signal, reg in job.registrations:
                if reg.is_async:
                    continue
                started = clock()
                try:
                    value = reg.receiver(signal=signal, sender=sender, **kwargs)
                except Exception as exc:
                    job._record_error(reg.receiver_id, exc, started)
                    if job.fail_fast:
                        break
                else:
                    outcomes.append(
                        Outcome(reg.receiver_id, value, None, clock() - started)
                    )
    finally:
        traceparent.reset(trace)
        current_delivery.reset(token)
