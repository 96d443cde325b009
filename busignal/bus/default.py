"""The process's default bus: ``configure()``, ``get_bus()``.

Named signals without a bus of their own send over the default bus. It is
the one ``configure()`` set, else the one ``BUSIGNAL_URL`` names, read
once, lazily, by ``Bus.from_env``.
"""

from __future__ import annotations

import threading
from typing import Unpack

from busignal.bus.bus import Bus
from busignal.bus.options import BusOptions

__all__ = ["configure", "get_bus", "reset_default"]

_default: Bus | None = None
_default_from_env = True
_default_lock = threading.Lock()


def configure(url: str | None = None, **options: Unpack[BusOptions]) -> Bus | None:
    """Set (or with no URL, clear) the process's default bus and return it.

    Named signals without a bus of their own are distributed over the
    default bus. ``configure()`` with no URL makes every signal in-process
    again and stops ``BUSIGNAL_URL`` from being read.
    """
    global _default, _default_from_env
    with _default_lock:
        old = _default
        _default = Bus(url, **options) if url else None
        _default_from_env = False
    if old is not None:
        old.close()
    return _default


def get_bus() -> Bus | None:
    """The default bus: the configured one, else the one BUSIGNAL_URL names."""
    global _default, _default_from_env
    if _default_from_env:
        with _default_lock:
            if _default_from_env:
                _default = Bus.from_env()
                _default_from_env = False
    return _default


def reset_default() -> None:
    """Forget the default bus so that BUSIGNAL_URL is read again (for tests)."""
    global _default, _default_from_env
    with _default_lock:
        _default, _default_from_env = None, True
