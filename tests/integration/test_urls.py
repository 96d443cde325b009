"""Every URL kind end to end: a unix socket and an ACL login, real worker and all.

Each test runs on a redis-server reached over ``unix://``, on one whose only
user is ``alice`` (the default user is off), reached as
``redis://alice:PASSWORD@host:port/0``, and on one with both; the senders
and the ``busignal worker`` and ``busignal inspect`` subprocesses all use
that URL.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from busignal import BusUnavailable, RemoteReceiver
from busignal.bus import Bus
from busignal.transport.clients import redact

from .servers import APPS, RedisServer, WorkerProcess, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(APPS))

from signals_shared import event, order_paid  # noqa: E402

StartWorker = Callable[..., WorkerProcess]
PASSWORD = "acl-pw-7f3a"
ACL = (
    "--user", "alice", "on", f">{PASSWORD}", "~*", "&*", "+@all",
    "--user", "default", "off",
)  # fmt: skip


@pytest.fixture(params=["unix", "acl", "unix+acl"])
def redis_server(
    request: pytest.FixtureRequest, redis_factory: Callable[..., RedisServer]
) -> RedisServer:
    """This test's server: over a unix socket, behind an ACL login, or both."""
    unix = request.param.startswith("unix")
    if request.param.endswith("acl"):
        return redis_factory(
            *ACL, unix_socket=unix, username="alice", password=PASSWORD
        )
    return redis_factory(unix_socket=unix)


def _wrong_password(server: RedisServer) -> str:
    return server.url.replace(f":{PASSWORD}@", f":not-{PASSWORD}@")


def _billing(results: list[tuple[object, object]]) -> dict[str, object]:
    answers: dict[str, object] = {}
    for receiver, response in results:
        assert isinstance(receiver, RemoteReceiver), (receiver, response)
        assert receiver.service == "billing"
        answers[receiver.id] = response
    return answers


def _handled(server: RedisServer, tag: str) -> int:
    return int(server.client().llen(f"test:handled:{tag}"))


def test_url_send_and_send_robust_get_the_workers_replies(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker = worker_factory("billing", "billing")

    sent = _billing(order_paid.send(None, amount=3))
    robust = _billing(order_paid.send_robust(None, amount=-1))

    assert sent["billing.receipt"] == "receipt for 3"
    assert sent["billing.charge"] == {"charged": 3, "pid": worker.pid}
    assert isinstance(robust["billing.charge"], ValueError)
    assert str(robust["billing.charge"]) == "negative amount -1"


def test_url_asend_gets_the_workers_replies(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker_factory("billing", "billing")

    results = asyncio.run(order_paid.asend(None, amount=4))

    assert _billing(results)["billing.receipt"] == "receipt for 4"


def test_url_publish_reaches_the_worker(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker_factory("billing", "billing")

    event.publish(None, n=1)
    event.publish(None, n=2)

    wait_for(lambda: _handled(redis_server, "billing.event") == 2, what="2 events")


def test_url_worker_log_and_inspect_show_no_password(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    worker = worker_factory("billing", "billing")
    assert order_paid.send(None, amount=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUSIGNAL_")}
    url = redis_server.url

    runs = [
        subprocess.run(
            [sys.executable, "-m", "busignal", "inspect", "--url", url, *extra],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        for extra in (["--json"], ["--plain"])
    ]

    for run in runs:
        assert run.returncode == 0, run.stderr
        assert PASSWORD not in run.stdout + run.stderr
    report = json.loads(runs[0].stdout)
    assert [w["service"] for w in report["workers"]] == ["billing"]
    assert "billing" in runs[1].stdout
    assert f"on {redact(redis_server.url)} (from command line)" in worker.output()
    assert PASSWORD not in worker.output()


@pytest.mark.parametrize("redis_server", ["acl", "unix+acl"], indirect=True)
def test_url_wrong_password_raises_bus_unavailable_without_it(
    redis_server: RedisServer,
) -> None:
    url = _wrong_password(redis_server)
    wrong = order_paid.using(bus=Bus(url))
    sends: list[Callable[[], object]] = [
        lambda: wrong.send(None, amount=1),
        lambda: wrong.publish(None, amount=1),
        lambda: asyncio.run(wrong.asend(None, amount=1)),
    ]

    for send in sends:
        with pytest.raises(BusUnavailable) as raised:
            send()
        assert str(raised.value) == (
            f"Redis at {redact(url)} refused the login (invalid username-password "
            f"pair or user is disabled); check the user and password in "
            f"BUSIGNAL_URL (or configure(url=...))"
        )


def test_url_closed_port_error_is_one_sentence() -> None:
    port = free_port()
    closed = Bus(f"redis://127.0.0.1:{port}/0", connect_timeout=1)

    with pytest.raises(BusUnavailable) as raised:
        order_paid.using(bus=closed).send(None, amount=1)

    assert re.fullmatch(
        rf"cannot reach Redis at redis://127\.0\.0\.1:{port}/0 \(Error \d+ "
        rf"connecting to 127\.0\.0\.1:{port}\. Connection refused\); check that "
        rf"the server is running and that BUSIGNAL_URL \(or configure\(url=\.\.\.\)\) "
        rf"points at it",
        str(raised.value),
    ), str(raised.value)


@pytest.mark.parametrize("redis_server", ["acl", "unix+acl"], indirect=True)
def test_url_worker_with_wrong_password_exits_and_says_why(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    url = _wrong_password(redis_server)
    worker = WorkerProcess("billing", ("billing",), url, tmp_path / "worker.log")

    worker.start()
    try:
        code = worker.wait(timeout=15)
    finally:
        worker.stop()

    assert code == 1
    assert worker.output().strip().splitlines()[-1] == (
        f"busignal: Redis at {redact(url)} refused the login (invalid "
        f"username-password pair or user is disabled); check the user and "
        f"password in BUSIGNAL_URL (or configure(url=...))"
    )
    assert PASSWORD not in worker.output()
