"""What one service's receivers did with one event so far: ``Outcomes``.

While a failed receiver waits for its retry, the worker keeps a small hash
per (service, event) in the event's slot (``Keys.outcomes_of``): which
receivers succeeded, and for each failed one how many runs it had and when
its next run is due. A worker that runs the event again, itself or after
taking it over from a dead one, reads it back and runs only the receivers
that are due and have not succeeded. Fields::

    settled        deliveries of the entry that were settled (not crashes)
    r:RECEIVER_ID  b"ok", or b"RUNS DUE" (failed runs, due as a UNIX time)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["Outcomes"]

_SETTLED = b"settled"
_RECEIVER = b"r:"
_OK = b"ok"


@dataclass(slots=True)
class Outcomes:
    """One service's receivers' outcomes for one event (see the module)."""

    #: Deliveries of the entry that were settled; the rest crashed or stalled.
    settled: int = 0
    #: Receiver id -> failed runs so far, for receivers that have not succeeded.
    runs: dict[str, int] = field(default_factory=dict)
    #: Receiver id -> when its next run is due.
    due: dict[str, float] = field(default_factory=dict)
    #: Receivers that succeeded: never run again for this event.
    done: set[str] = field(default_factory=set)

    @classmethod
    def decode(cls, raw: Mapping[bytes, bytes]) -> Outcomes:
        """Read an HGETALL reply; unreadable fields are ignored (run again)."""
        outcomes = cls()
        for name, value in raw.items():
            if name == _SETTLED and value.isdigit():
                outcomes.settled = int(value)
            elif name.startswith(_RECEIVER):
                receiver_id = name[len(_RECEIVER) :].decode(errors="replace")
                outcomes._read(receiver_id, value)
        return outcomes

    def _read(self, receiver_id: str, value: bytes) -> None:
        if value == _OK:
            self.done.add(receiver_id)
            return
        runs, _, due = value.partition(b" ")
        try:
            self.runs[receiver_id] = int(runs)
            self.due[receiver_id] = float(due)
        except ValueError:
            self.runs.pop(receiver_id, None)

    def encode(self) -> dict[bytes, bytes]:
        """The fields to HSET (the whole record: one owner writes it)."""
        fields = {_SETTLED: str(self.settled).encode()}
        for receiver_id in self.done:
            fields[_RECEIVER + receiver_id.encode()] = _OK
        for receiver_id, runs in self.runs.items():
            due = repr(self.due.get(receiver_id, 0.0))
            fields[_RECEIVER + receiver_id.encode()] = f"{runs} {due}".encode()
        return fields

    def succeeded(self, receiver_id: str) -> None:
        self.done.add(receiver_id)
        self.runs.pop(receiver_id, None)
        self.due.pop(receiver_id, None)

    def failed(self, receiver_id: str, runs: int, due: float) -> None:
        self.runs[receiver_id] = runs
        self.due[receiver_id] = due

    def runnable(self, receiver_id: str, now: float) -> bool:
        """Whether to run this receiver on this delivery: not done, and due."""
        return receiver_id not in self.done and self.due.get(receiver_id, 0.0) <= now

    def waiting(self, receiver_ids: Iterable[str]) -> list[float]:
        """When the given receivers that have not succeeded are due next."""
        return [
            self.due.get(receiver_id, 0.0)
            for receiver_id in receiver_ids
            if receiver_id not in self.done
        ]
