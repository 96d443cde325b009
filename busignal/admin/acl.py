"""Least privilege: the Redis ACL rules of each role (``busignal acl ROLE``
prints them: ``busignal.cli.acl``).

Three roles touch Redis, each with only what its code paths use:

* **sender** (any process that sends or publishes): a send is one EVAL of
  a script doing XADD, XINFO GROUPS and, when no service reads the stream,
  XTRIM, RPUSH and PEXPIRE on its reply key (``busignal.bus.send_plan``);
  then BLPOP/LPOP for the replies. A publish is an XADD (XINFO GROUPS to
  see whether anybody reads). A partitioned signal records its partition
  count (SADD) and copies partition 0's groups (XGROUP CREATE).
* **worker**: reads its service's streams (XREADGROUP; XREAD and XREVRANGE
  for broadcast receivers), replies (RPUSH, EXPIRE), acknowledges and
  records where its group stands (EVAL: XACK, XPENDING, XINFO, HSET),
  dead-letters (XADD), heartbeats (the workers hash, WATCH/MULTI/EXEC to
  forget lost workers), takes over lost entries (XPENDING, XCLAIM, XINFO
  CONSUMERS, XGROUP DELCONSUMER), records the signed entries it handled
  (SET NX, MGET), keeps the outcomes of receivers waiting for a retry
  (HSET, HGETALL, DEL) and trims the streams its service reads (XINFO GROUPS,
  XPENDING, XTRIM). It never SCANs the keyspace.
* **admin** (``busignal inspect``, ``dead``, ``service``): SCAN to find the
  namespace's streams, XLEN, XINFO, XRANGE, the dead-letter moves (EVAL:
  XDEL then XADD), purges (XDEL, DEL) and group creation (EVAL).

Keys are confined to the namespace, kind by kind (events, dead letters,
replies, ...), never ``NS:*``. Passwords are not part of the rules: the
rules leave a user's passwords as they are, so the recipe can be applied
again after an upgrade.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from busignal.wire.keys import Keys

__all__ = ["ROLES", "Role", "acl_rules", "key_patterns"]

# durable="fsync" sends WAITAOF, which Redis 7.0 does not know (an ACL rule
# naming it fails there): on Redis 7.2+, add +waitaof to the sender's rules.

#: What every client needs: redis-py's health check. (redis-py also sends
#: CLIENT SETINFO on connecting, and goes on when it is refused; Redis 7.0
#: does not know that subcommand, so a rule naming it would fail there.)
_CONNECTION = ("ping",)


@dataclass(frozen=True, slots=True)
class Role:
    """One role: what it does, the key kinds it touches, its commands."""

    name: str
    does: str
    keys: tuple[str, ...]
    commands: tuple[str, ...]


ROLES: dict[str, Role] = {
    role.name: role
    for role in (
        Role(
            "sender",
            "send, publish and wait for replies",
            ("events", "reply", "partitions", "scheduled", "outbox"),
            (
                "eval", "xadd", "xinfo|groups", "xtrim", "rpush", "pexpire",
                "blpop", "lpop", "sadd", "xgroup|create", "zadd", "hset",
                "wait",
            ),
        ),
        Role(
            "worker",
            "run a service's receivers: read, reply, ack, dead-letter, take "
            "over lost entries, trim what its service read",
            (
                "events", "dead", "reply", "partitions", "groups", "workers",
                "handled", "outcomes", "scheduled",
            ),
            (
                "eval", "xreadgroup", "xread", "xrevrange", "xack", "xadd",
                "set", "mget", "xclaim", "xpending", "xinfo|groups", "xinfo|consumers",
                "xinfo|stream", "xgroup|create", "xgroup|delconsumer", "xtrim",
                "exists", "rpush", "expire", "smembers", "hset", "hget",
                "hgetall", "hdel", "del", "watch", "unwatch", "multi", "exec",
                "discard", "zrangebyscore", "zrem",
            ),
        ),
        Role(
            "admin",
            "inspect, list/replay/purge dead letters, declare services",
            (
                "events", "dead", "partitions", "groups", "workers", "scheduled",
                "outbox",
            ),
            (
                "eval", "scan", "xlen", "xrange", "xinfo|groups",
                "xinfo|stream", "xpending", "xgroup|create", "xadd", "xdel", "del",
                "exists", "smembers", "hget", "hset", "hgetall", "multi",
                "exec", "discard", "zcard", "zrange", "zrem", "hdel",
            ),
        ),
    )
}  # fmt: skip


def _glob_escape(text: str) -> str:
    """``text`` with the characters Redis globs treat specially escaped."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


def key_patterns(namespace: str, kinds: tuple[str, ...]) -> list[str]:
    """The ACL key patterns (``~...``) of some key kinds of a namespace."""
    keys = Keys(_glob_escape(namespace))
    by_kind = {
        "events": keys.events("*"),
        "dead": keys.dead("*"),
        "reply": keys.reply("*", "*"),
        "partitions": keys.partitions("*"),
        "groups": keys.groups("*"),
        "workers": keys.workers,
        # The records of the message ids a service handled (SET NX with a
        # TTL, read back with MGET), so a signed entry runs once per service.
        "handled": keys.events("*").removesuffix("events") + "handled:*",
        # Per-receiver outcomes of an event waiting for a retry (HSET, HGETALL,
        # DEL), so receivers that succeeded do not run again.
        "outcomes": keys.events("*").removesuffix("events") + "outcomes:*",
        # Delayed events: the sorted set of due times and the hash of fields.
        "scheduled": keys.scheduled("*") + "*",
        # Where Django outbox relays (run as senders) report their backlog.
        "outbox": keys.outbox,
    }
    return [f"~{by_kind[kind]}" for kind in kinds]


def acl_rules(role: str, namespace: str = "busignal") -> list[str]:
    """The ACL SETUSER rules of ``role`` (``sender``, ``worker``, ``admin``).

    ``on resetkeys resetchannels -@all``, then the role's commands and key
    patterns: applied to an existing user they replace its rights, and
    leave its passwords.
    """
    spec = ROLES[role]
    commands = [f"+{c}" for c in (*_CONNECTION, *spec.commands)]
    patterns = key_patterns(namespace, spec.keys)
    return ["on", "resetkeys", "resetchannels", "-@all", *commands, *patterns]
