"""Where each service's consumer group stands, so a lost group comes back there.

A consumer group is a service's place in a stream. Destroyed (by an
operator, a ``FLUSHALL`` of the wrong database, a restore from an old
backup), it used to be recreated at ``0``, re-running everything still in
the stream, while the events trimmed meanwhile were silently lost.

So every worker records, with its acks, the id up to which its group has
acknowledged everything (``Keys.groups``: service -> id, in the stream's
slot): the entry before its oldest pending entry, or its last-delivered id
when nothing is pending. A group is created through ``CREATE_GROUP``, which

* leaves an existing group alone;
* recreates a recorded group at its recorded id, unless entries after that
  id were deleted from the stream meanwhile (they are lost: the caller is
  told, and decides);
* creates a new group at the start asked for (``$`` or ``0``), and records
  where it starts; or, with no start, reports that it does not know where
  the group stood.

Entries acknowledged out of order above the record (another worker's
later batch while an earlier one ran) run again after a recreation: at
least once, as after any failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from busignal.errors import GroupLost

__all__ = [
    "ACK_AND_RECORD",
    "CREATE_GROUP",
    "Created",
    "create_args",
    "created",
    "group_lost",
]

# Lua helpers shared by the scripts: a field of a flat XINFO reply, a group
# of XINFO GROUPS by name, and stream id order.
_LUA_HELPERS = """
local function field(flat, name)
  for i = 1, #flat, 2 do
    if flat[i] == name then return flat[i + 1] end
  end
  return nil
end
local function group_info(stream, name)
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    if field(g, 'name') == name then return g end
  end
  return nil
end
local function after(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  ams, aseq, bms, bseq = tonumber(ams), tonumber(aseq), tonumber(bms), tonumber(bseq)
  return ams > bms or (ams == bms and aseq > bseq)
end
"""

# KEYS: events stream, groups hash. ARGV: group, then the ids to ack.
# Acks, then records where the group stands: the id before its oldest
# pending entry, or its last-delivered id when nothing is pending.
ACK_AND_RECORD = (
    _LUA_HELPERS
    + """
local acked = redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
local summary = redis.call('XPENDING', KEYS[1], ARGV[1])
local mark
if tonumber(summary[1]) == 0 then
  local info = group_info(KEYS[1], ARGV[1])
  if info then mark = field(info, 'last-delivered-id') end
else
  local ms, seq = string.match(summary[2], '^(%d+)-(%d+)$')
  if seq ~= '0' then
    mark = ms .. '-' .. string.format('%.0f', tonumber(seq) - 1)
  elseif ms ~= '0' then
    mark = string.format('%.0f', tonumber(ms) - 1) .. '-18446744073709551615'
  end
end
if mark then redis.call('HSET', KEYS[2], ARGV[1], mark) end
return acked
"""
)

# KEYS: events stream, groups hash. ARGV: group; the start of a group never
# recorded ("$", "0", or "" to create none); "1" to ignore the record.
# Returns {kind, id, deleted}: kind is exists, created, restored, lost
# (entries after the record were deleted: the group is not created) or
# unknown (no record and no start: not created).
CREATE_GROUP = (
    _LUA_HELPERS
    + """
local exists = redis.call('EXISTS', KEYS[1]) == 1
if exists then
  local info = group_info(KEYS[1], ARGV[1])
  if info then return {'exists', field(info, 'last-delivered-id')} end
end
local mark = redis.call('HGET', KEYS[2], ARGV[1])
if mark and ARGV[3] ~= '1' then
  if exists then
    local stream = redis.call('XINFO', 'STREAM', KEYS[1])
    local deleted = field(stream, 'max-deleted-entry-id')
    if deleted and after(deleted, mark) then return {'lost', mark, deleted} end
  end
  redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], mark, 'MKSTREAM')
  return {'restored', mark}
end
if ARGV[2] == '' then return {'unknown'} end
redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], ARGV[2], 'MKSTREAM')
local start = field(group_info(KEYS[1], ARGV[1]), 'last-delivered-id')
redis.call('HSET', KEYS[2], ARGV[1], start)
return {'created', start}
"""
)


@dataclass(frozen=True, slots=True)
class Created:
    """What ``CREATE_GROUP`` did for one group.

    ``kind``: ``exists``, ``created``, ``restored``, ``lost`` or
    ``unknown``. ``at`` is where the group stands (or, for ``lost``, stood);
    ``deleted`` the newest entry deleted from the stream (``lost`` only).
    """

    kind: str
    at: str = ""
    deleted: str = ""

    @property
    def made(self) -> bool:
        """True when the group now exists."""
        return self.kind in ("exists", "created", "restored")


def created(reply: Any) -> Created:
    """``CREATE_GROUP``'s reply as a ``Created``."""
    parts = [p.decode() if isinstance(p, bytes) else str(p) for p in reply]
    return Created(*parts[:3])


def create_args(
    stream: str, groups: str, group: str, start: str, *, ignore_record: bool = False
) -> tuple[Any, ...]:
    """The EVAL arguments that run ``CREATE_GROUP`` for one group."""
    flag = "1" if ignore_record else "0"
    return ("EVAL", CREATE_GROUP, 2, stream, groups, group, start, flag)


def group_lost(service: str, signal: str, stream: str, done: Created) -> GroupLost:
    """The error for a group ``CREATE_GROUP`` would not recreate, saying how to."""
    command = f"busignal service create {signal} {service}"
    if done.kind == "lost":
        why = (
            f"entries after {done.at}, where it stood, were trimmed while it was "
            f"gone (up to {done.deleted}): they are lost"
        )
    else:
        why = "nothing recorded where it stood, so it would skip or re-run events"
    return GroupLost(
        f"service {service!r}: its consumer group on {stream} is gone and {why}. "
        f"Recreate it with '{command} --from-start' (every entry still in the "
        f"stream runs) or '{command} --from-now' (only new ones), then start "
        f"the worker again"
    )
