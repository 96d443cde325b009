"""Hooks that watch a worker: logging by default, metrics and tracing as extras.

An observer is told about every job a worker finished and every entry it
dead-lettered; one with a ``skipped_duplicate(signal, service, envelope)``
method (optional, so that existing observers keep working) is also told
of every signed event skipped as already handled (a replay). Observers
must be quick and must not raise; one that raises is logged and the
worker goes on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from busignal.wire.envelope import Envelope
    from busignal.worker.delivery import Job

__all__ = ["LogObserver", "Observer"]

logger = logging.getLogger(__name__)


class Observer(Protocol):
    """What a worker reports as it goes."""

    def handled(self, job: Job, seconds: float) -> None:
        """A job's receivers ran (``job.outcomes`` says how each went)."""

    def dead_lettered(self, signal: str, service: str, reason: str) -> None:
        """An entry of ``signal`` went to the dead letters for ``reason``."""


class LogObserver:
    """Logs each receiver run at DEBUG: signal, service, message, receiver, duration.

    The fields are also passed as ``extra`` so structured log handlers can
    index them.
    """

    @property
    def active(self) -> bool:
        """Whether ``handled`` logs anything (DEBUG is on); the worker asks
        once a batch instead of calling ``handled`` for every job."""
        return logger.isEnabledFor(logging.DEBUG)

    def handled(self, job: Job, seconds: float) -> None:
        if not logger.isEnabledFor(logging.DEBUG):
            return
        for outcome in job.outcomes:
            fields = {
                "signal": job.envelope.signal,
                "service": job.delivery.service,
                "message_id": job.envelope.message_id,
                "receiver": outcome.receiver_id,
                "duration": outcome.seconds,
                "ok": outcome.error is None,
            }
            logger.debug(
                "%(signal)s %(message_id)s %(service)s/%(receiver)s "
                "%(duration).6fs ok=%(ok)s",
                fields,
                extra={f"busignal_{k}": v for k, v in fields.items()},
            )

    def dead_lettered(self, signal: str, service: str, reason: str) -> None:
        logger.error("dead letter on %s for service %s: %s", signal, service, reason)

    def skipped_duplicate(self, signal: str, service: str, envelope: Envelope) -> None:
        logger.warning(
            "skipped message %s on %s for service %s: already handled (a replayed "
            "entry); acknowledged without running",
            envelope.message_id,
            signal,
            service,
        )
