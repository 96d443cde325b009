"""The outbox, the relay and Django workers, on a real database and real Redis.

Each scenario runs on PostgreSQL (127.0.0.1:5432, user postgres: a
database of its own, created for this test session and dropped at its end)
and on SQLite. Where no PostgreSQL answers, its cases are skipped with a
message saying so. The web side, relays and workers are processes of the
test project (tests/integration/django_project); the test process itself
never sets Django up.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from busignal.bus import Bus
from busignal.wire import envelope

from .servers import RedisServer, WorkerProcess, wait_for

PROJECT = Path(__file__).parent / "django_project"
PG = "host=127.0.0.1 port=5432 user=postgres connect_timeout=3"

StartWorker = Callable[..., WorkerProcess]


@dataclass
class Database:
    """The test project's database for one test: its settings and a way in."""

    kind: str
    env: dict[str, str]
    path: Path | None = None  # SQLite
    name: str | None = None  # PostgreSQL

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.path is not None:
            with closing(sqlite3.connect(self.path)) as db:
                return db.execute(sql).fetchall()
        import psycopg

        with psycopg.connect(f"{PG} dbname={self.name}", autocommit=True) as db:
            cursor = db.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def outbox_rows(self) -> int:
        return int(self.query("SELECT count(*) FROM busignal_outbox")[0][0])

    def backends(self) -> int:
        """Connections to this database other than the one asking."""
        return int(
            self.query(
                f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{self.name}' "
                f"AND pid <> pg_backend_pid()"
            )[0][0]
        )

    def terminate_backends(self) -> int:
        """Kill every other connection to this database, as a DBA or a
        failover would; return how many."""
        return len(
            self.query(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                f"datname = '{self.name}' AND pid <> pg_backend_pid()"
            )
        )


def run(
    env: dict[str, str], *args: str, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    """Run a command of the project (``manage.py ...``, ``outbox_web.py ...``)."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=PROJECT,
        env=full_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def full_env(env: dict[str, str]) -> dict[str, str]:
    full = {**os.environ, "PYTHONPATH": str(PROJECT), **env}
    full.pop("BUSIGNAL_URL", None)
    return full


def migrate(env: dict[str, str]) -> None:
    done = run(
        {"TEST_REDIS_URL": "redis://127.0.0.1:1/0", **env}, "manage.py", "migrate"
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A PostgreSQL database of this test session, migrated; dropped after it."""
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed (the test extra installs it)")
    try:
        admin = psycopg.connect(f"{PG} dbname=test", autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(
            f"no PostgreSQL answers at 127.0.0.1:5432 as user postgres "
            f"({str(exc).strip()}); the PostgreSQL cases are skipped, the SQLite "
            f"ones still run"
        )
    name = f"busignal_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        migrate({"SHOP_PG_NAME": name})
        yield name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """The project's database, empty: PostgreSQL's emptied, SQLite's new."""
    if request.param == "postgresql":
        name = request.getfixturevalue("postgres")
        db = Database("postgresql", {"SHOP_PG_NAME": name}, name=name)
        db.query("TRUNCATE shop_order, busignal_outbox RESTART IDENTITY")
        return db
    path = tmp_path / "shop.sqlite3"
    db = Database("sqlite", {"SHOP_DB": str(path)}, path=path)
    migrate(db.env)
    return db


@pytest.fixture
def postgresql(postgres: str) -> Database:
    db = Database("postgresql", {"SHOP_PG_NAME": postgres}, name=postgres)
    db.query("TRUNCATE shop_order, busignal_outbox RESTART IDENTITY")
    return db


@dataclass
class Processes:
    """Long-running project processes (relays, workers) a test started."""

    directory: Path
    started: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def start(self, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
        log = self.directory / f"process-{len(self.started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, *args],
                cwd=PROJECT,
                env=full_env(env),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.started.append((process, log))
        return process

    def output(self, process: subprocess.Popen[bytes]) -> str:
        log = next(log for p, log in self.started if p is process)
        return log.read_text(errors="replace")

    def stop_all(self) -> None:
        for process, _ in self.started:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    yield started
    started.stop_all()


def project(server: RedisServer, database: Database, **more: str) -> dict[str, str]:
    return {"TEST_REDIS_URL": server.url, **database.env, **more}


def recorded(server: RedisServer, key: str) -> list[dict[str, Any]]:
    raw = server.client().lrange(f"test:outbox:{key}", 0, -1)
    return [json.loads(item) for item in raw]


def publish_save(server: RedisServer, pk: int, status: str) -> None:
    bus = Bus(server.url)
    try:
        bus.publish(
            "post_save", "shop.Order", {"instance": {"pk": pk, "status": status}}
        )
    finally:
        bus.close()


# -- worker hygiene -------------------------------------------------------------


def test_django_worker_survives_killed_database_connection(
    redis_server: RedisServer,
    worker_factory: StartWorker,
    postgresql: Database,
) -> None:
    env = project(redis_server, postgresql, SHOP_CONN_MAX_AGE="none")
    worker = worker_factory(
        "audit",
        "shop.outbox_receivers",
        extra=["--django-settings", "mysite.settings", "--concurrency", "1"],
        env={"PYTHONPATH": str(PROJECT), **env},
    )
    publish_save(redis_server, 1, "first")
    wait_for(lambda: recorded(redis_server, "post_save"), 30, "the first event")
    assert postgresql.backends() >= 1  # the worker keeps its connection

    assert postgresql.terminate_backends() >= 1
    publish_save(redis_server, 2, "second")

    wait_for(
        lambda: len(recorded(redis_server, "post_save")) == 2,
        30,
        f"the second event; worker log:\n{worker.output()}",
    )
    second = recorded(redis_server, "post_save")[1]
    assert (second["status"], second["attempt"]) == ("second", 1)
    assert "raised" not in worker.output()


def test_django_worker_with_conn_max_age_0_closes_its_connection_after_each_event(
    redis_server: RedisServer,
    worker_factory: StartWorker,
    postgresql: Database,
) -> None:
    env = project(redis_server, postgresql, SHOP_CONN_MAX_AGE="0")
    worker_factory(
        "audit",
        "shop.outbox_receivers",
        extra=["--django-settings", "mysite.settings"],
        env={"PYTHONPATH": str(PROJECT), **env},
    )

    publish_save(redis_server, 1, "only")
    wait_for(lambda: recorded(redis_server, "post_save"), 30, "the event")

    wait_for(lambda: postgresql.backends() == 0, 10, "the worker's connection to close")


def test_manage_py_worker_and_django_settings_module_alone_both_run_a_worker(
    redis_server: RedisServer,
    worker_factory: StartWorker,
    processes: Processes,
    database: Database,
) -> None:
    env = project(redis_server, database)
    client = redis_server.client()
    managed = processes.start(
        env, "manage.py", "busignal_worker", "shop.outbox_receivers",
        "--service", "via-manage", "--heartbeat", "0.5",
    )  # fmt: skip
    wait_for(
        lambda: client.hlen("busignal:workers") == 1,
        30,
        f"manage.py busignal_worker to start:\n{processes.output(managed)}",
    )
    worker_factory(  # no --django-settings: DJANGO_SETTINGS_MODULE only
        "via-environment",
        "shop.outbox_receivers",
        env={"PYTHONPATH": str(PROJECT), "DJANGO_SETTINGS_MODULE": "mysite.settings"}
        | env,
    )

    bus = Bus(redis_server.url)
    bus.publish("order_shipped", "shop", {"n": 7})
    bus.close()

    wait_for(
        lambda: len(recorded(redis_server, "order_shipped")) == 2,
        30,
        f"both services; manage.py worker log:\n{processes.output(managed)}",
    )
    assert [e["orders"] for e in recorded(redis_server, "order_shipped")] == [0, 0]


# -- the outbox ----------------------------------------------------------------


def test_outbox_saves_while_redis_is_down_reach_another_service_once_relayed(
    redis_server: RedisServer,
    worker_factory: StartWorker,
    database: Database,
) -> None:
    env = project(redis_server, database, SHOP_OUTBOX="1")
    redis_server.stop()

    web = run(env, "outbox_web.py", "save", "20", "5")
    assert web.returncode == 0, web.stderr
    assert json.loads(web.stdout) == {"orders": 20}
    assert database.outbox_rows() == 20

    redis_server.start()
    worker = worker_factory(
        "audit",
        "shop.outbox_receivers",
        extra=["--django-settings", "mysite.settings"],
        env={"PYTHONPATH": str(PROJECT), **env},
    )
    relay = run(env, "manage.py", "busignal_relay", "--once")
    assert relay.returncode == 0, relay.stderr
    assert "relayed 20 events (0 set aside as dead); outbox: 0 waiting" in relay.stdout

    wait_for(
        lambda: len(recorded(redis_server, "post_save")) >= 20,
        30,
        f"20 events; worker log:\n{worker.output()}",
    )
    statuses = {event["status"] for event in recorded(redis_server, "post_save")}
    assert statuses == {f"committed-{n}" for n in range(20)}
    assert redis_server.client().xlen("busignal:{sig:post_save}:events") == 20
    assert database.outbox_rows() == 0


def test_outbox_relay_once_without_redis_exits_1_and_keeps_rows(
    redis_server: RedisServer, database: Database
) -> None:
    env = project(redis_server, database, SHOP_OUTBOX="1")
    assert run(env, "outbox_web.py", "save", "3", "0").returncode == 0
    redis_server.stop()

    relay = run(env, "manage.py", "busignal_relay", "--once")

    assert relay.returncode == 1
    assert "run busignal_relay again once Redis is back" in relay.stderr
    assert database.outbox_rows() == 3


def test_outbox_two_relays_at_once_send_each_row_exactly_once(
    redis_server: RedisServer, processes: Processes, database: Database
) -> None:
    env = project(redis_server, database)
    relay = ("manage.py", "busignal_relay", "--interval", "0.05", "--batch", "10")
    relays = [processes.start(env, *relay) for _ in range(2)]
    for each in relays:
        wait_for(
            lambda each=each: "relaying the outbox" in processes.output(each),  # type: ignore[misc]
            30,
            "a relay to start",
        )

    assert run(env, "outbox_web.py", "fill", "500").returncode == 0
    stream = "busignal:{sig:order_shipped}:events"
    client = redis_server.client()
    wait_for(
        lambda: database.outbox_rows() == 0 and client.xlen(stream) >= 500,
        60,
        "the relays to empty the outbox",
    )
    for each in relays:
        each.send_signal(signal.SIGTERM)
        assert each.wait(30) == 0, processes.output(each)

    entries: Any = client.xrange(stream)
    assert len(entries) == 500
    sent = [
        envelope.decode(
            f,
            signal="order_shipped",
            signer=None,
            max_size=1 << 20,
            stream=stream,
            namespace="busignal",
        )
        for _, f in entries
    ]
    assert sorted(e.kwargs["n"] for e in sent) == list(range(500))
    assert len({e.message_id for e in sent}) == 500
    counts = [_relayed(processes.output(each)) for each in relays]
    assert sum(counts) == 500
    if database.kind == "postgresql":  # SKIP LOCKED: they shared the rows
        assert all(counts), counts


def _relayed(output: str) -> int:
    """The count a relay printed when it stopped."""
    line = next(x for x in output.splitlines() if x.startswith("stopped: relayed"))
    return int(line.split()[2])
