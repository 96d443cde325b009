"""Setting Django up in a ``busignal worker`` process (``--django-settings``)."""

from __future__ import annotations

import os
import sys
import traceback

from busignal.bus.bus import Bus
from busignal.bus.default import get_bus
from busignal.errors import ConfigurationError

__all__ = ["setup"]


def setup(settings_module: str) -> Bus | None:
    """Set DJANGO_SETTINGS_MODULE, run ``django.setup()``; return the default bus.

    Called before the receiver modules are imported, so they may use models.
    The current directory is importable, as with ``manage.py``. The bus is the
    one the settings configured (``BUSIGNAL``), else the one BUSIGNAL_URL
    names, else None.
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
    return get_bus()
