"""busignal as a user's code reads to a type checker.

mypy checks this file (``tests`` is in its ``files``); pytest never runs
it, since nothing here is a test. Each ``assert_type`` pins what a user
gets back, and each ``# type: ignore[code]`` is a mistake a user must be
told about: with ``warn_unused_ignores`` (part of ``--strict``), an API
that stopped catching that mistake (a decorator returning ``Any``, an
untyped option) fails mypy here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import assert_type

import busignal
from busignal import (
    Bus,
    Delivery,
    RemoteReceiver,
    Retry,
    Signal,
    SignalTimeout,
    SignalView,
    receiver,
)
from busignal.testing import drain, running_worker
from busignal.worker import Worker

Responses = list[tuple[object, object]]

order_paid = Signal("order_paid", timeout=5)
cache_cleared = Signal("cache_cleared", partitions=2, partition_key="key")
in_process = Signal(use_caching=True)


class Order:
    pass


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str


# --- receivers: the decorator returns the function it was given ---------------


@receiver(order_paid, sender=Order, dispatch_uid="billing.charge")
def charge(sender: object, order_id: int, **kwargs: object) -> str:
    return f"charged {order_id}"


@receiver([order_paid, cache_cleared], broadcast=True)
async def forget(sender: object, **kwargs: object) -> None:
    pass


assert_type(charge(Order, order_id=7), str)
charge(Order, order_id="7")  # type: ignore[arg-type]  # still the typed function


def on_anything(sender: object, **kwargs: object) -> int:
    return 1


def connect_and_disconnect() -> None:
    assert_type(in_process.connect(on_anything), None)
    in_process.connect(on_anything, sender=Order, weak=False, dispatch_uid="any")
    assert_type(in_process.disconnect(on_anything), bool)
    assert_type(in_process.disconnect(dispatch_uid="any", sender=Order), bool)
    assert_type(in_process.has_listeners(), bool)


# --- sending ------------------------------------------------------------------


def send() -> None:
    responses = order_paid.send(sender=Order, order_id=7)
    assert_type(responses, Responses)
    for who, response in order_paid.send_robust(Order, order_id=7):
        if isinstance(who, RemoteReceiver):
            assert_type(who.service, str)
            assert_type(who.worker, str | None)
        if isinstance(response, SignalTimeout):
            assert_type(response.services, list[str])


async def asend() -> None:
    assert_type(await order_paid.asend(Order, order_id=7), Responses)
    assert_type(await order_paid.asend_robust(Order, order_id=7), Responses)
    assert_type(await order_paid.apublish(Order, order_id=7), str)


def per_call_options(bus: Bus) -> None:
    view = order_paid.using(timeout=2, bus=bus)
    assert_type(view, SignalView)
    assert_type(view.send(Order, order_id=7), Responses)
    order_paid.using(timeout="2")  # type: ignore[arg-type]


def publish() -> None:
    assert_type(order_paid.publish(Order, order_id=7), str)
    batch = [{"order_id": 1}, {"order_id": 2}]
    assert_type(order_paid.publish_many(Order, batch), list[str])


def retry_policies() -> None:
    policy = Retry(attempts=5, backoff=1.0, max_backoff=300.0, jitter=True)
    assert_type(policy.attempts, int)

    @receiver(order_paid, retry=Retry(on=(ConnectionError, TimeoutError)))
    def on_paid(sender: object, **kwargs: object) -> None: ...

    order_paid.connect(on_paid, retry=policy)
    order_paid.connect(on_paid, retry=3)  # type: ignore[arg-type]
    Retry(attempts="5")  # type: ignore[arg-type]
    Retry(on=ConnectionError)  # type: ignore[arg-type]


def delayed_and_durable(eta: datetime) -> None:
    assert_type(order_paid.using(delay=900).publish(Order, order_id=7), str)
    later = order_paid.using(delay=timedelta(minutes=15), durable="replica")
    assert_type(later.publish_many(Order, [{"order_id": 1}]), list[str])
    order_paid.using(eta=eta, durable=True).publish(Order, order_id=7)
    order_paid.using(eta="tomorrow")  # type: ignore[arg-type]
    busignal.Signal("orders_kept", durable="fsync")


def inside_a_receiver() -> None:
    delivery = busignal.current_delivery.get()
    if delivery is not None:
        assert_type(delivery, Delivery)
        assert_type(delivery.attempt, int)


# --- configuration --------------------------------------------------------------


def configure() -> None:
    bus = busignal.configure(
        url="redis://localhost:6379/0",
        namespace="shop",
        secret=[
            "new-secret-0123456789abcdefghijkl",
            "old-secret-0123456789abcdefghijkl",
        ],
        timeout=5,
        max_payload=2 * 1024 * 1024,
        connect_timeout=1.5,
        socket_timeout=3,
        reply_ttl=30,
        stream_maxlen=5_000,
        cluster=False,
    )
    assert_type(bus, Bus | None)
    busignal.configure(url="memory://", secret="one-secret-0123456789abcdefghijkl")
    busignal.configure(url="memory://", timout=5)  # type: ignore[call-arg]
    busignal.configure(url="memory://", timeout="5s")  # type: ignore[arg-type]
    assert_type(busignal.configure(), Bus | None)
    assert_type(busignal.get_bus(), Bus | None)


def a_bus_of_its_own() -> None:
    bus = Bus(
        "memory://tests",
        namespace="tests",
        secret="s3cret-s3cret-s3cret-s3cret-s3cret",
        timeout=2,
    )
    signal = Signal("audit", bus=bus, timeout=1, max_deliveries=3)
    assert_type(signal.bus, Bus | None)
    bus.close()


# --- tests of users' own code -----------------------------------------------------


def users_test(bus: Bus) -> None:
    with running_worker(bus, service="billing") as worker:
        assert_type(worker, Worker)
        order_paid.send(Order, order_id=7)
    order_paid.publish(Order, order_id=8)
    assert_type(drain(bus, "billing", signals=["order_paid"]), int)


# --- what travels --------------------------------------------------------------


busignal.register_codec(
    Money,
    7,
    lambda money: [str(money.amount), money.currency],
    lambda value: Money(Decimal(value[0]), value[1]),
)


@busignal.register_exception
class PaymentDeclined(Exception):
    pass


assert_type(PaymentDeclined("card expired"), PaymentDeclined)


def errors() -> None:
    try:
        order_paid.send(Order, order_id=7)
    except PaymentDeclined as declined:
        assert_type(declined, PaymentDeclined)
    except busignal.RemoteError as remote:
        assert_type(remote.type_name, str)
    except busignal.BusignalError:
        pass
