"""The transactional outbox: events that leave only if their transaction commits.

``publish`` writes the event as a row of the outbox table with the
database connection of the current transaction; ``manage.py
busignal_relay`` sends the rows to Redis afterwards. A save and its event
commit together or not at all, and Redis being down at that moment loses
nothing: the row waits for the relay. Use it in application code::

    from busignal.contrib.django import outbox

    with transaction.atomic():
        order.save()
        outbox.publish(order_paid, sender="shop.Order", order_id=order.pk)

Outside a transaction (autocommit) the row is written at once, as a
one-statement transaction. Model events that ``BUSIGNAL["FORWARD"]``
forwards take this path when ``BUSIGNAL["OUTBOX"]`` (or the entry's
``"outbox"``) is on. See docs/django.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core import checks
from django.db import DatabaseError, connections, router

from busignal import tracing
from busignal.bus.default import get_bus
from busignal.dispatch.signal import Signal
from busignal.errors import ConfigurationError, SerializationError
from busignal.names import sender_name
from busignal.wire import codec
from busignal.wire.envelope import new_message_id

__all__ = ["check_outbox_table", "publish", "write"]


def publish(signal: Signal, sender: object, **kwargs: object) -> str:
    """Write one event to the outbox, in the current transaction; return its
    message id.

    The relay publishes it (as ``signal.publish(sender, **kwargs)``) once
    the transaction has committed; a rollback removes it with the rest.
    Raises SerializationError before any row is written if a kwarg cannot
    be encoded, ConfigurationError for a signal without a name. The row
    goes to the database the routers choose for writing the outbox model.
    """
    return write(signal, sender, kwargs)


def write(
    signal: Signal,
    sender: object,
    kwargs: Mapping[str, object],
    using: str | None = None,
) -> str:
    """``publish`` with the database alias given (a forwarded save's ``using``)."""
    from busignal.contrib.django.models import OutboxEvent

    name = _name(signal)
    body = codec.dumps_kwargs(kwargs)
    _check_size(name, body)
    message_id = new_message_id()
    database = using or router.db_for_write(OutboxEvent)
    OutboxEvent.objects.using(database).create(
        signal=name,
        sender=sender_name(sender),
        kwargs=body,
        message_id=message_id,
        trace=tracing.outgoing(),
    )
    return message_id


def _name(signal: object) -> str:
    if not isinstance(signal, Signal):
        raise TypeError(
            f"outbox.publish() expects a busignal Signal, got "
            f"{type(signal).__name__!r}: {signal!r}"
        )
    if signal.name is None:
        raise ConfigurationError(
            "outbox.publish() needs a named signal, the same in every process: "
            "Signal('order_paid')"
        )
    return signal.name


def _check_size(signal: str, body: bytes) -> None:
    """The bus's size limit, checked now rather than when the relay sends."""
    bus = get_bus()
    if bus is not None and len(body) > bus.config.max_payload:
        raise SerializationError(
            f"signal {signal!r}: the kwargs encode to {len(body)} bytes, over the "
            f"{bus.config.max_payload}-byte limit; send identifiers instead of "
            f"large values, or raise max_payload"
        )


def check_outbox_table(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """A system check: with the outbox on, its table exists in each database.

    Without it every save would fail inside the transaction. Silent when
    Django runs the checks for ``migrate`` (``databases`` given), which is
    what creates the table, and when a database cannot be reached.
    """
    from busignal.contrib.django import conf
    from busignal.contrib.django.models import OutboxEvent

    if databases is not None or not conf.load(settings).uses_outbox:
        return []
    table = OutboxEvent._meta.db_table
    errors: list[checks.CheckMessage] = []
    for alias in connections:
        if not router.allow_migrate_model(alias, OutboxEvent):
            continue
        try:
            with connections[alias].cursor() as cursor:
                tables = connections[alias].introspection.table_names(cursor)
        except DatabaseError:
            continue
        if table not in tables:
            errors.append(
                checks.Error(
                    f"BUSIGNAL's outbox is on, but its table {table!r} does not "
                    f"exist in database {alias!r}",
                    hint="Run: python manage.py migrate busignal",
                    id="busignal.E001",
                )
            )
    return errors
