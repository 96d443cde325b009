"""Forwarding Django's model and request signals to the bus.

Each forwarded model signal is published (fire-and-forget) on the bus
signal of the same name in ``busignal.signals``, with the sender
``"app_label.ModelName"`` and the instance as a dict of its primary key
and the chosen fields: a model instance is never sent whole, so workers
read what they need from their own database, or get it in the event.

Connect a worker's receiver with the label as sender::

    @receiver(busignal.signals.post_save, sender="shop.Order")
    def on_order_saved(sender, instance, created, **kwargs):
        ...  # instance == {"pk": 7, "status": "paid", "total": Decimal("12.50")}
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.core import signals as request_signals
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.core.files import File
from django.db import transaction
from django.db.models import signals as model_signals

from busignal import signals as bus_signals
from busignal.contrib.django import outbox
from busignal.contrib.django.conf import ForwardSpec
from busignal.dispatch.signal import Signal
from busignal.errors import BusignalError

__all__ = ["Forwarder", "ModelForward", "RequestForward", "instance_payload"]

logger = logging.getLogger(__name__)

GetModel = Callable[[str], Any]

#: The WSGI environ keys (or ASGI scope keys, renamed) a request event carries.
#: Headers, cookies and the body are left out: they may hold credentials.
WSGI_KEYS = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "SERVER_NAME")
ASGI_KEYS = {"method": "REQUEST_METHOD", "path": "PATH_INFO"}


def model_label(model: Any) -> str:
    """``"app_label.ModelName"``, the sender name of a forwarded model signal."""
    return str(model._meta.label)


def field_value(instance: Any, field: Any) -> object:
    """A field's value as sent: a related object as its key, a file as its name."""
    value = field.value_from_object(instance)
    if isinstance(value, File):
        return value.name
    return value


def instance_payload(instance: Any, fields: Iterable[Any]) -> dict[str, object]:
    """The instance as it goes on the bus: ``{"pk": ..., field: value, ...}``."""
    payload: dict[str, object] = {"pk": instance.pk}
    for each in fields:
        payload[each.name] = field_value(instance, each)
    return payload


def _origin_label(origin: object) -> str | None:
    """The model label of a delete's origin (a model instance or a QuerySet)."""
    model = getattr(origin, "model", None) or type(origin)
    return model_label(model) if hasattr(model, "_meta") else None


@dataclass(frozen=True, slots=True)
class ModelForward:
    """A Django receiver that publishes one model's signal on the bus."""

    signal: str
    model: Any
    fields: tuple[Any, ...]
    on_commit: bool
    publish: Callable[[Signal, object, dict[str, object]], None]

    @property
    def label(self) -> str:
        return model_label(self.model)

    def __call__(self, sender: object, **kwargs: Any) -> None:
        named = self.kwargs(kwargs)
        send = partial(self.publish, getattr(bus_signals, self.signal), self.label)
        if self.on_commit:
            transaction.on_commit(partial(send, named), using=kwargs.get("using"))
        else:
            send(named)

    def payload(self, instance: Any) -> dict[str, object]:
        """This model's instances with the chosen fields; others by key only."""
        if isinstance(instance, self.model):
            return instance_payload(instance, self.fields)
        return {"pk": instance.pk}

    def kwargs(self, kwargs: Mapping[str, Any]) -> dict[str, object]:
        """The kwargs as sent: Django's, with objects replaced by plain data."""
        named: dict[str, object] = {
            "instance": self.payload(kwargs["instance"]),
            "using": kwargs.get("using"),
        }
        if self.signal in ("pre_save", "post_save"):
            named["raw"] = bool(kwargs.get("raw", False))
            named["update_fields"] = kwargs.get("update_fields")
            if self.signal == "post_save":
                named["created"] = bool(kwargs.get("created", False))
        elif self.signal in ("pre_delete", "post_delete"):
            named["origin"] = _origin_label(kwargs.get("origin"))
        else:  # m2m_changed
            related = kwargs.get("model")
            named["action"] = kwargs.get("action")
            named["reverse"] = bool(kwargs.get("reverse", False))
            named["model"] = model_label(related) if related is not None else None
            named["pk_set"] = kwargs.get("pk_set")
            if "raw" in kwargs:  # Django 6.1+: changed while loading a fixture
                named["raw"] = bool(kwargs["raw"])
        return named


@dataclass(frozen=True, slots=True)
class RequestForward:
    """A Django receiver that publishes a request signal on the bus."""

    signal: str
    publish: Callable[[Signal, object, dict[str, object]], None]

    def __call__(self, sender: object, **kwargs: Any) -> None:
        named: dict[str, object] = {}
        if self.signal == "request_started":
            named["environ"] = request_environ(kwargs.get("environ") or {})
        self.publish(getattr(bus_signals, self.signal), sender, named)


def request_environ(environ: Mapping[str, Any]) -> dict[str, str]:
    """The few request facts a request_started event carries (no headers)."""
    found = {k: environ[k] for k in WSGI_KEYS if isinstance(environ.get(k), str)}
    for key, name in ASGI_KEYS.items():
        if isinstance(environ.get(key), str):
            found[name] = environ[key]
    query = environ.get("query_string")
    if isinstance(query, bytes):
        found["QUERY_STRING"] = query.decode("latin-1")
    return found


class Forwarder:
    """Connects the forwarding receivers that the settings ask for.

    ``connect()`` checks every model and field first and raises
    ``ImproperlyConfigured`` naming the setting before connecting anything.
    """

    def __init__(
        self,
        forward: Iterable[ForwardSpec] = (),
        requests: Iterable[str] = (),
        *,
        on_error: str = "raise",
        get_model: GetModel | None = None,
    ) -> None:
        self.forward = tuple(forward)
        self.requests = tuple(requests)
        self.on_error = on_error
        self._get_model = get_model
        self._connected: list[tuple[Any, Any, str]] = []

    def publish(self, signal: Signal, sender: object, named: dict[str, object]) -> None:
        """Publish one event; a failure raises, or is logged with ON_ERROR='log'."""
        try:
            signal.publish(sender, **named)
        except BusignalError:
            if self.on_error == "raise":
                raise
            logger.exception("could not forward %s from %s", signal.name, sender)

    def write_outbox(
        self, signal: Signal, sender: object, named: dict[str, object]
    ) -> None:
        """Write one event to the outbox, with the save's database connection.

        A database error propagates (it is the save's transaction); an event
        that cannot be encoded raises, or is logged with ON_ERROR='log'.
        """
        using = named.get("using")
        try:
            outbox.write(
                signal, sender, named, using if isinstance(using, str) else None
            )
        except BusignalError:
            if self.on_error == "raise":
                raise
            logger.exception("could not forward %s from %s", signal.name, sender)

    def connect(self) -> None:
        """Connect every forwarding receiver (or none, if a setting is wrong)."""
        plan = [c for spec in self.forward for c in self._plan_model(spec)]
        for name in self.requests:
            receiver = RequestForward(name, self.publish)
            plan.append((getattr(request_signals, name), receiver, None, name))
        for django_signal, receiver, sender, uid in plan:
            uid = f"busignal.forward:{uid}"
            django_signal.connect(receiver, sender=sender, weak=False, dispatch_uid=uid)
            self._connected.append((django_signal, sender, uid))

    def disconnect(self) -> None:
        """Disconnect what ``connect`` connected."""
        for django_signal, sender, uid in self._connected:
            django_signal.disconnect(sender=sender, dispatch_uid=uid)
        self._connected.clear()

    def _model(self, label: str) -> Any:
        get_model = self._get_model
        if get_model is None:
            from django.apps import apps

            get_model = apps.get_model
        try:
            return get_model(label)
        except (LookupError, ValueError) as exc:
            raise ImproperlyConfigured(
                f"BUSIGNAL['FORWARD'] names {label!r}, which is not an installed "
                f"model ({exc}); name models as 'app_label.ModelName'"
            ) from exc

    def _fields(self, model: Any, spec: ForwardSpec) -> tuple[Any, ...]:
        fields = []
        for name in spec.fields:
            if name == "pk":
                continue
            try:
                found = model._meta.get_field(name)
            except FieldDoesNotExist as exc:
                raise ImproperlyConfigured(
                    f"BUSIGNAL['FORWARD'][{spec.model!r}]['fields']: {spec.model} "
                    f"has no field {name!r}"
                ) from exc
            if not found.concrete or found.many_to_many:
                raise ImproperlyConfigured(
                    f"BUSIGNAL['FORWARD'][{spec.model!r}]['fields']: {name!r} is "
                    f"not a column of {spec.model}; forward m2m_changed for "
                    f"many-to-many changes"
                )
            fields.append(found)
        return tuple(fields)

    def _plan_model(self, spec: ForwardSpec) -> list[tuple[Any, Any, Any, str]]:
        model = self._model(spec.model)
        fields = self._fields(model, spec)
        plan = []
        for name in spec.signals:
            publish = self.write_outbox if spec.outbox else self.publish
            receiver = ModelForward(name, model, fields, spec.on_commit, publish)
            senders = [model] if name != "m2m_changed" else _through_models(model)
            if not senders:
                raise ImproperlyConfigured(
                    f"BUSIGNAL['FORWARD'][{spec.model!r}] forwards m2m_changed, "
                    f"but {spec.model} has no many-to-many relations"
                )
            for sender in senders:
                uid = f"{name}:{spec.model}:{model_label(sender)}"
                plan.append((getattr(model_signals, name), receiver, sender, uid))
        return plan


def _through_models(model: Any) -> list[Any]:
    """The intermediate models of a model's many-to-many relations, both ways."""
    through = [f.remote_field.through for f in model._meta.many_to_many]
    through += [r.through for r in model._meta.related_objects if r.many_to_many]
    return list(dict.fromkeys(through))
