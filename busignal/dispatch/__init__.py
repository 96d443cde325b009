"""The in-process dispatcher: ``Signal`` and ``receiver``, Django's contract.

``Signal`` is also the door to the bus: a named signal with a bus sends
through it. The per-call view (``signal.using(...)``) and the async
dispatch of receivers live here too.
"""

from __future__ import annotations

from busignal.dispatch.signal import Signal, receiver
from busignal.dispatch.view import SignalView

__all__ = ["Signal", "SignalView", "receiver"]
