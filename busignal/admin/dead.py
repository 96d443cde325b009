"""Dead letters: list, replay and purge the entries that failed past the limit.

A dead-letter entry keeps the original envelope fields (so a signature
stays valid) plus why it died, the stream entry id, the service and the
number of attempts. Replaying appends the envelope to the events stream
again, addressed to the service that failed it, so the services that
handled it the first time do not run it twice.

Dead letters are per partition (``keys.dead(name, k)``, in the slot of
partition k's events stream). Every function here covers every partition
of the signal: those its ``partitions`` set records (the largest count)
and, in case that set was lost, any ``{sig:NAME#k}`` dead stream a SCAN
finds. A replayed letter goes back to its own partition's events stream,
so the XDEL and the XADD share a slot and one script works on a cluster.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from busignal.bus.bus import Bus
from busignal.bus.partitions import partition_counts
from busignal.errors import AmbiguousId, UnknownId

__all__ = [
    "AmbiguousId",
    "DeadLetter",
    "UnknownId",
    "add_commands",
    "dead_partitions",
    "list_dead",
    "purge",
    "replay",
]

_ORIGINAL = (b"v", b"b", b"h")
_DEAD_SUFFIX = ":dead"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-letter entry of one partition of a signal."""

    id: str
    entry: str
    service: str
    attempts: int
    reason: str
    fields: dict[bytes, bytes]
    partition: int = 0

    @property
    def ref(self) -> str:
        """``PARTITION:ID``: names this letter across every partition."""
        return f"{self.partition}:{self.id}"

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "partition": self.partition,
            "entry": self.entry,
            "service": self.service,
            "attempts": self.attempts,
            "reason": self.reason,
        }


def _text(value: object) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _dead_letter(
    entry_id: bytes, fields: dict[bytes, bytes], partition: int = 0
) -> DeadLetter:
    attempts = _text(fields.get(b"attempts"))
    return DeadLetter(
        id=_text(entry_id),
        entry=_text(fields.get(b"entry")),
        service=_text(fields.get(b"service")),
        attempts=int(attempts) if attempts.isdigit() else 0,
        reason=_text(fields.get(b"reason")),
        fields=fields,
        partition=partition,
    )


def _glob_escape(text: str) -> str:
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


def dead_partitions(bus: Bus, signal: str) -> list[int]:
    """Every partition of ``signal`` that may hold dead letters, ascending.

    0..N-1 for the largest count its ``partitions`` set records, plus any
    partition whose dead stream a SCAN finds (the set may have been lost).
    """
    client: Any = bus.client
    keys = bus.keys
    with bus.transport.errors():
        found = set(range(partition_counts(client.smembers(keys.partitions(signal)))))
        prefix = f"{keys.namespace}:{keys.tag(signal)[:-1]}"  # "NS:{sig:NAME"
        pattern = _glob_escape(prefix) + "#*}" + _DEAD_SUFFIX
        for raw in client.scan_iter(match=pattern, count=500):
            key = _text(raw)
            events = key[: -len(_DEAD_SUFFIX)] + ":events"
            try:
                name, partition = keys.partition_of(events)
            except ValueError:
                continue
            if name == signal:
                found.add(partition)
    return sorted(found)


def list_dead(bus: Bus, signal: str, *, count: int | None = None) -> list[DeadLetter]:
    """The dead letters of every partition of ``signal``.

    Partition by partition (0 first), oldest first in each; ``count``
    caps the total.
    """
    partitions = dead_partitions(bus, signal)
    with bus.transport.errors():
        pipe: Any = bus.client.pipeline(transaction=False)
        for partition in partitions:
            pipe.xrange(bus.keys.dead(signal, partition), count=count)
        answers: list[Any] = pipe.execute()
    letters = [
        _dead_letter(entry_id, fields, partition)
        for partition, entries in zip(partitions, answers, strict=True)
        for entry_id, fields in entries
    ]
    return letters if count is None else letters[:count]


def _select(
    signal: str, letters: list[DeadLetter], ids: Iterable[str]
) -> list[DeadLetter]:
    """The letters ``ids`` name: ``PARTITION:ID`` or a plain ID of any partition.

    Every id must name a letter (else :class:`UnknownId`, listing those that
    do not) and a plain ID must be in one partition only (else
    :class:`AmbiguousId`): a caller acts on all the letters asked for, or on
    none.
    """
    by_ref = {d.ref: d for d in letters}
    by_id: dict[str, list[DeadLetter]] = {}
    for letter in letters:
        by_id.setdefault(letter.id, []).append(letter)
    chosen: dict[str, DeadLetter] = {}
    unknown: list[str] = []
    for wanted in ids:
        wanted = wanted.strip()
        if ":" in wanted:
            partition, _, entry_id = wanted.partition(":")
            ref = f"{int(partition)}:{entry_id}" if partition.isdigit() else wanted
            matches = [by_ref[ref]] if ref in by_ref else []
        else:
            matches = by_id.get(wanted, [])
        if len(matches) > 1:
            refs = ", ".join(d.ref for d in matches)
            raise AmbiguousId(
                f"dead letter {wanted!r} is in {len(matches)} partitions ({refs}): "
                "name it as PARTITION:ID"
            )
        if not matches:
            unknown.append(wanted)
        for letter in matches:
            chosen[letter.ref] = letter
    if unknown:
        raise UnknownId(signal, unknown)
    return [d for d in letters if d.ref in chosen]


#: KEYS: the dead-letter stream, the events stream (one partition, one slot).
#: ARGV: the letter's id, then the field/value pairs to add.
#: The letter is added back only if this call removed it: of two replays
#: running at once, one moves it and the other finds it gone.
MOVE_LETTER = """
if redis.call('XDEL', KEYS[1], ARGV[1]) == 1 then
  return redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
end
return false
"""


def replay(bus: Bus, signal: str, ids: list[str] | None = None) -> list[str]:
    """Send dead letters (all, or those ids) to their service again; remove them.

    Each goes back to its own partition's events stream. ``ids`` are
    ``PARTITION:ID`` or plain IDs (searched in every partition; one found
    in several raises :class:`AmbiguousId`, one found nowhere
    :class:`UnknownId`, before anything is replayed).
    Returns the new events-stream entry ids. Each letter is moved by one
    script (``MOVE_LETTER``): removed, then added only if the removal took
    it, so a crash cannot both keep and replay it, and two replays running
    at once add it once. A letter another replay (or a purge) took first is
    skipped, and not counted.
    """
    letters = list_dead(bus, signal)
    if ids is not None:
        letters = _select(signal, letters, ids)
    new_ids: list[str] = []
    client: Any = bus.client
    with bus.transport.errors():
        for letter in letters:
            fields = {k: v for k, v in letter.fields.items() if k in _ORIGINAL}
            if letter.service:
                fields[b"s"] = letter.service.encode()
            flat = [item for pair in fields.items() for item in pair]
            new_id = client.execute_command(
                "EVAL",
                MOVE_LETTER,
                2,
                bus.keys.dead(signal, letter.partition),
                bus.keys.events(signal, letter.partition),
                letter.id,
                *flat,
            )
            if new_id is not None:
                new_ids.append(_text(new_id))
    return new_ids


def purge(bus: Bus, signal: str, ids: list[str] | None = None) -> int:
    """Delete dead letters (all, or those ids); returns how many went.

    ``ids`` are as for :func:`replay`: every one must name a letter, or
    :class:`UnknownId` (or :class:`AmbiguousId`) is raised and nothing is
    deleted. Without ``ids``, every partition's dead stream is deleted.
    """
    if ids is not None:
        return _purge_ids(bus, signal, _select(signal, list_dead(bus, signal), ids))
    total = 0
    with bus.transport.errors():
        for partition in dead_partitions(bus, signal):
            key = bus.keys.dead(signal, partition)
            pipe = bus.client.pipeline(transaction=True)  # one key: one slot
            pipe.xlen(key)
            pipe.delete(key)
            count, _ = pipe.execute()
            total += int(count)
    return total


def _purge_ids(bus: Bus, signal: str, letters: list[DeadLetter]) -> int:
    """XDEL the letters, one command per partition (each its own key and slot).

    Counts what XDEL removed: a letter replayed meanwhile is not counted.
    """
    by_partition: dict[int, list[str]] = {}
    for letter in letters:
        by_partition.setdefault(letter.partition, []).append(letter.id)
    total = 0
    with bus.transport.errors():
        for partition, entry_ids in by_partition.items():
            key = bus.keys.dead(signal, partition)
            total += int(bus.client.xdel(key, *entry_ids))
    return total


def _list(args: argparse.Namespace, bus: Bus) -> int:
    letters = list_dead(bus, args.signal)
    # PARTITION:ID as soon as any partition but 0 has letters: a plain ID
    # could then name letters of several partitions
    partitioned = any(d.partition for d in letters)
    if args.id:
        letters = _select(args.signal, letters, args.id)
    if args.json:
        print(json.dumps([d.as_dict() for d in letters], indent=2))
    elif not letters:
        # on stderr, so that a pipe counting the letters reads none
        namespace = bus.config.namespace
        print(
            f"no dead letters for {args.signal!r} in namespace {namespace!r}",
            file=sys.stderr,
        )
    for d in [] if args.json else letters:
        where = d.ref if partitioned else d.id
        print(f"{where}  service={d.service}  attempts={d.attempts}  {d.reason}")
    return 0


def _replay(args: argparse.Namespace, bus: Bus) -> int:
    new = replay(bus, args.signal, None if args.all else args.id)
    print(f"replayed {len(new)} dead letter(s) of {args.signal!r}")
    return 0


def _purge(args: argparse.Namespace, bus: Bus) -> int:
    count = purge(bus, args.signal, None if args.all else args.id)
    print(f"purged {count} dead letter(s) of {args.signal!r}")
    return 0


def _run(
    args: argparse.Namespace,
    make_bus: Callable[..., Bus],
    action: Callable[[argparse.Namespace, Bus], int],
) -> int:
    bus = make_bus(args.url, args.namespace)
    try:
        return action(args, bus)
    except AmbiguousId as exc:
        print(f"busignal: {exc}", file=sys.stderr)
        return 2
    except UnknownId as exc:
        done = {"replay": "; nothing was replayed", "purge": "; nothing was purged"}
        print(f"busignal: {exc}{done.get(args.action, '')}", file=sys.stderr)
        return 1
    finally:
        bus.close()


_ID_HELP = "a plain ID is looked up in every partition"


def add_commands(commands: Any, make_bus: Callable[..., Bus]) -> None:
    """Add ``busignal dead list|replay|purge SIGNAL`` to the CLI.

    ``replay`` and ``purge`` need ``--id`` (repeatable) or ``--all``:
    which letters go is never left to a default.
    """
    dead = commands.add_parser(
        "dead",
        help="list, replay or purge dead letters",
        description="Dead letters: events that failed past --max-deliveries, "
        "or that a worker could not read. Exit codes: 0 done; 1 an --id names "
        "no letter (nothing is changed) or Redis is unreachable; 2 bad usage.",
    )
    actions = dead.add_subparsers(dest="action", required=True, metavar="ACTION")
    helps = {
        "list": ("list the dead letters", "show only this letter"),
        "replay": ("send dead letters to their service again", "replay this letter"),
        "purge": ("delete dead letters", "delete this letter"),
    }
    for name, run in (("list", _list), ("replay", _replay), ("purge", _purge)):
        summary, id_help = helps[name]
        action = actions.add_parser(name, help=summary, description=summary + ".")
        action.add_argument("signal", help="signal name")
        action.add_argument("--url", help="Redis URL (default: BUSIGNAL_URL)")
        action.add_argument("--namespace", help="key namespace (default: busignal)")
        which = action.add_mutually_exclusive_group(required=name != "list")
        which.add_argument(
            "--id",
            action="append",
            metavar="[PARTITION:]ID",
            help=f"{id_help} (repeatable); {_ID_HELP}",
        )
        if name == "list":
            action.add_argument("--json", action="store_true", help="list as JSON")
        else:
            which.add_argument(
                "--all", action="store_true", help=f"{name} every dead letter"
            )
        action.set_defaults(run=lambda args, run=run: _run(args, make_bus, run))
