"""busignal: Django's signal dispatcher, made distributed over Redis streams.

Without a bus, ``Signal`` behaves exactly like ``django.dispatch.Signal``.
With one (``busignal.configure(url=...)`` or ``BUSIGNAL_URL``), a named
signal's ``send`` goes through a Redis stream to ``busignal worker``
processes, and their receivers' results come back.
"""

from __future__ import annotations

from importlib import metadata as _metadata

from busignal.bus.bus import Bus
from busignal.bus.default import configure, get_bus
from busignal.dispatch.retry import Retry
from busignal.dispatch.signal import Signal, receiver
from busignal.dispatch.view import SignalView
from busignal.errors import (
    BusignalError,
    BusUnavailable,
    ConfigurationError,
    RemoteError,
    SerializationError,
    SignalTimeout,
)
from busignal.wire.codec import register as register_codec
from busignal.wire.remote import RemoteReceiver, register_exception
from busignal.worker.delivery import Delivery, current_delivery

__all__ = [
    "Bus",
    "BusUnavailable",
    "BusignalError",
    "ConfigurationError",
    "Delivery",
    "RemoteError",
    "RemoteReceiver",
    "Retry",
    "SerializationError",
    "Signal",
    "SignalTimeout",
    "SignalView",
    "configure",
    "current_delivery",
    "get_bus",
    "receiver",
    "register_codec",
    "register_exception",
]

try:  # the version is written once, in pyproject.toml
    __version__ = _metadata.version("busignal")
except _metadata.PackageNotFoundError:  # a checkout on sys.path, never installed
    __version__ = "0+unknown"
