"""Service 'faults': a receiver that fails once, then waits for a gate.

For the take-over test: the first worker fails the entry (a retry is
scheduled), stalls, and a second worker takes the entry over and holds it
at the gate. Every attempt is listed under ``faults:tries:<message id>``
as ``attempt|pid``; every completed run counts in the faults ledger.
"""

from __future__ import annotations

import os
from typing import Any

from faults_common import client, entry_id
from faults_receivers import ledger

from busignal import Signal, receiver
from busignal.worker.delivery import current_delivery

flaky = Signal("faults_flaky")


@receiver(flaky)
def on_flaky(sender: Any, **kwargs: Any) -> None:
    delivery = current_delivery.get()
    assert delivery is not None
    client().rpush(
        f"faults:tries:{delivery.message_id}", f"{delivery.attempt}|{os.getpid()}"
    )
    if delivery.attempt == 1:
        raise RuntimeError("fails the first time, on purpose")
    client().blpop([f"faults:gate:{entry_id()}"], timeout=30)
    ledger()
