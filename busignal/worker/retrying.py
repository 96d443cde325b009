"""Retrying failed receivers of events nobody waits for, each on its policy.

When a published event (or a send whose caller gave up) fails, the entry
stays pending and each failed receiver is judged on its own ``Retry``
(``busignal.dispatch.retry``), or on the worker's default: ``max_deliveries``
runs, ``retry_backoff`` seconds apart, on any exception. The entry is run
again when the first of them is due, and then only the receivers that are
due and have not succeeded run (``busignal.worker.outcomes`` records which,
in Redis, so a worker that takes the entry over knows too). A receiver out
of attempts, or failing with an exception its policy does not retry, sends
the entry to the dead letters at once.

Deliveries that never settled (the worker died or stalled while running
the entry) are counted apart from the runs: past ``max_deliveries`` of them
the entry is dead-lettered as poison.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from busignal.dispatch.retry import Retry
from busignal.worker.outcomes import Outcomes

if TYPE_CHECKING:
    from busignal.worker.context import WorkerContext
    from busignal.worker.delivery import Job
    from busignal.worker.routes import Route

__all__ = [
    "Verdict",
    "default_policy",
    "judge",
    "outcomes_key",
    "recall",
    "record_ttl",
    "verdict",
]

#: How long outcomes outlive their entry's last scheduled retry.
OUTCOMES_TTL = 24 * 3600


def outcomes_key(context: WorkerContext, job: Job) -> str:
    """The key of a job's outcomes (this service, this event)."""
    return context.keys.outcomes_of(
        job.stream, context.config.service, job.envelope.message_id
    )


def default_policy(context: WorkerContext, route: Route) -> Retry:
    """The policy of receivers that have none: the worker's (or signal's) limit,
    at a fixed ``retry_backoff``, on any exception."""
    config = context.config
    backoff = config.retry_backoff
    return Retry(
        attempts=route.max_deliveries(config.max_deliveries),
        backoff=backoff,
        max_backoff=backoff,
        jitter=False,
    )


async def recall(context: WorkerContext, client: Any, jobs: Sequence[Job]) -> None:
    """Read the recorded outcomes of jobs delivered before (one round trip).

    Only a redelivered entry can have any: the first delivery of an event
    costs nothing more.
    """
    again = [job for job in jobs if job.delivery.attempt > 1]
    if not again:
        return
    pipeline = client.pipeline(transaction=False)
    for job in again:
        pipeline.hgetall(outcomes_key(context, job))
    for job, raw in zip(again, await pipeline.execute(), strict=True):
        job.recorded = Outcomes.decode(raw) if raw else Outcomes()


def judge(
    context: WorkerContext, jobs: Sequence[Job], now: float
) -> tuple[list[Job], list[tuple[Job, str]]]:
    """Split recalled jobs into those to run and poison (with the reason).

    A job to run keeps only its receivers that are due and have not
    succeeded, each with its own attempt number: its settled runs, plus the
    deliveries that crashed, plus this one.
    """
    runnable: list[Job] = []
    poison: list[tuple[Job, str]] = []
    for job in jobs:
        recorded = job.recorded
        if recorded is None:
            runnable.append(job)
            continue
        limit = context.routes.route(job.delivery.signal).max_deliveries(
            context.config.max_deliveries
        )
        unsettled = job.delivery.attempt - 1 - recorded.settled
        if unsettled >= limit:
            poison.append(
                (
                    job,
                    f"delivered {unsettled} times without being acknowledged "
                    f"(max_deliveries={limit}); a worker died or stalled while "
                    f"running it each time",
                )
            )
            continue
        job.registrations = [
            (signal, reg)
            for signal, reg in job.registrations
            if recorded.runnable(reg.receiver_id, now)
        ]
        job.has_async = any(reg.is_async for _, reg in job.registrations)
        # A delivery that never settled may have run the receiver too.
        job.attempts = {
            reg.receiver_id: recorded.runs.get(reg.receiver_id, 0) + 1 + unsettled
            for _, reg in job.registrations
        }
        runnable.append(job)
    return runnable, poison


@dataclass(frozen=True, slots=True)
class Verdict:
    """What settling a failed or retried job does.

    ``dead`` is the dead-letter reason (the entry goes at once), ``wait`` the
    seconds until the next run (the entry stays pending), neither: every
    receiver is done and the entry is acknowledged.
    """

    recorded: Outcomes
    dead: str | None = None
    runs: int = 0
    wait: float | None = None
    #: The receivers that failed this time and will run again.
    retrying: tuple[str, ...] = ()


def verdict(context: WorkerContext, job: Job, now: float) -> Verdict:
    """Judge each receiver that ran on its policy; see the module docstring."""
    recorded = job.recorded or Outcomes()
    route = context.routes.route(job.delivery.signal)
    fallback: Retry | None = None
    policies = {reg.receiver_id: reg.retry for _, reg in job.registrations}
    reasons: list[str] = []
    retrying: list[str] = []
    most = 0
    for outcome in job.outcomes:
        receiver_id, error = outcome.receiver_id, outcome.error
        runs = recorded.runs.get(receiver_id, 0) + 1
        most = max(most, runs)
        if error is None:
            recorded.succeeded(receiver_id)
            continue
        policy = policies.get(receiver_id)
        if policy is None:
            policy = fallback = fallback or default_policy(context, route)
        if not policy.retries(error):
            reasons.append(
                f"receiver {receiver_id} raised {error!r}, which its retry "
                f"policy does not retry (on={policy.describe_on()})"
            )
        elif runs >= policy.attempts:
            times = "once" if runs == 1 else f"{runs} times"
            reasons.append(
                f"receiver {receiver_id} failed {times}; last error: {error!r}"
            )
        else:
            recorded.failed(receiver_id, runs, now + policy.delay(runs))
            retrying.append(receiver_id)
    if reasons:
        return Verdict(recorded, dead="; ".join(reasons), runs=most)
    matches, _ = route.match(job.envelope.sender, broadcast=False)
    waiting = recorded.waiting(reg.receiver_id for _, reg in matches)
    if not waiting:
        return Verdict(recorded)
    recorded.settled += 1
    # Receivers that never ran (after a fail-fast send's first error) run
    # with the failed one, when it is due.
    due = min((when for when in waiting if when), default=now)
    wait = max(0.0, due - now)
    return Verdict(recorded, wait=wait, retrying=tuple(retrying))


def record_ttl(recorded: Outcomes, now: float) -> int:
    """Seconds the outcomes are kept: past the last due retry, with a margin."""
    last = max(recorded.due.values(), default=now)
    return int(max(0.0, last - now)) + OUTCOMES_TTL
