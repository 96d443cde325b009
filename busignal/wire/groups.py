"""Where each service's consumer group stands, so a lost group comes back there.

A consumer group is a service's place in a stream. Destroyed (by an
operator, a ``FLUSHALL`` of the wrong database, a restore from an old
backup), it used to be recreated at ``0``, re-running everything still in
the stream, while the events trimmed meanwhile were silently lost.

So every worker records, with its acks, the id up to which its group has
acknowledged everything (``Keys.groups``: service -> record, in the
stream's slot), with what tells later whether entries after it were
trimmed meanwhile (trimming deletes from the head of a stream):

* ``ID next OLDEST``: the id before its oldest pending entry, OLDEST.
  Nothing after ID was trimmed while OLDEST is still in the stream.
* ``ID read N``: its last-delivered id when nothing is pending, and N the
  number of entries ever added up to it (the group's ``entries-read``).
  Nothing after ID was trimmed while the stream holds at least as many
  entries as were added since (``entries-added`` - N).

A group is created through ``CREATE_GROUP``, which

* leaves an existing group alone;
* recreates a recorded group at its recorded id, unless entries after that
  id were deleted from the stream meanwhile (they are lost: the caller is
  told, and decides);
* creates a new group at the start asked for (``$`` or ``0``), and records
  where it starts; or, with no start, reports that it does not know where
  the group stood;
* except when the caller saw an id SEEN in the stream (a worker whose group
  vanished under it) and the stream now holds every entry ever added to
  it, all of them after SEEN, or does not exist: then the stream is new
  since, as after a Redis that restarted empty or was flushed, and the
  group is recreated at ``0`` ("renewed"). Nothing in such a stream can be
  re-run or skipped (what was there before went with Redis's data), and
  every event sent since runs. A stream that lost any entry, or still holds
  one the caller saw, is not new: it is refused as before.

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
# of XINFO GROUPS by name, stream id order, and the record of a group that
# now exists (see the module docstring for its two forms).
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
local function record(stream, groups, name)
  local summary = redis.call('XPENDING', stream, name)
  if tonumber(summary[1]) > 0 then
    local oldest = summary[2]
    local ms, seq = string.match(oldest, '^(%d+)-(%d+)$')
    local mark
    if seq ~= '0' then
      mark = ms .. '-' .. string.format('%.0f', tonumber(seq) - 1)
    elseif ms ~= '0' then
      mark = string.format('%.0f', tonumber(ms) - 1) .. '-18446744073709551615'
    else
      return
    end
    redis.call('HSET', groups, name, mark .. ' next ' .. oldest)
    return
  end
  local info = group_info(stream, name)
  if not info then return end
  local read = field(info, 'entries-read')
  local mark = field(info, 'last-delivered-id')
  if not read then
    -- Unknown to Redis (e.g. a group just created on a new stream); known
    -- when the group stands at the stream's last entry.
    local info_stream = redis.call('XINFO', 'STREAM', stream)
    if field(info_stream, 'last-generated-id') ~= mark then return end
    read = field(info_stream, 'entries-added')
  end
  redis.call('HSET', groups, name, mark .. ' read ' .. tostring(read))
end
local function last_id(stream)
  return field(redis.call('XINFO', 'STREAM', stream), 'last-generated-id')
end
"""

# KEYS: events stream, groups hash. ARGV: group, then the ids to ack.
ACK_AND_RECORD = (
    _LUA_HELPERS
    + """
local acked = redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
record(KEYS[1], KEYS[2], ARGV[1])
return acked
"""
)

# KEYS: events stream, groups hash. ARGV: group; the start of a group never
# recorded ("$", "0", or "" to create none); "1" to ignore the record; the
# newest id the caller saw in the stream ("" if none: never renew).
# Returns {kind, id, deleted, last}: kind is exists, created, restored,
# renewed (the stream is new since the caller saw it: created at 0), lost
# (entries after the record were deleted: the group is not created) or
# unknown (no record and no start: not created); last is the stream's
# last-generated id where the group now exists.
CREATE_GROUP = (
    _LUA_HELPERS
    + """
local function new_since(stream, seen)
  if redis.call('EXISTS', stream) == 0 then return true end
  local info = redis.call('XINFO', 'STREAM', stream)
  if tonumber(field(info, 'entries-added')) ~= tonumber(field(info, 'length')) then
    return false
  end
  local first = field(info, 'first-entry')
  return not first or after(first[1], seen)
end
local exists = redis.call('EXISTS', KEYS[1]) == 1
if exists then
  local info = group_info(KEYS[1], ARGV[1])
  if info then
    return {'exists', field(info, 'last-delivered-id'), '', last_id(KEYS[1])}
  end
end
local recorded = redis.call('HGET', KEYS[2], ARGV[1])
if recorded and ARGV[3] ~= '1' then
  local mark, how, value = string.match(recorded, '^(%S+) (%a+) (%S+)$')
  if not mark then mark = recorded end
  if exists then
    local stream = redis.call('XINFO', 'STREAM', KEYS[1])
    local deleted = field(stream, 'max-deleted-entry-id')
    if deleted and after(deleted, mark) then return {'lost', mark, deleted} end
    if how == 'next' then
      -- The entry after the mark is still there: trimming, which deletes
      -- from the head, has not gone past the mark.
      if #redis.call('XRANGE', KEYS[1], value, value) == 0 then
        return {'lost', mark, value}
      end
    elseif how == 'read' then
      -- Entries added since the mark must all still be there.
      local since = tonumber(field(stream, 'entries-added')) - tonumber(value)
      if tonumber(field(stream, 'length')) < since then
        local first = field(stream, 'first-entry')
        return {'lost', mark, first and first[1] or ''}
      end
    end
  end
  redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], mark, 'MKSTREAM')
  return {'restored', mark, '', last_id(KEYS[1])}
end
local kind, start = 'created', ARGV[2]
if ARGV[4] ~= '' and new_since(KEYS[1], ARGV[4]) then
  kind, start = 'renewed', '0'
elseif start == '' then
  return {'unknown'}
end
redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], start, 'MKSTREAM')
record(KEYS[1], KEYS[2], ARGV[1])
local at = field(group_info(KEYS[1], ARGV[1]), 'last-delivered-id')
return {kind, at, '', last_id(KEYS[1])}
"""
)


@dataclass(frozen=True, slots=True)
class Created:
    """What ``CREATE_GROUP`` did for one group.

    ``kind``: ``exists``, ``created``, ``restored``, ``renewed``, ``lost``
    or ``unknown``. ``at`` is where the group stands (or, for ``lost``,
    stood); ``deleted`` the newest entry deleted from the stream (``lost``
    only); ``last`` the stream's newest id when the group was made, what a
    worker passes as ``seen`` should the group vanish later.
    """

    kind: str
    at: str = ""
    deleted: str = ""
    last: str = ""

    @property
    def made(self) -> bool:
        """True when the group now exists."""
        return self.kind in ("exists", "created", "restored", "renewed")


def created(reply: Any) -> Created:
    """``CREATE_GROUP``'s reply as a ``Created``."""
    parts = [p.decode() if isinstance(p, bytes) else str(p) for p in reply]
    return Created(*parts[:4])


def create_args(
    stream: str,
    groups: str,
    group: str,
    start: str,
    *,
    ignore_record: bool = False,
    seen: str = "",
) -> tuple[Any, ...]:
    """The EVAL arguments that run ``CREATE_GROUP`` for one group.

    ``seen``: the newest id the caller saw in the stream while its group
    existed; a group gone with no record is then renewed at ``0`` if the
    stream is new since (see the module docstring).
    """
    flag = "1" if ignore_record else "0"
    return ("EVAL", CREATE_GROUP, 2, stream, groups, group, start, flag, seen)


def group_lost(service: str, signal: str, stream: str, done: Created) -> GroupLost:
    """The error for a group ``CREATE_GROUP`` would not recreate, saying how to."""
    command = f"busignal service create {signal} {service}"
    if done.kind == "lost":
        why = (
            f"entries after {done.at}, where it stood, were trimmed while it was "
            f"gone: they are lost"
        )
    else:
        why = "nothing recorded where it stood, so it would skip or re-run events"
    return GroupLost(
        f"service {service!r}: its consumer group on {stream} is gone and {why}. "
        f"Recreate it with '{command} --from-start' (every entry still in the "
        f"stream runs) or '{command} --from-now' (only new ones), then start "
        f"the worker again"
    )
