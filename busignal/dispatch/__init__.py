"""The in-process dispatcher: ``Signal`` and ``receiver``, Django's contract.

``Signal`` (``signal``) is the facade: its connections are kept by
``registry``, called in this process by ``local`` (async plumbing in
``concurrency``), and sent over a bus by the per-call view
(``signal.using(...)``, ``view``), which sees its signal only through the
``ViewedSignal`` protocol. ``types`` holds the aliases they share, so that
nothing imports back into ``signal``.
"""

from __future__ import annotations

from busignal.dispatch.signal import Signal, receiver
from busignal.dispatch.view import SignalView

__all__ = ["Signal", "SignalView", "receiver"]
