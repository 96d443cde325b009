"""Service 'laggard': a slow receiver on ``faults_tick``, for trimming tests."""

from __future__ import annotations

import time
from typing import Any

from faults_common import client, entry_id, tick

from busignal import receiver


@receiver(tick)
def lag(sender: Any, **kwargs: Any) -> None:
    time.sleep(0.03)
    client().hincrby("faults:ledger:laggard", entry_id(), 1)
