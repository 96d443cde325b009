"""What Django outbox relays report of their table, for ``busignal inspect``.

The outbox table is in the application's database, which ``busignal
inspect`` cannot read; each relay pass leaves, in the namespace's outbox
hash (``Keys.outbox``), one report per database: how many rows wait, when
the oldest was written, how many are dead, and when it looked. Inspect
shows the oldest row's age as of now and how old the report is: a report
that stops getting younger means no relay is running.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["OutboxInfo", "encode", "parse"]


@dataclass(frozen=True, slots=True)
class OutboxInfo:
    """One database's outbox, as a relay last saw it."""

    database: str
    waiting: int
    dead: int
    oldest_age: float | None  # seconds, as of now; None when none waits
    reported_age: float  # seconds since the relay looked
    relay: str


def encode(waiting: int, dead: int, oldest: float | None, at: float, relay: str) -> str:
    """A relay's report (``oldest`` and ``at`` are Unix times)."""
    report = {"waiting": waiting, "dead": dead, "oldest": oldest, "at": at}
    return json.dumps({**report, "relay": relay})


def parse(reports: Mapping[Any, Any], now: float) -> list[OutboxInfo]:
    """The reports in the outbox hash, by database; unreadable ones left out."""
    found = []
    for database, raw in reports.items():
        try:
            report = json.loads(raw)
            oldest = report["oldest"]
            found.append(
                OutboxInfo(
                    database=_text(database),
                    waiting=int(report["waiting"]),
                    dead=int(report["dead"]),
                    oldest_age=None if oldest is None else max(0.0, now - oldest),
                    reported_age=max(0.0, now - float(report["at"])),
                    relay=str(report["relay"]),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue
    return sorted(found, key=lambda info: info.database)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
