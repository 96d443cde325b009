"""Percentiles, medians over rounds, and the targets busignal is held to.

Each round yields one figure per scenario and side; the reported figure is
the median over rounds, so one round disturbed by another process on a
shared machine does not move the result.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Figures", "Target", "percentile"]


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by nearest rank, of unsorted samples."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered)) - 1))
    return ordered[rank]


@dataclass
class Figures:
    """Per-round figures by (scenario, side), and raw latency samples for plots."""

    rounds: dict[tuple[str, str], list[float]] = field(
        default_factory=lambda: defaultdict(list)
    )
    samples: dict[tuple[str, str], list[float]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def add(self, scenario: str, side: str, value: float) -> None:
        self.rounds[scenario, side].append(value)

    def add_latencies(self, scenario: str, side: str, seconds: list[float]) -> None:
        """Record one round of round trips as p50/p90/p99 (ms) and keep the samples."""
        self.samples[scenario, side].extend(seconds)
        for q in (50, 90, 99):
            self.add(f"{scenario} p{q}", side, percentile(seconds, q) * 1000)

    def median(self, scenario: str, side: str) -> float | None:
        values = self.rounds.get((scenario, side))
        return statistics.median(values) if values else None


@dataclass(frozen=True, slots=True)
class Target:
    """One goal: ``value`` compared with ``limit`` (``<=`` or ``>=``)."""

    name: str
    value: float | None
    limit: float
    at_most: bool
    unit: str = "x"
    #: What the figure should be read beside, printed after the verdict.
    context: str = ""

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value <= self.limit if self.at_most else self.value >= self.limit

    def line(self) -> str:
        op = "<=" if self.at_most else ">="
        verdict = {True: "PASS", False: "MISS", None: "N/A "}[self.met]
        shown = "-" if self.value is None else f"{self.value:.2f}{self.unit}"
        line = f"{verdict}  {self.name}: {shown} (target {op} {self.limit}{self.unit})"
        return f"{line}; {self.context}" if self.context else line


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or zero."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator
