"""A broadcast receiver: every process that imports this drops its cached copy.

``broadcast=True`` runs the receiver in every worker process instead of
once per service, which is what a process-local cache needs. Run it as
its own service (``busignal worker busignal.examples.cache --service
cache``) or import it alongside another service's module.
"""

from __future__ import annotations

import logging
from typing import Any

from busignal import receiver
from busignal.examples.signals import cache_invalidated

__all__ = ["invalidate", "local_cache"]

logger = logging.getLogger(__name__)

#: This process's cache; the example keeps it a plain dict.
local_cache: dict[str, object] = {}


@receiver(cache_invalidated, broadcast=True)
def invalidate(sender: Any, key: str, **kwargs: Any) -> bool:
    """Forget ``key`` in this process; True if it was cached here."""
    found = local_cache.pop(key, None) is not None
    logger.info("invalidated %r (was cached: %s)", key, found)
    return found
