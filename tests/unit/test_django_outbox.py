"""The Django outbox on SQLite (in memory) and a memory:// bus.

Writing rows (``outbox.publish``, forwarded saves), relaying them, rows
that cannot be sent, the system check and the settings. The relay against
real PostgreSQL, real Redis and several processes is in
tests/integration/test_django_outbox.py.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import django
import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from busignal import Signal
from busignal.bus.bus import Bus
from busignal.contrib.django import conf
from busignal.errors import BusUnavailable, ConfigurationError, SerializationError
from busignal.wire import codec, envelope

if not settings.configured:  # as in test_django_forwarding, whichever runs first
    settings.configure(
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "busignal.contrib.django",
        ],
        DATABASES={
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
        },
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        USE_TZ=True,
    )
    django.setup()

# These imports need the settings above.
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings

from busignal.admin.inspection import inspect_bus
from busignal.bus.relaying import StoredSender
from busignal.cli.console import Console
from busignal.cli.report import print_report
from busignal.contrib.django import outbox
from busignal.contrib.django.conf import ForwardSpec
from busignal.contrib.django.forward import Forwarder
from busignal.contrib.django.models import OutboxEvent
from busignal.contrib.django.relay import Relay, backlog

order_paid = Signal("outbox_order_paid")


@pytest.fixture
def tables() -> Iterator[None]:
    """The outbox and auth tables in the in-memory database, empty."""
    call_command("migrate", verbosity=0)
    yield
    OutboxEvent.objects.all().delete()
    User.objects.all().delete()


def events(bus: Bus, signal: str) -> list[envelope.Envelope]:
    entries: Any = bus.client.xrange(bus.keys.events(signal))
    return [
        envelope.decode(
            f,
            signal=signal,
            signer=bus.signer,
            max_size=1 << 20,
            stream=bus.keys.events(signal),
            namespace=bus.keys.namespace,
        )
        for _, f in entries
    ]


# -- writing ------------------------------------------------------------------


def test_outbox_publish_writes_a_row_and_sends_nothing(bus: Bus, tables: None) -> None:
    with transaction.atomic():
        mid = outbox.publish(order_paid, "shop.Order", order_id=7, total=Decimal("2"))

    [row] = OutboxEvent.objects.all()
    assert (row.signal, row.sender) == (order_paid.name, "shop.Order")
    assert row.message_id == mid
    assert codec.loads(bytes(row.kwargs)) == {"order_id": 7, "total": Decimal("2")}
    assert events(bus, str(order_paid.name)) == []


def test_outbox_publish_in_rolled_back_transaction_leaves_no_row(
    bus: Bus, tables: None
) -> None:
    def failing_save() -> None:
        with transaction.atomic():
            outbox.publish(order_paid, "shop.Order", order_id=7)
            raise RuntimeError("the save failed")

    with pytest.raises(RuntimeError):
        failing_save()

    assert not OutboxEvent.objects.exists()


def test_outbox_publish_unencodable_kwarg_raises_before_any_row(
    bus: Bus, tables: None
) -> None:
    with pytest.raises(SerializationError, match=r"kwargs\['order'\]"):
        outbox.publish(order_paid, "shop.Order", order=object())

    assert not OutboxEvent.objects.exists()


def test_outbox_publish_unnamed_signal_is_a_configuration_error(
    bus: Bus, tables: None
) -> None:
    with pytest.raises(ConfigurationError, match="named signal"):
        outbox.publish(Signal(), "shop.Order", order_id=7)


def create_then_fail(username: str) -> None:
    with transaction.atomic():
        User.objects.create(username=username)
        raise RuntimeError("the save failed")


def test_forwarded_save_with_outbox_writes_row_in_the_save_transaction(
    bus: Bus, tables: None
) -> None:
    forwarder = Forwarder(
        [ForwardSpec("auth.User", ("post_save",), ("username",), outbox=True)]
    )
    forwarder.connect()
    try:
        with transaction.atomic():
            User.objects.create(username="kept")
        with pytest.raises(RuntimeError):
            create_then_fail("rolled back")
    finally:
        forwarder.disconnect()

    [row] = OutboxEvent.objects.all()
    kwargs = codec.loads(bytes(row.kwargs))
    assert (row.signal, row.sender) == ("post_save", "auth.User")
    assert kwargs["instance"]["username"] == "kept"
    assert events(bus, "post_save") == []


# -- relaying -----------------------------------------------------------------


def test_relay_sends_rows_oldest_first_with_their_message_ids_and_deletes_them(
    bus: Bus, tables: None
) -> None:
    ids = [outbox.publish(order_paid, "shop.Order", n=n) for n in range(5)]

    done = Relay(bus, batch=2).drain()

    sent = events(bus, str(order_paid.name))
    assert [e.kwargs["n"] for e in sent] == [0, 1, 2, 3, 4]
    assert [e.message_id for e in sent] == ids
    assert (done.sent, done.dead) == (5, 0)
    assert not OutboxEvent.objects.exists()


def test_relay_signs_with_the_bus_secret(memory_url: str, tables: None) -> None:
    secret = "an-outbox-relay-signing-secret-32b"
    signed = Bus(memory_url, namespace="signed", secret=secret)
    outbox.publish(order_paid, "shop.Order", n=1)

    Relay(signed).drain()

    entries: Any = signed.client.xrange(signed.keys.events(str(order_paid.name)))
    assert b"h" in entries[0][1]
    [event] = events(signed, str(order_paid.name))
    assert event.kwargs == {"n": 1}


def test_relay_spreads_a_partitioned_signal_by_its_key_in_the_namespace(
    memory_url: str, tables: None
) -> None:
    tenant = Bus(memory_url, namespace="tenant")
    parted = Signal("outbox_parted", partitions=3, partition_key="k")
    for n in range(12):
        outbox.publish(parted, "shop.Order", k=n % 4, n=n)

    Relay(tenant).drain()

    by_partition: dict[int, list[tuple[int, int]]] = {}
    for part in range(3):
        stream = tenant.keys.events("outbox_parted", part)
        assert stream.startswith("tenant:")
        entries: Any = tenant.client.xrange(stream)
        for _, fields in entries:
            kwargs = envelope.decode(
                fields,
                signal="outbox_parted",
                signer=None,
                max_size=1 << 20,
                stream=stream,
                namespace=tenant.keys.namespace,
            ).kwargs
            by_partition.setdefault(part, []).append((kwargs["k"], kwargs["n"]))
    assert sum(len(v) for v in by_partition.values()) == 12
    assert len(by_partition) > 1
    for events_of_part in by_partition.values():  # a key stays in one partition
        for key in {k for k, _ in events_of_part}:
            assert all(
                key not in {k for k, _ in other}
                for other in by_partition.values()
                if other is not events_of_part
            )


def test_relay_sets_aside_undecodable_and_unknown_rows_and_goes_on(
    bus: Bus, tables: None
) -> None:
    outbox.publish(order_paid, "shop.Order", n=1)
    OutboxEvent.objects.create(
        signal=order_paid.name, kwargs=b"\xc1", message_id="a" * 32
    )
    OutboxEvent.objects.create(
        signal="nobody_defines_this", kwargs=codec.dumps_kwargs({}), message_id="b" * 32
    )
    outbox.publish(order_paid, "shop.Order", n=2)

    done = Relay(bus).drain()

    assert [e.kwargs["n"] for e in events(bus, str(order_paid.name))] == [1, 2]
    assert (done.sent, done.dead) == (2, 2)
    reasons = dict(OutboxEvent.objects.values_list("signal", "reason"))
    assert "cannot be decoded" in reasons[order_paid.name]
    assert "no Signal('nobody_defines_this')" in reasons["nobody_defines_this"]
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {"dead"}


def test_relay_retry_dead_puts_rows_back_in_the_queue(bus: Bus, tables: None) -> None:
    OutboxEvent.objects.create(
        signal=order_paid.name, sender="x", kwargs=codec.dumps_kwargs({"n": 3}),
        message_id="c" * 32, status=OutboxEvent.DEAD, reason="was unknown",
    )  # fmt: skip
    relay = Relay(bus)

    assert relay.retry_dead() == 1
    relay.drain()

    assert [e.kwargs for e in events(bus, str(order_paid.name))] == [{"n": 3}]


def test_relay_keeps_every_row_when_redis_is_unavailable(
    bus: Bus, tables: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox.publish(order_paid, "shop.Order", n=1)

    def down(self: StoredSender, batch: object) -> list[object]:
        raise BusUnavailable("cannot reach Redis at memory://")

    monkeypatch.setattr(StoredSender, "send", down)
    with pytest.raises(BusUnavailable):
        Relay(bus).drain()

    assert backlog().waiting == 1


def test_relay_report_shows_backlog_in_inspect(bus: Bus, tables: None) -> None:
    outbox.publish(order_paid, "shop.Order", n=1)
    outbox.publish(order_paid, "shop.Order", n=2)

    found = Relay(bus).report()
    report = inspect_bus(bus)
    out = io.StringIO()
    print_report(report, Console(plain=True, out=out))

    assert (found.waiting, found.dead) == (2, 0)
    [box] = report.outbox
    assert (box.database, box.waiting, box.dead) == ("default", 2, 0)
    assert box.oldest_age is not None
    assert (
        "outbox of database 'default': 2 waiting, oldest 0s, 0 dead" in out.getvalue()
    )


def test_inspect_without_relay_reports_shows_no_outbox(bus: Bus) -> None:
    out = io.StringIO()
    print_report(inspect_bus(bus), Console(plain=True, out=out))

    assert "outbox" not in out.getvalue()


# -- the system check and the settings -----------------------------------------


def test_outbox_check_without_table_names_migrate(bus: Bus) -> None:
    with connection.schema_editor() as editor:
        editor.delete_model(OutboxEvent)
    try:
        with override_settings(BUSIGNAL={"URL": "memory://x", "OUTBOX": True}):
            [error] = outbox.check_outbox_table()
            during_migrate = outbox.check_outbox_table(databases=["default"])
    finally:
        with connection.schema_editor() as editor:
            editor.create_model(OutboxEvent)

    assert error.id == "busignal.E001"
    assert "migrate" in str(error.hint)
    assert during_migrate == []


def test_outbox_check_with_outbox_off_is_silent(bus: Bus, tables: None) -> None:
    with override_settings(BUSIGNAL={"URL": "memory://x"}):
        assert outbox.check_outbox_table() == []


def test_settings_outbox_is_each_forward_entry_default() -> None:
    raw = {
        "OUTBOX": True,
        "FORWARD": {
            "auth.User": {"signals": ["post_save"]},
            "auth.Group": {"signals": ["post_save"], "outbox": False},
        },
    }

    loaded = conf.load(type("S", (), {"BUSIGNAL": raw}))

    assert [spec.outbox for spec in loaded.forward] == [True, False]
    assert loaded.uses_outbox


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"OUTBOX": "yes"}, "OUTBOX must be True or False"),
        (
            {"FORWARD": {"auth.User": {"signals": ["post_save"], "on_commit": True,
                                       "outbox": True}}},
            "drop 'on_commit'",
        ),
    ],
)  # fmt: skip
def test_settings_outbox_mistake_is_improperly_configured(
    raw: dict[str, Any], message: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        conf.load(type("S", (), {"BUSIGNAL": raw}))
