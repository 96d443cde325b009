"""The outbox table: events written in a transaction, sent by the relay.

One row per event, written by ``busignal.contrib.django.outbox`` with the
same database connection as the save it describes, so it commits or rolls
back with it. ``manage.py busignal_relay`` sends the rows oldest first and
deletes each once Redis has it; a row it cannot send stays, marked
``dead`` with the reason.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models
from django.utils import timezone

__all__ = ["OutboxEvent"]


class OutboxEvent(models.Model):  # type: ignore[misc]  # Django is untyped
    """One event waiting in the outbox (``pending``) or set aside (``dead``)."""

    PENDING = "pending"
    DEAD = "dead"
    STATUSES = ((PENDING, "pending"), (DEAD, "dead"))

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(default=timezone.now)
    signal = models.CharField(max_length=200)
    #: The sender's wire name (``"shop.Order"``).
    sender = models.CharField(max_length=255, blank=True)
    #: The kwargs, msgpack-encoded by busignal's codec.
    kwargs = models.BinaryField()
    message_id = models.CharField(max_length=32)
    #: The W3C traceparent current when the event was written, if any.
    trace = models.CharField(max_length=128, blank=True, default="")
    status = models.CharField(max_length=8, choices=STATUSES, default=PENDING)
    #: Why a dead row could not be sent.
    reason = models.TextField(blank=True, default="")

    class Meta:
        app_label = "busignal"
        db_table = "busignal_outbox"
        indexes: ClassVar[list[Any]] = [
            models.Index(fields=["status", "id"], name="busignal_outbox_next")
        ]
        verbose_name = "outbox event"

    def __str__(self) -> str:
        return f"{self.signal} from {self.sender or '(none)'} ({self.status})"
