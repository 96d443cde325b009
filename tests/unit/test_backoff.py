"""A worker waits out a Redis that is away on one schedule, and never retries a
refused login."""

from __future__ import annotations

import asyncio

import pytest
import redis

from busignal.worker import backoff


def test_waits_double_from_a_tenth_of_a_second_up_to_five() -> None:
    assert [backoff.delay(n) for n in range(1, 9)] == [
        0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0,
    ]  # fmt: skip


def test_an_action_is_retried_until_redis_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[int] = []

    async def no_wait(exc: BaseException, failures: int) -> None:
        waits.append(failures)

    monkeypatch.setattr(backoff, "pause", no_wait)
    outcomes: list[Exception | None] = [redis.ConnectionError("down")] * 3 + [None]

    async def action() -> None:
        if (outcome := outcomes.pop(0)) is not None:
            raise outcome

    asyncio.run(backoff.until_through(action, stopping=lambda: False))

    assert waits == [1, 2, 3]
    assert outcomes == []


def test_a_refused_login_is_raised_at_once() -> None:
    calls: list[int] = []

    async def action() -> None:
        calls.append(1)
        raise redis.AuthenticationError("invalid username-password pair")

    with pytest.raises(redis.AuthenticationError):
        asyncio.run(backoff.until_through(action, stopping=lambda: False))

    assert calls == [1]


def test_a_stopping_worker_gives_up_once_the_wait_passes_two_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[int] = []

    async def no_wait(exc: BaseException, failures: int) -> None:
        waits.append(failures)

    monkeypatch.setattr(backoff, "pause", no_wait)

    async def action() -> None:
        raise redis.ConnectionError("down")

    with pytest.raises(redis.ConnectionError):
        asyncio.run(backoff.until_through(action, stopping=lambda: True))

    assert waits == [1, 2, 3, 4, 5]  # the sixth wait would be 3.2 s
