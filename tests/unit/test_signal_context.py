"""Context sharing between the receivers of one send, as in Django 6.1.

All receivers of one ``send``, ``send_robust``, ``asend`` or
``asend_robust`` share one context: a ``ContextVar`` set by one receiver is
seen by the next, sync or async, and the caller sees the final value once
the call returns, also when a receiver raised. Request ids, tenants and
tracing spans set by one receiver reach the next, as they do in Django.

Every case runs against ``busignal.Signal`` and, where Django 6.1 or later
is installed (it needs Python 3.12+), against ``django.dispatch.Signal``
itself, with the same expectations: the two must not differ.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest

from busignal.dispatch.signal import Signal

trail: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("trail")


def _django_signal() -> type[Any] | None:
    """Django's own Signal class when it has 6.1's context sharing, else None."""
    try:
        import django
        from django.dispatch import Signal as DjangoSignal
    except ImportError:
        return None
    if django.VERSION < (6, 1):
        return None
    return DjangoSignal  # type: ignore[no-any-return]  # Django is untyped


DJANGO_SIGNAL = _django_signal()
LOGGERS = {"busignal": "busignal.dispatch", "django": "django.dispatch"}


@pytest.fixture(
    params=[
        "busignal",
        pytest.param(
            "django",
            marks=pytest.mark.skipif(
                DJANGO_SIGNAL is None,
                reason="Django >= 6.1 is not installed (it needs Python 3.12+): "
                "parity cases checked against busignal only",
            ),
        ),
    ]
)
def impl(request: pytest.FixtureRequest) -> str:
    """Which implementation the case runs against."""
    return str(request.param)


@pytest.fixture
def make_signal(impl: str) -> Callable[[], Any]:
    """A factory of fresh signals of the implementation under test."""
    if impl == "django":
        assert DJANGO_SIGNAL is not None
        return DJANGO_SIGNAL
    return Signal


class Boom(Exception):
    """What a failing receiver raises."""


def sync_receiver(name: str, *, fails: bool = False) -> Callable[..., object]:
    """A receiver that returns the trail it saw and appends ``name`` to it."""

    def receiver(**kwargs: object) -> object:
        seen = trail.get()
        trail.set((*seen, name))
        if fails:
            raise Boom(name)
        return seen

    receiver.__qualname__ = name
    return receiver


def async_receiver(name: str, *, fails: bool = False) -> Callable[..., object]:
    """The async form of :func:`sync_receiver`."""

    async def receiver(**kwargs: object) -> object:
        seen = trail.get()
        trail.set((*seen, name))
        if fails:
            raise Boom(name)
        return seen

    receiver.__qualname__ = name
    return receiver


def build(make_signal: Callable[[], Any], spec: str) -> tuple[Any, list[object]]:
    """A signal with receivers named by ``spec``, connected in that order.

    ``s1`` is sync, ``a1`` async; an ``f`` prefix (``fs1``, ``fa1``) fails.
    The receivers are returned too: signals hold them weakly.
    """
    signal = make_signal()
    receivers: list[object] = []
    for name in spec.split():
        fails = name.startswith("f")
        kind = name.removeprefix("f")[0]
        factory = sync_receiver if kind == "s" else async_receiver
        receiver = factory(name, fails=fails)
        signal.connect(receiver)
        receivers.append(receiver)
    return signal, receivers


Outcome = tuple[object, tuple[str, ...]]


def dispatch(signal: Any, method: str) -> Outcome:
    """Call ``method`` as a caller whose trail is ``("caller",)``.

    Returns what the call returned (names and responses, an exception as
    its type) or the exception it raised, and the trail the caller sees
    afterwards. Runs in a fresh context so nothing leaks between cases.
    """
    if method.startswith("a"):
        return asyncio.run(_adispatch(signal, method))
    return contextvars.Context().run(_dispatch, signal, method)


def _dispatch(signal: Any, method: str) -> Outcome:
    trail.set(("caller",))
    result: object
    try:
        result = _summary(getattr(signal, method)(sender=None))
    except Exception as err:
        result = _error(err)
    return result, trail.get()


async def _adispatch(signal: Any, method: str) -> Outcome:
    trail.set(("caller",))
    result: object
    try:
        result = _summary(await getattr(signal, method)(sender=None))
    except Exception as err:
        result = _error(err)
    return result, trail.get()


def _summary(responses: list[tuple[Any, object]]) -> list[tuple[str, object]]:
    return [
        (r.__qualname__, type(v) if isinstance(v, Exception) else v)
        for r, v in responses
    ]


def _error(err: Exception) -> object:
    if isinstance(err, ExceptionGroup):
        return ("group", sorted(str(e) for e in err.exceptions))
    return ("raised", type(err), str(err))


SYNC_METHODS = ["send", "send_robust"]
ASYNC_METHODS = ["asend", "asend_robust"]
ALL_METHODS = SYNC_METHODS + ASYNC_METHODS
C = ("caller",)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_sync_receivers_share_context_with_each_other_and_caller(
    make_signal: Callable[[], Any], method: str
) -> None:
    signal, _keep = build(make_signal, "s1 s2 s3")
    assert dispatch(signal, method) == (
        [("s1", C), ("s2", (*C, "s1")), ("s3", (*C, "s1", "s2"))],
        (*C, "s1", "s2", "s3"),
    )


@pytest.mark.parametrize("method", ALL_METHODS)
def test_async_receivers_share_context_with_each_other_and_caller(
    make_signal: Callable[[], Any], method: str
) -> None:
    signal, _keep = build(make_signal, "a1 a2 a3")
    assert dispatch(signal, method) == (
        [("a1", C), ("a2", (*C, "a1")), ("a3", (*C, "a1", "a2"))],
        (*C, "a1", "a2", "a3"),
    )


@pytest.mark.parametrize("method", ALL_METHODS)
def test_single_async_receiver_change_reaches_caller(
    make_signal: Callable[[], Any], method: str
) -> None:
    signal, _keep = build(make_signal, "a1")
    assert dispatch(signal, method) == ([("a1", C)], (*C, "a1"))


@pytest.mark.parametrize("method", ALL_METHODS)
def test_mixed_receivers_run_sync_first_and_share_context(
    make_signal: Callable[[], Any], method: str
) -> None:
    signal, _keep = build(make_signal, "a1 s1 a2 s2")
    assert dispatch(signal, method) == (
        [
            ("s1", C),
            ("s2", (*C, "s1")),
            ("a1", (*C, "s1", "s2")),
            ("a2", (*C, "s1", "s2", "a1")),
        ],
        (*C, "s1", "s2", "a1", "a2"),
    )


# One failing receiver: what has run, and what the caller sees.

FAILING_SYNC = {
    # send stops at the failure; the caller keeps what ran before it,
    # including what the failing receiver set before raising.
    "send": (("raised", Boom, "fs2"), (*C, "s1", "fs2")),
    "asend": (("raised", Boom, "fs2"), (*C, "s1", "fs2")),
    "send_robust": (
        [
            ("s1", C),
            ("fs2", Boom),
            ("s3", (*C, "s1", "fs2")),
            ("a1", (*C, "s1", "fs2", "s3")),
        ],
        (*C, "s1", "fs2", "s3", "a1"),
    ),
}
FAILING_SYNC["asend_robust"] = FAILING_SYNC["send_robust"]


@pytest.mark.parametrize("method", ALL_METHODS)
def test_failing_sync_receiver(make_signal: Callable[[], Any], method: str) -> None:
    signal, _keep = build(make_signal, "s1 fs2 s3 a1")
    assert dispatch(signal, method) == FAILING_SYNC[method]


FAILING_ASYNC = {
    # The async receivers already started run on (TaskGroup order); the
    # failure raises itself, and the caller sees every change, the failing
    # receiver's included.
    "send": (("raised", Boom, "fa2"), (*C, "s1", "a1", "fa2", "a3")),
    "send_robust": (
        [("s1", C), ("a1", (*C, "s1")), ("fa2", Boom), ("a3", (*C, "s1", "a1", "fa2"))],
        (*C, "s1", "a1", "fa2", "a3"),
    ),
}
FAILING_ASYNC["asend"] = FAILING_ASYNC["send"]
FAILING_ASYNC["asend_robust"] = FAILING_ASYNC["send_robust"]


@pytest.mark.parametrize("method", ALL_METHODS)
def test_failing_async_receiver(make_signal: Callable[[], Any], method: str) -> None:
    signal, _keep = build(make_signal, "s1 a1 fa2 a3")
    assert dispatch(signal, method) == FAILING_ASYNC[method]


@pytest.mark.parametrize("method", ["send", "asend"])
def test_two_failing_async_receivers_raise_a_group_and_keep_changes(
    make_signal: Callable[[], Any], method: str
) -> None:
    signal, _keep = build(make_signal, "fa1 a2 fa3")
    assert dispatch(signal, method) == (
        ("group", ["fa1", "fa3"]),
        (*C, "fa1", "a2", "fa3"),
    )


@pytest.mark.parametrize("method", ["send", "asend"])
def test_failure_cancels_async_receivers_waiting_and_keeps_their_changes(
    make_signal: Callable[[], Any], method: str
) -> None:
    """A receiver still awaiting when another fails is cancelled (TaskGroup)."""
    signal = make_signal()
    finished: list[str] = []

    async def slow(**kwargs: object) -> None:
        trail.set((*trail.get(), "slow"))
        await asyncio.sleep(10)
        finished.append("slow")

    async def failing(**kwargs: object) -> None:
        await asyncio.sleep(0)
        raise Boom("failing")

    signal.connect(slow)
    signal.connect(failing)
    assert dispatch(signal, method) == (("raised", Boom, "failing"), (*C, "slow"))
    assert finished == []


@pytest.mark.parametrize("method", ["send_robust", "asend_robust"])
def test_robust_logs_each_failure(
    make_signal: Callable[[], Any],
    impl: str,
    method: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    signal, _keep = build(make_signal, "fs1 s2 fa1 a2")
    with caplog.at_level(logging.ERROR, logger=LOGGERS[impl]):
        dispatch(signal, method)
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        (LOGGERS[impl], "Error calling fs1 in Signal.send_robust() (fs1)"),
        (LOGGERS[impl], "Error calling fa1 in Signal.send_robust() (fa1)"),
    ]
    assert all(r.exc_info and r.exc_info[0] is Boom for r in caplog.records)


# Threads: where sync code runs, as asgiref's bridges place it.


def test_asend_runs_sync_receivers_off_the_loop_thread_in_one_thread(
    make_signal: Callable[[], Any],
) -> None:
    signal = make_signal()
    threads: list[int] = []

    def record(**kwargs: object) -> None:
        threads.append(threading.get_ident())

    def record_again(**kwargs: object) -> None:
        threads.append(threading.get_ident())

    signal.connect(record)
    signal.connect(record_again)
    asyncio.run(signal.asend(sender=None))
    assert threads[0] == threads[1] != threading.get_ident()


def test_asend_under_async_to_sync_runs_sync_receivers_in_caller_thread(
    make_signal: Callable[[], Any],
) -> None:
    """A sync view's ``async_to_sync(signal.asend)``: receivers on its thread.

    So they use the view's database connection and see its transaction.
    """
    from asgiref.sync import async_to_sync

    signal = make_signal()
    threads: list[int] = []

    def record(**kwargs: object) -> None:
        threads.append(threading.get_ident())

    signal.connect(record)
    async_to_sync(signal.asend)(sender=None)
    assert threads == [threading.get_ident()]


def test_send_async_receiver_sync_to_async_runs_in_caller_thread(
    make_signal: Callable[[], Any],
) -> None:
    """An async receiver's ``sync_to_async`` ORM call runs on the sender's thread."""
    from asgiref.sync import sync_to_async

    signal = make_signal()
    threads: list[int] = []

    def record() -> None:
        threads.append(threading.get_ident())

    async def receiver(**kwargs: object) -> None:
        await sync_to_async(record)()

    signal.connect(receiver)
    signal.send(sender=None)
    assert threads == [threading.get_ident()]


# Where busignal deliberately differs from Django.


def test_send_inside_running_loop_shares_context_with_caller() -> None:
    """``send`` from async code works here (Django raises RuntimeError)."""
    signal, _keep = build(Signal, "s1 a1 a2")

    async def main() -> Outcome:
        return _dispatch(signal, "send")

    assert asyncio.run(main()) == (
        [("s1", C), ("a1", (*C, "s1")), ("a2", (*C, "s1", "a1"))],
        (*C, "s1", "a1", "a2"),
    )


@pytest.mark.skipif(DJANGO_SIGNAL is None, reason="Django >= 6.1 is not installed")
def test_django_refuses_send_with_async_receivers_inside_running_loop() -> None:
    signal, _keep = build(DJANGO_SIGNAL, "a1")  # type: ignore[arg-type]

    async def main() -> Outcome:
        return _dispatch(signal, "send")

    result, _ = asyncio.run(main())
    assert isinstance(result, tuple)
    assert result[1] is RuntimeError


def _without_asgiref(monkeypatch: pytest.MonkeyPatch) -> None:
    from busignal.dispatch import concurrency

    monkeypatch.setattr(concurrency, "ASGIREF", False)


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("spec", ["s1 a1 a2", "s1 fs2 a1", "s1 fa1 a2"])
def test_context_sharing_without_asgiref(
    monkeypatch: pytest.MonkeyPatch, method: str, spec: str
) -> None:
    """Without Django (so without asgiref) the context is shared the same way."""
    signal, _keep = build(Signal, spec)
    with_asgiref = dispatch(signal, method)
    _without_asgiref(monkeypatch)
    assert dispatch(signal, method) == with_asgiref
