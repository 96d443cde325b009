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

Signed letters are re-signed. A signature binds an entry to its target
service and its sent-at time, and a worker refuses one older than
``max_age``; so replay checks the letter's signature against every
configured secret (ignoring its age: a letter may have died of it), then
signs it again for its service, now, with the current (first) secret. A
letter signed with a secret no longer configured, or forged, is refused
(:class:`UnverifiedLetter`) and nothing is replayed: keep a retired
secret second in the list until its letters are replayed or purged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from busignal.bus.bus import Bus
from busignal.bus.partitions import partition_counts
from busignal.errors import AmbiguousId, UnknownId, UnverifiedLetter
from busignal.wire.envelope import sign_fields, verify_fields
from busignal.wire.records import (
    DEAD_ATTEMPTS,
    DEAD_ENTRY,
    DEAD_REASON,
    DEAD_SERVICE,
    ORIGINAL_FIELDS,
    text,
)

__all__ = [
    "AmbiguousId",
    "DeadLetter",
    "UnknownId",
    "UnverifiedLetter",
    "dead_letter",
    "dead_partitions",
    "list_dead",
    "purge",
    "replay",
    "select",
]

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


def dead_letter(
    entry_id: bytes, fields: dict[bytes, bytes], partition: int = 0
) -> DeadLetter:
    attempts = text(fields.get(DEAD_ATTEMPTS))
    return DeadLetter(
        id=text(entry_id),
        entry=text(fields.get(DEAD_ENTRY)),
        service=text(fields.get(DEAD_SERVICE)),
        attempts=int(attempts) if attempts.isdigit() else 0,
        reason=text(fields.get(DEAD_REASON)),
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
            key = text(raw)
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
        dead_letter(entry_id, fields, partition)
        for partition, entries in zip(partitions, answers, strict=True)
        for entry_id, fields in entries
    ]
    return letters if count is None else letters[:count]


def select(
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
    skipped, and not counted. Signed letters are re-signed (see the module
    docstring); one that cannot be raises :class:`UnverifiedLetter` before
    anything is replayed.
    """
    letters = list_dead(bus, signal)
    if ids is not None:
        letters = select(signal, letters, ids)
    replays = _replay_fields(bus, signal, letters)
    new_ids: list[str] = []
    client: Any = bus.client
    with bus.transport.errors():
        for letter in letters:
            fields = replays[letter.ref]
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
                new_ids.append(text(new_id))
    return new_ids


def _replay_fields(
    bus: Bus, signal: str, letters: list[DeadLetter]
) -> dict[str, dict[bytes, bytes]]:
    """Each letter's entry to add again, by ref: addressed to its service and,
    if signed, re-signed; UnverifiedLetter for any that cannot be."""
    out: dict[str, dict[bytes, bytes]] = {}
    unsigned: list[str] = []
    invalid: list[str] = []
    for letter in letters:
        kept = {k: v for k, v in letter.fields.items() if k in ORIGINAL_FIELDS}
        fields = {k: v for k, v in kept.items() if k in (b"v", b"b")}
        if letter.service:
            fields[b"s"] = letter.service.encode()
        stream = bus.keys.events(signal, letter.partition)
        if bus.signer is None:
            if b"h" in kept:
                unsigned.append(letter.ref)
        elif verify_fields(kept, bus.signer, bus.keys.namespace, stream):
            sign_fields(fields, bus.signer, bus.keys.namespace, stream)
        else:
            invalid.append(letter.ref)
        out[letter.ref] = fields
    if unsigned:
        raise UnverifiedLetter(
            signal,
            unsigned,
            "signed, but this bus has no secret to check and re-sign them; "
            "replay with the workers' secret (BUSIGNAL_SECRET)",
        )
    if invalid:
        raise UnverifiedLetter(
            signal,
            invalid,
            "their signature holds under none of the configured secrets (forged, "
            "unsigned, or signed with a retired secret: add it after the current "
            "one to replay them, or purge them)",
        )
    return out


def purge(bus: Bus, signal: str, ids: list[str] | None = None) -> int:
    """Delete dead letters (all, or those ids); returns how many went.

    ``ids`` are as for :func:`replay`: every one must name a letter, or
    :class:`UnknownId` (or :class:`AmbiguousId`) is raised and nothing is
    deleted. Without ``ids``, every partition's dead stream is deleted.
    """
    if ids is not None:
        return _purge_ids(bus, signal, select(signal, list_dead(bus, signal), ids))
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
