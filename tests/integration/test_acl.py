"""Least privilege, on a real redis-server: each role from ``busignal acl``.

Every role's user is created from the command's own output. Each does its
whole job (send and publish; run a service's receivers, reply, retry,
dead-letter, take over, trim; inspect, replay and purge dead letters,
declare a service) and is refused what it does not need.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from typing import Any

import pytest
import redis

from busignal.bus.bus import Bus

from .faults_support import SERVICE, cli, dead_key, ledger, wait_handled, xtrim_calls
from .servers import APPS, RedisServer, WorkerProcess, wait_for

sys.path.insert(0, str(APPS))

from faults_receivers import poison, tick

PASSWORD = "a-long-password-for-this-test-only"
SECRET = "a-signing-secret-of-at-least-32-bytes"
ROLES = ("sender", "worker", "admin")


def _create_user(server: RedisServer, role: str) -> str:
    """Apply ``busignal acl ROLE``'s output, give a password; return the URL."""
    made = cli("acl", role)
    assert made.returncode == 0, made.stderr
    assert "set no password" in made.stderr
    [line] = made.stdout.splitlines()
    words = shlex.split(line)
    assert words[:2] == ["ACL", "SETUSER"]
    admin: Any = server.client()  # redis-py leaves execute_command untyped
    admin.execute_command(*words)
    admin.execute_command("ACL", "SETUSER", words[2], f">{PASSWORD}")
    return f"redis://{words[2]}:{PASSWORD}@127.0.0.1:{server.port}/0"


@pytest.fixture
def users(redis_server: RedisServer) -> dict[str, str]:
    return {role: _create_user(redis_server, role) for role in ROLES}


def test_acl_roles_each_do_their_whole_job(
    redis_server: RedisServer,
    users: dict[str, str],
    worker_factory: Callable[..., WorkerProcess],
) -> None:
    # The receivers' own bookkeeping uses the default user (TEST_REDIS_URL).
    before = xtrim_calls(redis_server)
    worker = worker_factory(
        SERVICE,
        "faults_receivers",
        url=users["worker"],
        env={"TEST_REDIS_URL": redis_server.url, "BUSIGNAL_SECRET": SECRET},
        extra=["--max-deliveries", "2"],
    )
    sender = Bus(users["sender"], timeout=10, secret=SECRET)
    try:
        [(_, answer)] = tick.using(bus=sender).send_robust(None)
        published = [tick.using(bus=sender).publish(None) for _ in range(5)]
        poison.using(bus=sender).publish(None)
    finally:
        sender.close()
    assert answer is None  # the receiver's reply came back through the ACL
    wait_handled(redis_server, published, 20)
    client = redis_server.client()
    wait_for(lambda: client.xlen(dead_key("faults_poison")) == 1, 30, "a dead letter")
    wait_for(lambda: xtrim_calls(redis_server) > before, 30, "the worker's trim")

    admin = users["admin"]
    inspected = cli("inspect", "--json", "--url", admin)
    listed = cli("dead", "list", "faults_poison", "--url", admin)
    client.set("faults:poison:fixed", 1)
    # A replay re-signs each letter for its service: it needs the secret.
    replayed = cli(
        "dead", "replay", "faults_poison", "--all", "--url", admin,
        env={"BUSIGNAL_SECRET": SECRET},
    )  # fmt: skip
    declared = cli("service", "create", "faults_tick", "audit", "--url", admin)
    purged = cli("dead", "purge", "faults_poison", "--all", "--url", admin)

    for done in (inspected, listed, replayed, declared, purged):
        assert done.returncode == 0, done.stderr
    assert '"faults"' in inspected.stdout
    assert "replayed 1 dead letter" in replayed.stdout
    wait_for(lambda: len(ledger(redis_server)) == len(published) + 2, 20, "replay")
    assert "NOPERM" not in worker.output()
    assert "no permissions" not in worker.output()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    "command",
    [
        ("FLUSHALL",),
        ("CONFIG", "GET", "requirepass"),
        ("SET", "elsewhere", "x"),
        ("XADD", "other:{sig:pay}:events", "*", "v", "1"),
        ("GET", "busignal:{sig:pay}:events"),
        ("KEYS", "*"),
    ],
)
def test_acl_role_is_refused_what_it_does_not_need(
    redis_server: RedisServer,
    users: dict[str, str],
    role: str,
    command: tuple[str, ...],
) -> None:
    client: Any = redis.Redis.from_url(users[role])
    try:
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.execute_command(*command)
    finally:
        client.close()
