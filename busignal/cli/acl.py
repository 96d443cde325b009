"""``busignal acl sender|worker|admin``: print a role's Redis ACL rules.

The rules are ``busignal.admin.acl``'s; this module parses, prints (the
command on stdout, the note on stderr) and picks the exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from busignal.admin.acl import ROLES, acl_rules

__all__ = ["add_commands"]


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
