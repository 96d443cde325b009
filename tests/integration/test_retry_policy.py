"""Retry policies per receiver, with real redis-server and worker processes.

The receivers (tests/integration/apps/retrying.py) write down each run with
their own clock; the spacing of the runs is measured from those times. One
event per test, each on its own redis-server.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

from busignal import Signal
from busignal.admin.dead import list_dead
from busignal.bus.bus import Bus

from .faults_support import alive, pending
from .servers import RedisServer, WorkerProcess, wait_for

StartWorker = Callable[..., WorkerProcess]
SERVICE = "retrying"
#: A run comes this late after it was due, at most, on a busy machine
#: (the worker looks for due retries every 50 ms).
LATE = 1.0


def _runs(server: RedisServer, name: str) -> list[tuple[int, float]]:
    key = f"retry:runs:{name}"
    raw: list[bytes] = server.client().lrange(key, 0, -1)  # type: ignore[assignment]  # sync client
    runs = [item.decode().split("|") for item in raw]
    return [(int(attempt), float(at)) for attempt, at in runs]


def _gaps(runs: list[tuple[int, float]]) -> list[float]:
    return [later - earlier for (_, earlier), (_, later) in pairwise(runs)]


def _dead_letters(bus: Bus, signal: str) -> int:
    return len(list_dead(bus, signal))


def _spaced(gaps: list[float], expected: list[float]) -> bool:
    return len(gaps) == len(expected) and all(
        want <= gap <= want + LATE for gap, want in zip(gaps, expected, strict=True)
    )


def test_retry_runs_are_spaced_by_the_backoff_and_counted_exactly(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker = worker_factory(SERVICE, "retrying")

    Signal("retry_always_down").publish(None)
    wait_for(lambda: _dead_letters(bus, "retry_always_down") == 1, 20, "a dead letter")

    runs = _runs(redis_server, "down")
    assert [attempt for attempt, _ in runs] == [1, 2, 3, 4]
    gaps = _gaps(runs)
    # backoff 0.5 doubled per run, capped at 1.5, no jitter
    assert _spaced(gaps, [0.5, 1.0, 1.5]), gaps
    [letter] = list_dead(bus, "retry_always_down")
    assert letter.attempts == 4
    assert "failed 4 times" in letter.reason
    assert "the payment provider is away" in letter.reason
    assert pending(redis_server, "retry_always_down", SERVICE) == 0
    assert alive(worker)


def test_exception_outside_on_is_dead_lettered_after_one_run(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker_factory(SERVICE, "retrying")

    Signal("retry_wrong_error").publish(None)
    wait_for(lambda: _dead_letters(bus, "retry_wrong_error") == 1, 20, "a dead letter")

    assert [attempt for attempt, _ in _runs(redis_server, "wrong")] == [1]
    [letter] = list_dead(bus, "retry_wrong_error")
    assert letter.attempts == 1
    assert "KeyError('order 7 is not in the catalogue')" in letter.reason
    assert "does not retry (on=(ConnectionError, TimeoutError))" in letter.reason
    assert pending(redis_server, "retry_wrong_error", SERVICE) == 0


def test_receiver_that_succeeded_is_not_run_again_while_its_sibling_retries(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker_factory(SERVICE, "retrying")

    Signal("retry_siblings").publish(None)
    wait_for(lambda: len(_runs(redis_server, "flaky")) == 3, 20, "three runs")
    wait_for(
        lambda: pending(redis_server, "retry_siblings", SERVICE) == 0,
        10,
        "the event to be acknowledged",
    )

    flaky = _runs(redis_server, "flaky")
    assert [attempt for attempt, _ in flaky] == [1, 2, 3]
    assert _spaced(_gaps(flaky), [0.3, 0.6]), _gaps(flaky)
    assert [a for a, _ in _runs(redis_server, "first")] == [1]
    assert [a for a, _ in _runs(redis_server, "last")] == [1]
    assert _dead_letters(bus, "retry_siblings") == 0
    assert redis_server.client().keys("busignal:*:outcomes:*") == []


def test_receiver_without_policy_uses_the_workers_flags(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker_factory(
        SERVICE,
        "retrying",
        extra=["--max-deliveries", "3", "--retry-backoff", "0.4"],
    )

    Signal("retry_no_policy").publish(None)
    wait_for(lambda: _dead_letters(bus, "retry_no_policy") == 1, 20, "a dead letter")

    runs = _runs(redis_server, "plain")
    assert [attempt for attempt, _ in runs] == [1, 2, 3]
    assert _spaced(_gaps(runs), [0.4, 0.4]), _gaps(runs)


def test_worker_taking_over_a_retry_keeps_its_schedule_and_outcomes(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    first = worker_factory(SERVICE, "retrying")
    Signal("retry_takeover").publish(None)
    outcomes = "busignal:*:outcomes:*"
    wait_for(lambda: redis_server.client().keys(outcomes), 10, "recorded outcomes")
    first.kill()  # the retry it scheduled in memory is lost with it

    second = worker_factory(SERVICE, "retrying")
    wait_for(lambda: "took over 1 entries" in second.output(), 10, "the takeover")
    assert len(_runs(redis_server, "patient")) == 1  # taken over, not due yet
    wait_for(lambda: len(_runs(redis_server, "patient")) == 2, 20, "the retry")
    wait_for(
        lambda: pending(redis_server, "retry_takeover", SERVICE) == 0,
        10,
        "the event to be acknowledged",
    )

    patient = _runs(redis_server, "patient")
    assert [attempt for attempt, _ in patient] == [1, 2]
    # taken over after about 1.5 s (three heartbeats), run when due at 4 s
    [gap] = _gaps(patient)
    assert 4.0 <= gap <= 4.0 + LATE, gap
    assert [a for a, _ in _runs(redis_server, "steady")] == [1]
    assert _dead_letters(bus, "retry_takeover") == 0
