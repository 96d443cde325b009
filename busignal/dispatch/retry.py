"""How a receiver is retried when an event nobody waits for fails: ``Retry``.

Given to ``connect(..., retry=Retry(...))`` or ``@receiver(sig, retry=...)``.
A worker runs a failed receiver again after ``backoff * 2**(n-1)`` seconds
(``n`` its runs so far), capped at ``max_backoff``, up to ``attempts`` runs
in all; an exception that is not one of ``on`` is dead-lettered at once.
Receivers without a policy get the worker's (``--max-deliveries`` runs,
``--retry-backoff`` seconds apart). Kept in ``dispatch`` because it is part
of a receiver's connection, like ``dispatch_uid``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from busignal.errors import ConfigurationError

__all__ = ["Retry"]


@dataclass(frozen=True, slots=True)
class Retry:
    """A receiver's retry policy; checked when made (``ConfigurationError``).

    ``jitter`` waits a random time between half the delay and all of it, so
    that receivers failing together on an outage do not come back in step.
    """

    attempts: int = 5
    backoff: float = 1.0
    max_backoff: float = 300.0
    jitter: bool = True
    on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        if not _is_int(self.attempts) or self.attempts < 1:
            raise ConfigurationError(
                f"Retry(attempts={self.attempts!r}): attempts counts every run "
                f"of the receiver, the first included; give an int of at least 1"
            )
        for name in ("backoff", "max_backoff"):
            value = getattr(self, name)
            if not _is_number(value) or value < 0 or not math.isfinite(value):
                raise ConfigurationError(
                    f"Retry({name}={value!r}): give a finite number of seconds, "
                    f"0 or more"
                )
        if self.max_backoff < self.backoff:
            raise ConfigurationError(
                f"Retry(backoff={self.backoff!r}, max_backoff={self.max_backoff!r})"
                f": the cap is below the first delay; raise max_backoff"
            )
        if not isinstance(self.jitter, bool):
            raise ConfigurationError(
                f"Retry(jitter={self.jitter!r}): give True or False"
            )
        _check_on(self.on)

    def delay(self, runs: int) -> float:
        """Seconds to wait after the receiver's ``runs``-th failed run."""
        wait = min(self.max_backoff, self.backoff * 2.0 ** min(runs - 1, 64))
        if self.jitter:
            return random.uniform(wait / 2, wait)
        return wait

    def retries(self, error: BaseException) -> bool:
        """Whether ``error`` is one this policy runs the receiver again for."""
        return isinstance(error, self.on)

    def describe_on(self) -> str:
        """``on`` as a user wrote it, for dead-letter reasons."""
        return "(" + ", ".join(kind.__name__ for kind in self.on) + ")"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_on(on: object) -> None:
    if isinstance(on, type) and issubclass(on, BaseException):
        raise ConfigurationError(
            f"Retry(on={on.__name__}): give a tuple of exception classes, "
            f"e.g. on=({on.__name__},)"
        )
    if (
        not isinstance(on, tuple)
        or not on
        or not all(isinstance(k, type) and issubclass(k, BaseException) for k in on)
    ):
        raise ConfigurationError(
            f"Retry(on={on!r}): give a non-empty tuple of exception classes, "
            f"e.g. on=(ConnectionError, TimeoutError)"
        )
