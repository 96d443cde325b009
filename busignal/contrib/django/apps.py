"""The Django app config: bus from settings, forwarding, autodiscovery."""

from __future__ import annotations

import os

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import autodiscover_modules

import busignal
from busignal.bus.sources import resolve
from busignal.contrib.django import conf
from busignal.contrib.django.forward import Forwarder
from busignal.contrib.django.outbox import check_outbox_table
from busignal.errors import ConfigurationError

__all__ = ["BusignalConfig"]


class BusignalConfig(AppConfig):  # type: ignore[misc]  # Django is untyped
    """``busignal.contrib.django``: set up once the app registry is ready.

    ``ready()`` configures the default bus from settings, the environment
    filling in what they leave out (``busignal.bus.sources``; without any I/O),
    connects the forwarding receivers, registers the outbox table's system
    check, and imports each installed app's
    ``signals`` module so that its receivers are connected in every process,
    web and worker alike.
    """

    name = "busignal.contrib.django"
    label = "busignal"
    verbose_name = "busignal"
    forwarder: Forwarder | None = None

    def ready(self) -> None:
        config = conf.load(settings)
        try:
            # Settings first, the environment for what they leave out.
            resolved = resolve(None, config.source(), os.environ)
            if resolved is not None:
                busignal.configure(resolved.config.url, **resolved.options())
        except (ConfigurationError, TypeError) as exc:
            raise ImproperlyConfigured(f"BUSIGNAL: {exc}") from exc
        if (config.forward or config.requests) and busignal.get_bus() is None:
            raise ImproperlyConfigured(
                "BUSIGNAL['FORWARD'] or ['REQUESTS'] forwards signals, but no bus "
                "is configured: set BUSIGNAL['URL'] (or BUSIGNAL_URL)"
            )
        forwarder = Forwarder(config.forward, config.requests, on_error=config.on_error)
        forwarder.connect()
        self.forwarder = forwarder
        checks.register(check_outbox_table, "busignal")
        if config.autodiscover:
            autodiscover_modules("signals")
