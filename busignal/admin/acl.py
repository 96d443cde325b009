"""Least privilege: the Redis ACL rules of each role, ``busignal acl ROLE``.

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

import argparse
import os
import re
import sys
from dataclasses import dataclass
from typing import Any

from busignal.wire.keys import Keys

__all__ = ["ROLES", "Role", "acl_rules", "add_commands"]

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


def _run(args: argparse.Namespace) -> int:
    namespace = args.namespace or os.environ.get("BUSIGNAL_NAMESPACE") or "busignal"
    user = args.user or f"{namespace}-{args.role}"
    rules = " ".join(acl_rules(args.role, namespace))
    if args.format == "file":
        print(f"user {user} {rules}")
    else:
        print(f"ACL SETUSER {user} {rules}")
    how = (
        "add '>PASSWORD' (or '#SHA256-HEX') to the line"
        if args.format == "file"
        else f"ACL SETUSER {user} '>PASSWORD' (or '#SHA256-HEX')"
    )
    print(
        f"busignal: the {args.role} role ({ROLES[args.role].does}) in namespace "
        f"{namespace!r}. The rules set no password: give {user} one with {how}, "
        f"and put it in the URL: redis://{user}:PASSWORD@host:6379/0",
        file=sys.stderr,
    )
    return 0


def add_commands(commands: Any) -> None:
    """Add ``busignal acl sender|worker|admin`` to the CLI."""
    acl = commands.add_parser(
        "acl",
        help="print the Redis ACL rules of a role (least privilege)",
        description="Print an ACL SETUSER command (on stdout; notes on "
        "stderr) giving a Redis user only the commands and keys of one role "
        "in one namespace. Pipe it into redis-cli, or use --format file for "
        "an ACL file. Roles: "
        + "; ".join(f"{r.name}: {r.does}" for r in ROLES.values())
        + ".",
    )
    acl.add_argument("role", choices=sorted(ROLES), help="the role of the user")
    acl.add_argument(
        "--namespace", help="key namespace (default: BUSIGNAL_NAMESPACE, else busignal)"
    )
    acl.add_argument("--user", help="user name (default: NAMESPACE-ROLE)")
    acl.add_argument(
        "--format",
        choices=("command", "file"),
        default="command",
        help="an ACL SETUSER command (default) or a line of an ACL file",
    )
    acl.set_defaults(run=_run)
