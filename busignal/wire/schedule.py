"""Scheduled stream entries: stored now, added to a stream when due.

A scheduled entry is a stream entry's fields kept aside until its due
time, in two keys of the stream's slot (``Keys.scheduled`` and
``Keys.scheduled_data``): a sorted set of id -> due time in milliseconds,
and a hash of id -> the fields, packed as netstrings (``len:bytes``, one
per field name and value) so that a Lua script can unpack them without
cmsgpack. The fields are stored exactly as encoded, signature included:
moving an entry never re-encodes it.

``MOVE_DUE`` adds every due entry to its destination stream and forgets
it, in one script: Redis runs scripts one at a time, so when two workers
move at once each entry is added by exactly one of them. Nothing here
knows what the entries are: delayed events use it with the signal's own
events stream as destination, and any other "add this later" can use it
with another pair of keys and another destination in the same slot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "CANCEL",
    "MOVE_DUE",
    "SCHEDULE",
    "pack_fields",
    "schedule_command",
    "unpack_fields",
]

# KEYS: the sorted set, the data hash. ARGV: due (ms), id, packed fields,
# repeated. Adds every entry or (on a bad argument) none.
SCHEDULE = """
for i = 1, #ARGV, 3 do
  redis.call('HSET', KEYS[2], ARGV[i + 1], ARGV[i + 2])
  redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1])
end
return #ARGV / 3
"""

# KEYS: the sorted set, the data hash, the destination stream. ARGV: now
# (ms), the most entries to move. Returns how many were moved. An id whose
# data is gone (cancelled between two looks) is just forgotten.
MOVE_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local moved = 0
for _, id in ipairs(ids) do
  local packed = redis.call('HGET', KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
  if packed then
    redis.call('HDEL', KEYS[2], id)
    local fields, i = {}, 1
    while i <= #packed do
      local colon = string.find(packed, ':', i, true)
      local n = tonumber(string.sub(packed, i, colon - 1))
      fields[#fields + 1] = string.sub(packed, colon + 1, colon + n)
      i = colon + n + 1
    end
    redis.call('XADD', KEYS[3], '*', unpack(fields))
    moved = moved + 1
  end
end
return moved
"""

# KEYS: the sorted set, the data hash. ARGV: ids. Returns the ids removed.
CANCEL = """
local removed = {}
for _, id in ipairs(ARGV) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    redis.call('HDEL', KEYS[2], id)
    removed[#removed + 1] = id
  end
end
return removed
"""


def pack_fields(fields: Mapping[bytes, bytes]) -> bytes:
    """Stream fields as netstrings: name and value, each ``len:bytes``."""
    parts: list[bytes] = []
    for name, value in fields.items():
        parts += [b"%d:" % len(name), name, b"%d:" % len(value), value]
    return b"".join(parts)


def unpack_fields(packed: bytes) -> dict[bytes, bytes]:
    """The inverse of :func:`pack_fields`; ValueError for anything malformed."""
    items: list[bytes] = []
    index = 0
    while index < len(packed):
        colon = packed.index(b":", index)
        length = int(packed[index:colon])
        items.append(packed[colon + 1 : colon + 1 + length])
        index = colon + 1 + length
    if index != len(packed) or len(items) % 2:
        raise ValueError("truncated scheduled entry")
    return dict(zip(items[::2], items[1::2], strict=True))


def schedule_command(
    zset: str, data: str, entries: list[tuple[int, str, bytes]]
) -> tuple[Any, ...]:
    """The EVAL that schedules ``(due_ms, id, packed)`` entries in one slot."""
    flat = [item for entry in entries for item in entry]
    return ("EVAL", SCHEDULE, 2, zset, data, *flat)
