"""Moving outbox rows to their streams (``manage.py busignal_relay``).

One pass takes up to ``batch`` pending rows, oldest first, in one database
transaction; appends their events to Redis in one round trip (encoded by
the bus, so its namespace, secret and partitions apply); deletes the rows
Redis took; and commits. Guarantees:

- A row is deleted only after its XADD succeeded. Redis unreachable: the
  transaction rolls back, every row stays, and ``run`` retries with
  backoff. A crash between the XADD and the commit sends the row again
  (at-least-once, as everywhere in busignal; the message id is the same,
  so workers with a secret run it once).
- On PostgreSQL (and other databases with ``SKIP LOCKED``) the rows of a
  pass are locked with ``SELECT ... FOR UPDATE SKIP LOCKED``: relays in
  several processes share the rows, and two never send the same one. On
  SQLite, which has no row locks, a pass first takes the database's write
  lock, so relays take turns (safe, but one relay is all SQLite needs).
- A row that cannot be sent (its kwargs do not decode in this process, its
  signal is not defined here, it is over the size limit) is marked ``dead``
  with the reason and left in the table; the others go on.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import DatabaseError, close_old_connections, connections, transaction
from django.db.models import Count, Min

from busignal.admin import outbox_status
from busignal.bus.bus import Bus
from busignal.bus.relaying import Stored, StoredSender
from busignal.dispatch.signal import named_signals
from busignal.errors import BusUnavailable, SerializationError
from busignal.wire import codec

__all__ = ["Backlog", "Relay", "Totals", "backlog"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Backlog:
    """What waits in one database's outbox: rows pending, rows dead, and when
    the oldest pending row was written (None when none waits)."""

    waiting: int
    dead: int
    oldest: datetime | None

    def age(self, now: float | None = None) -> float | None:
        """Seconds the oldest pending row has waited, or None."""
        if self.oldest is None:
            return None
        return max(0.0, (time.time() if now is None else now) - self.oldest.timestamp())

    def describe(self) -> str:
        """``"3 waiting, oldest 12.5s; 1 dead"``, for logs and the command."""
        age = self.age()
        text = f"{self.waiting} waiting"
        if age is not None:
            text += f", oldest {age:.1f}s"
        return text + (f"; {self.dead} dead" if self.dead else "")


def backlog(using: str = "default") -> Backlog:
    """Count one database's outbox rows (two small queries, no locks)."""
    from busignal.contrib.django.models import OutboxEvent

    rows = OutboxEvent.objects.using(using)
    counts = dict(rows.values_list("status").annotate(n=Count("id")).order_by())
    oldest = rows.filter(status=OutboxEvent.PENDING).aggregate(o=Min("created_at"))
    return Backlog(
        counts.get(OutboxEvent.PENDING, 0), counts.get(OutboxEvent.DEAD, 0), oldest["o"]
    )


@dataclass(slots=True)
class Totals:
    """What passes did: events sent, rows set aside as dead."""

    sent: int = 0
    dead: int = 0

    def add(self, other: Totals) -> None:
        self.sent += other.sent
        self.dead += other.dead


class Relay:
    """Sends one database's outbox rows on one bus."""

    def __init__(self, bus: Bus, *, using: str = "default", batch: int = 100) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch!r}")
        self.bus = bus
        self.using = using
        self.batch = batch
        self.sender = StoredSender(bus)
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    # -- one pass -------------------------------------------------------------

    def relay_batch(self) -> Totals:
        """Send up to ``batch`` rows in one transaction; BusUnavailable keeps all."""
        from busignal.contrib.django.models import OutboxEvent

        with transaction.atomic(using=self.using):
            rows = self._take()
            if not rows:
                return Totals()
            events: list[tuple[Any, Stored]] = []
            dead: list[tuple[Any, str]] = []
            for row in rows:
                stored = self._stored(row)
                if isinstance(stored, str):
                    dead.append((row, stored))
                else:
                    events.append((row, stored))
            results = self.sender.send([event for _, event in events])
            sent = []
            for (row, _), result in zip(events, results, strict=True):
                if isinstance(result, SerializationError):
                    dead.append((row, str(result)))
                else:
                    sent.append(row.pk)
            table = OutboxEvent.objects.using(self.using)
            table.filter(pk__in=sent).delete()
            for row, reason in dead:
                logger.error("outbox row %s is dead: %s", row.pk, reason)
                table.filter(pk=row.pk).update(status=OutboxEvent.DEAD, reason=reason)
        return Totals(len(sent), len(dead))

    def _take(self) -> list[Any]:
        from busignal.contrib.django.models import OutboxEvent

        table = OutboxEvent.objects.using(self.using)
        pending = table.filter(status=OutboxEvent.PENDING).order_by("pk")
        if connections[self.using].features.has_select_for_update_skip_locked:
            pending = pending.select_for_update(skip_locked=True)
        else:
            # No row locks (SQLite): a write first takes the database's write
            # lock for this transaction, so a second relay waits its turn
            # instead of reading the same rows.
            table.filter(pk=0).update(status=OutboxEvent.PENDING)
        return list(pending[: self.batch])

    def _stored(self, row: Any) -> Stored | str:
        """The row's event, or the reason it cannot be sent."""
        try:
            kwargs = codec.loads(bytes(row.kwargs))
        except SerializationError as exc:
            return f"its kwargs cannot be decoded here: {exc}"
        if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
            return f"its kwargs are not a dict of names: {kwargs!r:.200}"
        signals = named_signals().get(row.signal)
        if not signals:
            return (
                f"no Signal({row.signal!r}) is defined in the relay's process; "
                f"define it in an installed app's signals module (imported at "
                f"startup), then run busignal_relay --retry-dead"
            )
        return Stored(
            row.signal,
            row.sender,
            kwargs,
            row.message_id,
            row.trace,
            signals[0].partitioning,
        )

    # -- many passes ------------------------------------------------------------

    def drain(self) -> Totals:
        """Relay passes until none finds a row it can take."""
        totals = Totals()
        while True:
            done = self.relay_batch()
            totals.add(done)
            if not done.sent and not done.dead:
                return totals

    def retry_dead(self) -> int:
        """Put every dead row back in the queue; return how many."""
        from busignal.contrib.django.models import OutboxEvent

        dead = OutboxEvent.objects.using(self.using).filter(status=OutboxEvent.DEAD)
        return int(dead.update(status=OutboxEvent.PENDING, reason=""))

    def report(self) -> Backlog:
        """Count the backlog and leave it in Redis for ``busignal inspect``.

        A failure to write the report is logged, never raised: it is only
        a report.
        """
        found = backlog(self.using)
        oldest = found.oldest.timestamp() if found.oldest else None
        report = outbox_status.encode(
            found.waiting, found.dead, oldest, time.time(), self.name
        )
        try:
            with self.bus.transport.errors():
                self.bus.client.hset(self.bus.keys.outbox, self.using, report)
        except BusUnavailable:
            logger.debug("could not report the outbox backlog", exc_info=True)
        return found

    def run(self, stop: threading.Event, *, interval: float = 1.0) -> Totals:
        """Relay until ``stop`` is set: drain, report, wait ``interval``, again.

        Redis or the database unreachable: the rows stay, and the relay
        retries with exponential backoff (up to 30 s, with jitter).
        """
        totals, failures = Totals(), 0
        while not stop.is_set():
            try:
                close_old_connections()
                done = self.drain()
                found = self.report()
            except (BusUnavailable, DatabaseError) as exc:
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures, 6)) * random.uniform(
                    0.8, 1.2
                )
                self._log_failure(exc, delay)
                stop.wait(delay)
                continue
            failures = 0
            totals.add(done)
            if done.sent or done.dead:
                logger.info(
                    "relayed %d events (%d set aside as dead); outbox: %s",
                    done.sent,
                    done.dead,
                    found.describe(),
                )
            stop.wait(interval)
        return totals

    def _log_failure(self, exc: Exception, delay: float) -> None:
        try:
            waiting = backlog(self.using).describe()
        except DatabaseError:
            waiting = "unknown (the database cannot be reached)"
        logger.warning(
            "outbox relay cannot send: %s; outbox: %s; retrying in %.1fs",
            exc,
            waiting,
            delay,
        )
