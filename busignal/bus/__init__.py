"""The bus: where a distributed signal is sent and its replies gathered.

``Bus`` owns the clients of one URL and namespace; ``configure()`` and
``get_bus()`` keep the process's default. The plan of one send, the
collection of its replies and partitioning are the other parts.
"""

from __future__ import annotations

from busignal.bus.bus import Bus, BusConfig
from busignal.bus.default import configure, get_bus, reset_default

__all__ = ["Bus", "BusConfig", "configure", "get_bus", "reset_default"]
