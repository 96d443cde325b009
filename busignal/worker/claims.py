"""Claiming stream entries only from the consumer that holds them.

A worker claims entries for three reasons: its own retries and leases
(XCLAIM with min-idle 0), and taking over what a dead or stalled consumer
held. Between looking at who holds an entry and claiming it, another
worker may take it over; a plain XCLAIM would then take it back from a
live worker, and both would run it. ``CLAIM_HELD`` checks the holder and
claims in one script.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from busignal.wire.records import text

__all__ = [
    "CLAIM_HELD",
    "Claimer",
    "claim_held",
    "delivery_counts_of",
    "entry_id_key",
    "owners_of",
]

# KEYS: the stream. ARGV: group, claiming consumer, min idle (ms), "1" for
# JUSTID, then pairs of entry id and the consumer it must still be pending
# for. One script, so that "who holds it" and the claim are one step: an
# entry another worker took over since it was looked at is left alone (a
# plain XCLAIM with min-idle 0 would take it back, and both would run it).
CLAIM_HELD = """
local out = {}
for i = 5, #ARGV, 2 do
  local id, owner = ARGV[i], ARGV[i + 1]
  local held = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if held[1] and held[1][2] == owner then
    local got
    if ARGV[4] == '1' then
      got = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], id, 'JUSTID')
    else
      got = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], id)
    end
    for _, entry in ipairs(got) do out[#out + 1] = entry end
  end
end
return out
"""


@dataclass(frozen=True, slots=True)
class Claimer:
    """Who claims: an asyncio client, the service (group) and this consumer."""

    client: Any
    group: str
    consumer: str


async def claim_held(
    claimer: Claimer,
    stream: str,
    owners: Mapping[str, str],
    min_idle: int,
    justid: bool,
) -> list[tuple[str, dict[bytes, bytes] | None]]:
    """Claim each entry of ``owners`` still pending for the consumer it names.

    ``owners`` maps entry id -> the consumer it must be pending for (this
    worker's own name for its retries and leases). Returns the claimed
    entries as ``(id, fields)``; fields are None with ``justid``, and for an
    entry deleted from the stream meanwhile.
    """
    if not owners:
        return []
    flat = [item for pair in owners.items() for item in pair]
    raw = await claimer.client.execute_command(
        "EVAL", CLAIM_HELD, 1, stream,
        claimer.group, claimer.consumer, min_idle, int(justid), *flat,
    )  # fmt: skip
    return [_claimed(item) for item in raw or () if item]


def _claimed(item: Any) -> tuple[str, dict[bytes, bytes] | None]:
    """One entry of ``CLAIM_HELD``'s answer: an id (JUSTID) or [id, [f, v, ...]]."""
    if not isinstance(item, list):
        return _text(item), None
    entry_id, flat = item
    if not flat:
        return _text(entry_id), None
    return _text(entry_id), dict(zip(flat[::2], flat[1::2], strict=True))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def delivery_counts_of(pending: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Entry id -> times delivered, from XPENDING's extended form."""
    return {text(p["message_id"]): int(p["times_delivered"]) for p in pending}


def owners_of(pending: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Entry id -> the consumer holding it, from XPENDING's extended form."""
    return {text(p["message_id"]): text(p["consumer"]) for p in pending}


def entry_id_key(entry_id: str) -> tuple[int, int]:
    """An entry id as numbers, to sort ids as Redis does."""
    millis, _, sequence = entry_id.partition("-")
    return int(millis), int(sequence or 0)
