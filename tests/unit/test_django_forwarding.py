"""The Django app's settings and forwarding, on a memory:// bus.

Django is set up in this process with the contrib auth models (no tables
are needed: the tests send Django's signals themselves) and the busignal
app; each test connects its own forwarder and disconnects it after.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import django
import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

import busignal
from busignal import signals as bus_signals
from busignal.bus.bus import Bus
from busignal.bus.default import reset_default
from busignal.contrib.django import conf
from busignal.contrib.django.conf import ForwardSpec
from busignal.contrib.django.forward import Forwarder
from busignal.errors import BusUnavailable
from busignal.wire import envelope

if not settings.configured:
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
from django.apps import apps
from django.contrib.auth.models import Group, User
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_started
from django.db import transaction
from django.db.models import signals as model_signals
from django.test import override_settings

MakeForwarder = Callable[..., Forwarder]


@pytest.fixture
def forwarder() -> Iterator[MakeForwarder]:
    """Connected forwarders, disconnected after the test."""
    made: list[Forwarder] = []

    def make(*specs: ForwardSpec, **options: Any) -> Forwarder:
        made.append(Forwarder(specs, **options))
        made[-1].connect()
        return made[-1]

    yield make
    for each in made:
        each.disconnect()


def published(bus: Bus, signal: str) -> list[envelope.Envelope]:
    """The events on a signal's stream, decoded."""
    entries: Any = bus.client.xrange(bus.keys.events(signal))
    return [
        envelope.decode(
            fields,
            signal=signal,
            signer=None,
            max_size=bus.config.max_payload,
            stream=bus.keys.events(signal),
            namespace=bus.keys.namespace,
        )
        for _, fields in entries
    ]


def ann() -> Any:
    return User(pk=7, username="ann", email="ann@example.com", is_staff=True)


# -- settings ---------------------------------------------------------------


def test_settings_busignal_url_alone_gives_url() -> None:
    loaded = conf.load(type("S", (), {"BUSIGNAL_URL": "redis://r/0"}))
    assert (loaded.url, loaded.forward) == ("redis://r/0", ())


def test_settings_dict_gives_bus_options_and_forwards() -> None:
    raw = {
        "URL": "redis://r/0",
        "NAMESPACE": "shop",
        "SECRET": [
            "new-secret-0123456789abcdefghijkl",
            "old-secret-0123456789abcdefghijkl",
        ],
        "FORWARD": {"auth.User": {"signals": ["post_save"], "fields": ["email"]}},
    }
    loaded = conf.load(type("S", (), {"BUSIGNAL": raw}))
    source = loaded.source()
    assert (source.url, source.namespace) == ("redis://r/0", "shop")
    assert source.secrets == (
        "new-secret-0123456789abcdefghijkl",
        "old-secret-0123456789abcdefghijkl",
    )
    assert loaded.forward == (ForwardSpec("auth.User", ("post_save",), ("email",)),)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"URL": "redis://r", "FORWRD": {}}, "unknown keys ['FORWRD']"),
        ({"FORWARD": {"auth.User": {"signals": ["saved"]}}}, "'saved'"),
        ({"FORWARD": {"auth.User": {"signals": ["request_started"]}}}, "REQUESTS"),
        ({"FORWARD": {"User": {"signals": ["post_save"]}}}, "app_label.ModelName"),
        ({"FORWARD": {"auth.User": {"signals": "post_save"}}}, "list of names"),
        ({"FORWARD": {"auth.User": {"signals": []}}}, "is empty"),
        ({"REQUESTS": ["post_save"]}, "not a request signal"),
        ({"ON_ERROR": "ignore"}, "ON_ERROR"),
    ],
)
def test_settings_mistake_is_improperly_configured(
    raw: dict[str, Any], message: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=message.replace("[", r"\[")):
        conf.load(type("S", (), {"BUSIGNAL": raw}))


def test_settings_conflicting_urls_are_improperly_configured() -> None:
    both = type(
        "S", (), {"BUSIGNAL": {"URL": "redis://a"}, "BUSIGNAL_URL": "redis://b"}
    )
    with pytest.raises(ImproperlyConfigured, match="both set"):
        conf.load(both)


# -- checking models at startup -------------------------------------------------


def test_forwarder_unknown_model_is_improperly_configured(bus: Bus) -> None:
    forwarder = Forwarder([ForwardSpec("auth.Usr", ("post_save",))])
    with pytest.raises(ImproperlyConfigured, match=r"'auth\.Usr'"):
        forwarder.connect()


def test_forwarder_unknown_model_connects_nothing(bus: Bus) -> None:
    specs = [
        ForwardSpec("auth.Group", ("post_save",)),
        ForwardSpec("nope.Model", ("post_save",)),
    ]
    with pytest.raises(ImproperlyConfigured):
        Forwarder(specs).connect()
    model_signals.post_save.send(sender=Group, instance=Group(pk=1), created=True)
    assert published(bus, "post_save") == []


def test_forwarder_unknown_field_is_improperly_configured(bus: Bus) -> None:
    forwarder = Forwarder([ForwardSpec("auth.User", ("post_save",), ("mail",))])
    with pytest.raises(ImproperlyConfigured, match="no field 'mail'"):
        forwarder.connect()


def test_forwarder_many_to_many_field_is_improperly_configured(bus: Bus) -> None:
    forwarder = Forwarder([ForwardSpec("auth.User", ("post_save",), ("groups",))])
    with pytest.raises(ImproperlyConfigured, match="m2m_changed"):
        forwarder.connect()


# -- what is forwarded -----------------------------------------------------------


def test_forward_post_save_publishes_label_pk_and_chosen_fields(
    bus: Bus, forwarder: MakeForwarder
) -> None:
    forwarder(ForwardSpec("auth.User", ("post_save",), ("username", "is_staff")))

    model_signals.post_save.send(
        sender=User,
        instance=ann(),
        created=True,
        raw=False,
        using="default",
        update_fields=frozenset({"username"}),
    )

    [event] = published(bus, "post_save")
    assert event.sender == "auth.User"
    assert event.kwargs == {
        "instance": {"pk": 7, "username": "ann", "is_staff": True},
        "created": True,
        "raw": False,
        "using": "default",
        "update_fields": frozenset({"username"}),
    }


def test_forward_is_fire_and_forget_publish(bus: Bus, forwarder: MakeForwarder) -> None:
    forwarder(ForwardSpec("auth.User", ("post_save",)))

    model_signals.post_save.send(sender=User, instance=ann(), created=False)

    [event] = published(bus, "post_save")
    assert event.mode is envelope.Mode.PUBLISH
    assert event.kwargs["instance"] == {"pk": 7}


def test_forward_ignores_other_models(bus: Bus, forwarder: MakeForwarder) -> None:
    forwarder(ForwardSpec("auth.User", ("post_save",)))

    model_signals.post_save.send(sender=Group, instance=Group(pk=1), created=True)

    assert published(bus, "post_save") == []


def test_forward_only_chosen_signals(bus: Bus, forwarder: MakeForwarder) -> None:
    forwarder(ForwardSpec("auth.User", ("post_delete",)))

    model_signals.post_save.send(sender=User, instance=ann(), created=True)
    model_signals.pre_delete.send(sender=User, instance=ann(), using="default")

    assert published(bus, "post_save") == []
    assert published(bus, "pre_delete") == []


def test_forward_delete_sends_origin_as_label(
    bus: Bus, forwarder: MakeForwarder
) -> None:
    forwarder(ForwardSpec("auth.User", ("pre_delete",), ("email",)))
    user = ann()

    model_signals.pre_delete.send(
        sender=User, instance=user, using="default", origin=user
    )

    [event] = published(bus, "pre_delete")
    assert event.kwargs == {
        "instance": {"pk": 7, "email": "ann@example.com"},
        "using": "default",
        "origin": "auth.User",
    }


def test_forward_m2m_changed_sends_related_model_label_and_pk_set(
    bus: Bus, forwarder: MakeForwarder
) -> None:
    forwarder(ForwardSpec("auth.User", ("m2m_changed",), ("username",)))

    model_signals.m2m_changed.send(
        sender=User.groups.through,
        instance=ann(),
        action="post_add",
        reverse=False,
        model=Group,
        pk_set={1, 2},
        using="default",
    )

    [event] = published(bus, "m2m_changed")
    assert event.sender == "auth.User"
    assert event.kwargs == {
        "instance": {"pk": 7, "username": "ann"},
        "action": "post_add",
        "reverse": False,
        "model": "auth.Group",
        "pk_set": {1, 2},
        "using": "default",
    }


def test_forward_m2m_changed_passes_on_raw_when_django_sends_it(
    bus: Bus, forwarder: MakeForwarder
) -> None:
    # Django 6.1 sends raw=True for relations loaded from a fixture; older
    # Django sends no raw at all (the test above), and none is made up.
    forwarder(ForwardSpec("auth.User", ("m2m_changed",), ("username",)))

    model_signals.m2m_changed.send(
        sender=User.groups.through,
        instance=ann(),
        action="post_add",
        reverse=False,
        model=Group,
        pk_set={1},
        using="default",
        raw=True,
    )

    [event] = published(bus, "m2m_changed")
    assert event.kwargs["raw"] is True


def test_forward_m2m_changed_from_other_side_sends_its_pk_only(
    bus: Bus, forwarder: MakeForwarder
) -> None:
    forwarder(ForwardSpec("auth.User", ("m2m_changed",), ("username",)))

    model_signals.m2m_changed.send(
        sender=User.groups.through,
        instance=Group(pk=3, name="staff"),
        action="post_clear",
        reverse=True,
        model=User,
        pk_set=None,
        using="default",
    )

    [event] = published(bus, "m2m_changed")
    assert event.kwargs["instance"] == {"pk": 3}
    assert (event.kwargs["model"], event.kwargs["pk_set"]) == ("auth.User", None)


def test_forward_m2m_changed_without_relations_is_improperly_configured(
    bus: Bus,
) -> None:
    forwarder = Forwarder([ForwardSpec("contenttypes.ContentType", ("m2m_changed",))])
    with pytest.raises(ImproperlyConfigured, match="no many-to-many"):
        forwarder.connect()


def test_forward_request_started_sends_no_headers(
    bus: Bus, forwarder: MakeForwarder
) -> None:
    forwarder(requests=["request_started"])
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/a", "HTTP_COOKIE": "s=1"}

    request_started.send(sender=WSGIHandler, environ=environ)

    [event] = published(bus, "request_started")
    assert event.sender == "django.core.handlers.wsgi.WSGIHandler"
    assert event.kwargs == {"environ": {"REQUEST_METHOD": "GET", "PATH_INFO": "/a"}}


def test_forward_on_commit_waits_for_the_transaction(
    bus: Bus, forwarder: MakeForwarder
) -> None:
    forwarder(ForwardSpec("auth.User", ("post_save",), on_commit=True))

    with transaction.atomic():
        model_signals.post_save.send(sender=User, instance=ann(), created=True)
        assert published(bus, "post_save") == []

    assert len(published(bus, "post_save")) == 1


def test_forward_failure_raises_by_default(
    bus: Bus, forwarder: MakeForwarder, monkeypatch: pytest.MonkeyPatch
) -> None:
    forwarder(ForwardSpec("auth.User", ("post_save",)))
    monkeypatch.setattr(bus_signals.post_save, "publish", _unavailable)

    with pytest.raises(BusUnavailable):
        model_signals.post_save.send(sender=User, instance=ann(), created=True)


def test_forward_failure_is_logged_with_on_error_log(
    bus: Bus,
    forwarder: MakeForwarder,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    forwarder(ForwardSpec("auth.User", ("post_save",)), on_error="log")
    monkeypatch.setattr(bus_signals.post_save, "publish", _unavailable)

    with caplog.at_level(logging.ERROR, "busignal.contrib.django.forward"):
        model_signals.post_save.send(sender=User, instance=ann(), created=True)

    assert "could not forward post_save from auth.User" in caplog.text


def _unavailable(*args: object, **kwargs: object) -> str:
    raise BusUnavailable("redis://nowhere is unreachable")


# -- the app's ready() ------------------------------------------------------------


@pytest.fixture
def app_ready() -> Iterator[Callable[[], None]]:
    """Run the busignal app's ready() again; undo its forwarding and bus after."""
    app = apps.get_app_config("busignal")
    yield app.ready
    if app.forwarder is not None:
        app.forwarder.disconnect()
    busignal.configure(None)
    reset_default()


def test_app_ready_configures_default_bus_from_settings(
    app_ready: Callable[[], None], memory_url: str
) -> None:
    with override_settings(BUSIGNAL={"URL": memory_url, "NAMESPACE": "shop"}):
        app_ready()

    bus = busignal.get_bus()
    assert bus is not None
    assert (bus.config.url, bus.config.namespace) == (memory_url, "shop")


def test_app_ready_settings_url_keeps_environment_secret(
    app_ready: Callable[[], None], memory_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUSIGNAL_SECRET", "s3cret-s3cret-s3cret-s3cret-s3cret")
    with override_settings(BUSIGNAL={"URL": memory_url}):
        app_ready()

    bus = busignal.get_bus()
    assert bus is not None
    assert bus.config.secrets == ("s3cret-s3cret-s3cret-s3cret-s3cret",)


def test_app_ready_environment_url_keeps_settings_secret_and_namespace(
    app_ready: Callable[[], None], memory_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUSIGNAL_URL", memory_url)
    monkeypatch.delenv("BUSIGNAL_SECRET", raising=False)
    with override_settings(
        BUSIGNAL={"SECRET": "s3cret-s3cret-s3cret-s3cret-s3cret", "NAMESPACE": "shop"}
    ):
        app_ready()

    bus = busignal.get_bus()
    assert bus is not None
    assert (bus.config.url, bus.config.namespace) == (memory_url, "shop")
    assert bus.config.secrets == ("s3cret-s3cret-s3cret-s3cret-s3cret",)


def test_app_ready_secrets_differing_from_environment_are_improperly_configured(
    app_ready: Callable[[], None], memory_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUSIGNAL_SECRET", "other-secret-0123456789abcdefghijk")
    with (
        override_settings(
            BUSIGNAL={"URL": memory_url, "SECRET": "s3cret-s3cret-s3cret-s3cret-s3cret"}
        ),
        pytest.raises(ImproperlyConfigured, match="secret in the Django settings"),
    ):
        app_ready()


def test_app_ready_unknown_model_is_improperly_configured(
    app_ready: Callable[[], None], memory_url: str
) -> None:
    forward = {"shop.Order": {"signals": ["post_save"]}}
    with (
        override_settings(BUSIGNAL={"URL": memory_url, "FORWARD": forward}),
        pytest.raises(ImproperlyConfigured, match=r"'shop\.Order'"),
    ):
        app_ready()


def test_app_ready_forwarding_without_bus_is_improperly_configured(
    app_ready: Callable[[], None], no_bus: None
) -> None:
    forward = {"auth.User": {"signals": ["post_save"]}}
    with (
        override_settings(BUSIGNAL={"FORWARD": forward}),
        pytest.raises(ImproperlyConfigured, match="no bus"),
    ):
        app_ready()
