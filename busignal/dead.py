"""Dead letters: list, replay and purge the entries that failed past the limit.

A dead-letter entry keeps the original envelope fields (so a signature
stays valid) plus why it died, the stream entry id, the service and the
number of attempts. Replaying appends the envelope to the events stream
again, addressed to the service that failed it, so the services that
handled it the first time do not run it twice.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from busignal.bus import Bus

__all__ = ["DeadLetter", "add_commands", "list_dead", "purge", "replay"]

_ORIGINAL = (b"v", b"b", b"h")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-letter entry."""

    id: str
    entry: str
    service: str
    attempts: int
    reason: str
    fields: dict[bytes, bytes]

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "entry": self.entry,
            "service": self.service,
            "attempts": self.attempts,
            "reason": self.reason,
        }


def _text(value: bytes | None) -> str:
    return value.decode(errors="replace") if value is not None else ""


def _dead_letter(entry_id: bytes, fields: dict[bytes, bytes]) -> DeadLetter:
    attempts = _text(fields.get(b"attempts"))
    return DeadLetter(
        id=_text(entry_id),
        entry=_text(fields.get(b"entry")),
        service=_text(fields.get(b"service")),
        attempts=int(attempts) if attempts.isdigit() else 0,
        reason=_text(fields.get(b"reason")),
        fields=fields,
    )


def list_dead(bus: Bus, signal: str, *, count: int | None = None) -> list[DeadLetter]:
    """The dead letters of ``signal``, oldest first."""
    with bus.transport.errors():
        entries: list[Any] = bus.client.xrange(bus.keys.dead(signal), count=count)  # type: ignore[assignment]  # sync client: a list
    return [_dead_letter(i, f) for i, f in entries]


def replay(bus: Bus, signal: str, ids: list[str] | None = None) -> list[str]:
    """Send dead letters (all, or those ids) to their service again; remove them.

    Returns the new events-stream entry ids. The entry and its removal
    happen in one MULTI, so a crash cannot both keep and replay it.
    """
    wanted = None if ids is None else set(ids)
    letters = [d for d in list_dead(bus, signal) if wanted is None or d.id in wanted]
    new_ids: list[str] = []
    with bus.transport.errors():
        for letter in letters:
            fields = {k: v for k, v in letter.fields.items() if k in _ORIGINAL}
            if letter.service:
                fields[b"s"] = letter.service.encode()
            pipe = bus.client.pipeline(transaction=True)
            pipe.xadd(bus.keys.events(signal), fields)  # type: ignore[arg-type]  # bytes fields are fine
            pipe.xdel(bus.keys.dead(signal), letter.id)
            new_id, _ = pipe.execute()
            new_ids.append(_text(new_id))
    return new_ids


def purge(bus: Bus, signal: str) -> int:
    """Delete every dead letter of ``signal``; returns how many there were."""
    with bus.transport.errors():
        pipe = bus.client.pipeline(transaction=True)
        pipe.xlen(bus.keys.dead(signal))
        pipe.delete(bus.keys.dead(signal))
        count, _ = pipe.execute()
    return int(count)


def _run(args: argparse.Namespace, make_bus: Callable[..., Bus]) -> int:
    bus = make_bus(args.url, args.namespace)
    if args.action == "list":
        letters = list_dead(bus, args.signal)
        if args.json:
            print(json.dumps([d.as_dict() for d in letters], indent=2))
        for d in [] if args.json else letters:
            print(f"{d.id}  service={d.service}  attempts={d.attempts}  {d.reason}")
        return 0
    if args.action == "replay":
        if not args.all and not args.id:
            print("busignal: dead replay needs --id ID (repeatable) or --all")
            return 2
        new = replay(bus, args.signal, None if args.all else args.id)
        print(f"replayed {len(new)} dead letter(s) of {args.signal!r}")
        return 0
    print(f"purged {purge(bus, args.signal)} dead letter(s) of {args.signal!r}")
    return 0


def add_commands(commands: Any, make_bus: Callable[..., Bus]) -> None:
    """Add ``busignal dead list|replay|purge SIGNAL`` to the CLI."""
    dead = commands.add_parser("dead", help="list, replay or purge dead letters")
    dead.add_argument("action", choices=("list", "replay", "purge"))
    dead.add_argument("signal", help="signal name")
    dead.add_argument("--url", help="Redis URL (default: BUSIGNAL_URL)")
    dead.add_argument("--namespace", help="key namespace (default: busignal)")
    dead.add_argument("--id", action="append", help="replay this entry (repeatable)")
    dead.add_argument("--all", action="store_true", help="replay every dead letter")
    dead.add_argument("--json", action="store_true", help="list as JSON")
    dead.set_defaults(run=lambda args: _run(args, make_bus))
