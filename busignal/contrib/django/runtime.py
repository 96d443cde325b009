"""Setting Django up in a ``busignal worker`` process (``--django-settings``)."""

from __future__ import annotations

import os
import sys
import traceback

from busignal.bus.sources import Source
from busignal.errors import ConfigurationError

__all__ = ["setup"]


def setup(settings_module: str) -> Source:
    """Set DJANGO_SETTINGS_MODULE, run ``django.setup()``; return the bus settings.

    Called before the receiver modules are imported, so they may use models.
    The current directory is importable, as with ``manage.py``. The worker
    resolves its bus from what the settings give (``BUSIGNAL`` or
    ``BUSIGNAL_URL``), its own options and the environment, option by
    option (``busignal.bus.sources``).
    """
    try:
        import django
    except ImportError as exc:
        raise ConfigurationError(
            "--django-settings needs Django: pip install 'busignal[django]'"
        ) from exc
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        django.setup()
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(exc)).strip()
        raise ConfigurationError(
            f"cannot set up Django with settings {settings_module!r}: {detail}"
        ) from exc
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    from busignal.contrib.django import conf

    try:
        return conf.load(settings).source()
    except ImproperlyConfigured as exc:
        raise ConfigurationError(
            f"bad busignal settings in {settings_module!r}: {exc}"
        ) from exc
