"""A retry policy per receiver: ``busignal.Retry`` on ``connect``/``@receiver``.

Burst workers (``drain``) run due retries at once, so these tests need no
sleeps; the spacing of real retries is measured in
tests/integration/test_retry_policy.py.
"""

from __future__ import annotations

import asyncio

import pytest

import busignal
from busignal import ConfigurationError, Retry, Signal, receiver
from busignal.admin import dead
from busignal.bus.bus import Bus
from busignal.testing import drain, running_worker
from busignal.worker.outcomes import Outcomes
from busignal.worker.worker import WorkerConfig

from .bus_helpers import Recorder, delivery

# -- the policy as given --------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"attempts": 0}, r"Retry\(attempts=0\).*at least 1"),
        ({"attempts": 2.5}, r"Retry\(attempts=2.5\)"),
        ({"attempts": True}, r"Retry\(attempts=True\)"),
        ({"backoff": -1.0}, r"Retry\(backoff=-1.0\).*0 or more"),
        ({"backoff": "1s"}, r"Retry\(backoff='1s'\)"),
        ({"max_backoff": float("inf")}, r"Retry\(max_backoff=inf\)"),
        ({"backoff": 10.0, "max_backoff": 5.0}, "cap is below the first delay"),
        ({"jitter": "yes"}, r"Retry\(jitter='yes'\)"),
        ({"on": ConnectionError}, r"on=\(ConnectionError,\)"),
        ({"on": [ConnectionError]}, "tuple of exception classes"),
        ({"on": ()}, "non-empty tuple"),
        ({"on": (ConnectionError, "TimeoutError")}, "tuple of exception classes"),
        ({"on": (int,)}, "tuple of exception classes"),
    ],
)
def test_retry_refuses_bad_input_naming_it(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Retry(**options)  # type: ignore[arg-type]


def test_connect_refuses_a_retry_that_is_not_a_retry(name: str) -> None:
    def on_event(**kwargs: object) -> None: ...

    with pytest.raises(ConfigurationError, match=r"give a busignal\.Retry"):
        Signal(name).connect(on_event, retry={"attempts": 3})  # type: ignore[arg-type]


def test_connect_refuses_a_retry_on_a_broadcast_receiver(name: str) -> None:
    def on_event(**kwargs: object) -> None: ...

    with pytest.raises(ConfigurationError, match="broadcast receivers are never"):
        Signal(name).connect(on_event, broadcast=True, retry=Retry())


def test_retry_delay_doubles_from_backoff_up_to_the_cap() -> None:
    policy = Retry(backoff=1.0, max_backoff=5.0, jitter=False)

    assert [policy.delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_retry_jitter_waits_between_half_and_all_of_the_delay() -> None:
    policy = Retry(backoff=4.0, max_backoff=4.0, jitter=True)

    waits = [policy.delay(1) for _ in range(200)]

    assert all(2.0 <= wait <= 4.0 for wait in waits)
    assert len(set(waits)) > 1


def test_retry_is_exported_from_busignal() -> None:
    assert busignal.Retry is Retry
    assert "Retry" in busignal.__all__


def test_worker_config_refuses_a_negative_retry_backoff() -> None:
    with pytest.raises(ConfigurationError, match="retry_backoff"):
        WorkerConfig("svc", retry_backoff=-2.0)


def test_outcomes_read_back_what_was_written() -> None:
    outcomes = Outcomes(settled=2)
    outcomes.succeeded("app.a")
    outcomes.failed("app.b", 2, 1234.5)

    again = Outcomes.decode(outcomes.encode())

    assert (again.settled, again.done, again.runs, again.due) == (
        2,
        {"app.a"},
        {"app.b": 2},
        {"app.b": 1234.5},
    )


def test_outcomes_key_is_in_the_events_streams_slot(bus: Bus) -> None:
    events = bus.keys.events("order_paid", 3)

    key = bus.keys.outcomes_of(events, "billing", "abc")

    assert key.startswith(events.removesuffix("events"))
    assert key.endswith(":outcomes:billing:abc")


# -- what a worker does with it -----------------------------------------------------


def _failing(
    sig: Signal, error: BaseException, *, policy: Retry | None, times: int = 99
) -> Recorder[int]:
    """Connect a receiver raising ``error`` on its first ``times`` runs; it
    records the attempt it sees on each run."""
    attempts: Recorder[int] = Recorder()

    def flaky(**kwargs: object) -> str:
        attempts.add(delivery().attempt)
        if len(attempts) <= times:
            raise error
        return "done"

    sig.connect(flaky, weak=False, retry=policy, dispatch_uid="flaky")
    return attempts


def test_receiver_is_run_attempts_times_then_dead_lettered(bus: Bus, name: str) -> None:
    sig = Signal(name)
    policy = Retry(attempts=4, backoff=0.01, on=(ConnectionError,))
    attempts = _failing(sig, ConnectionError("db away"), policy=policy)
    drain(bus, "svc", signals=[name])
    sig.publish(sender=None)

    drain(bus, "svc", signals=[name], max_deliveries=2)

    assert attempts.items == [1, 2, 3, 4]
    [letter] = dead.list_dead(bus, name)
    assert letter.attempts == 4
    assert "receiver flaky failed 4 times" in letter.reason
    assert "db away" in letter.reason


def test_exception_outside_on_is_dead_lettered_after_one_run(
    bus: Bus, name: str
) -> None:
    sig = Signal(name)
    policy = Retry(attempts=5, on=(ConnectionError, TimeoutError))
    attempts = _failing(sig, KeyError("order 7"), policy=policy)
    drain(bus, "svc", signals=[name])
    sig.publish(sender=None)

    drain(bus, "svc", signals=[name])

    assert attempts.items == [1]
    [letter] = dead.list_dead(bus, name)
    assert letter.attempts == 1
    assert "receiver flaky raised KeyError('order 7')" in letter.reason
    assert "does not retry (on=(ConnectionError, TimeoutError))" in letter.reason


def test_receiver_that_recovers_is_acknowledged_and_its_outcomes_dropped(
    bus: Bus, name: str
) -> None:
    sig = Signal(name)
    policy = Retry(attempts=5, on=(TimeoutError,))
    attempts = _failing(sig, TimeoutError("slow"), policy=policy, times=2)
    drain(bus, "svc", signals=[name])
    sig.publish(sender=None)

    drain(bus, "svc", signals=[name])

    assert attempts.items == [1, 2, 3]
    assert dead.list_dead(bus, name) == []
    client = bus.client
    events = bus.keys.events(name)
    assert client.xpending(events, "svc")["pending"] == 0
    assert (
        list(client.scan_iter(match=f"{events.removesuffix('events')}outcomes:*")) == []
    )


def test_sibling_that_succeeded_is_not_run_again(bus: Bus, name: str) -> None:
    sig = Signal(name)
    steady: Recorder[int] = Recorder()

    @receiver(sig, weak=False)
    def first(**kwargs: object) -> None:
        steady.add(delivery().attempt)

    flaky = _failing(sig, ConnectionError("x"), policy=Retry(attempts=3), times=2)

    @receiver(sig, weak=False)
    def last(**kwargs: object) -> None:
        steady.add(delivery().attempt)

    drain(bus, "svc", signals=[name])
    sig.publish(sender=None)

    drain(bus, "svc", signals=[name])

    assert steady.items == [1, 1]
    assert flaky.items == [1, 2, 3]


def test_receiver_without_policy_keeps_the_workers_limit(bus: Bus, name: str) -> None:
    sig = Signal(name)
    plain = _failing(sig, ValueError("bad"), policy=None)
    drain(bus, "svc", signals=[name])
    sig.publish(sender=None)

    drain(bus, "svc", signals=[name], max_deliveries=3)

    assert plain.items == [1, 2, 3]
    [letter] = dead.list_dead(bus, name)
    assert "failed 3 times" in letter.reason


def test_each_receiver_counts_its_own_runs(bus: Bus, name: str) -> None:
    sig = Signal(name)
    short = _failing(sig, ConnectionError("a"), policy=Retry(attempts=5), times=1)
    long: Recorder[int] = Recorder()

    def slower(**kwargs: object) -> None:
        long.add(delivery().attempt)
        if len(long) <= 3:
            raise ConnectionError("b")

    sig.connect(slower, weak=False, retry=Retry(attempts=5))
    drain(bus, "svc", signals=[name])
    sig.publish(sender=None)

    drain(bus, "svc", signals=[name])

    assert short.items == [1, 2]
    assert long.items == [1, 2, 3, 4]
    assert dead.list_dead(bus, name) == []


def test_async_receiver_sees_its_own_attempt(bus: Bus, name: str) -> None:
    sig = Signal(name)
    flaky_seen: Recorder[int] = Recorder()
    steady_seen: Recorder[int] = Recorder()

    async def flaky(**kwargs: object) -> None:
        await asyncio.sleep(0)
        flaky_seen.add(delivery().attempt)
        if len(flaky_seen) < 3:
            raise TimeoutError("later")

    async def steady(**kwargs: object) -> None:
        steady_seen.add(delivery().attempt)

    sig.connect(flaky, weak=False, retry=Retry(attempts=3, on=(TimeoutError,)))
    sig.connect(steady, weak=False)
    drain(bus, "svc", signals=[name])
    sig.publish(sender=None)

    drain(bus, "svc", signals=[name])

    assert (flaky_seen.items, steady_seen.items) == ([1, 2, 3], [1])


def test_send_robust_gets_the_first_failure_and_nothing_is_retried(
    bus: Bus, name: str
) -> None:
    sig = Signal(name, timeout=5)
    attempts = _failing(sig, ConnectionError("down"), policy=Retry(attempts=5))

    with running_worker(bus, "svc", signals=[name]):
        [(_, response)] = sig.send_robust(sender=None)

    assert isinstance(response, ConnectionError)
    assert attempts.items == [1]
    assert bus.client.xpending(bus.keys.events(name), "svc")["pending"] == 0


def test_receivers_a_given_up_send_never_reached_run_on_its_retry(
    bus: Bus, name: str
) -> None:
    sig = Signal(name)
    flaky = _failing(sig, ConnectionError("x"), policy=Retry(attempts=3), times=1)
    later: Recorder[int] = Recorder()

    @receiver(sig, weak=False)
    def after(**kwargs: object) -> None:
        later.add(delivery().attempt)

    drain(bus, "svc", signals=[name])
    with pytest.raises(busignal.SignalTimeout):
        sig.using(timeout=0.05).send(sender=None)  # nobody runs it in time

    drain(bus, "svc", signals=[name])

    # send is fail-fast: 'after' did not run beside the first failure
    assert (flaky.items, later.items) == ([1, 2], [1])
    assert dead.list_dead(bus, name) == []
