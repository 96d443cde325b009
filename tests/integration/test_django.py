"""The Django app end to end: a real project (SQLite) and a real worker.

The "web" side runs as a script in its own process and the worker as
``busignal worker --django-settings``, so the test process itself never sets
Django up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from busignal.bus import Bus
from busignal.signals import post_delete
from busignal.wire import envelope
from busignal.wire.envelope import Mode

from .servers import RedisServer, WorkerProcess, wait_for

PROJECT = Path(__file__).parent / "django_project"

StartWorker = Callable[..., WorkerProcess]


def project_env(server: RedisServer, db: Path, **more: str) -> dict[str, str]:
    """What both processes of the project need: its path, Redis and database."""
    return {
        "PYTHONPATH": str(PROJECT),
        "TEST_REDIS_URL": server.url,
        "SHOP_DB": str(db),
        **more,
    }


def run_web(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env}
    full.pop("BUSIGNAL_URL", None)
    return subprocess.run(
        [sys.executable, "web.py"],
        cwd=PROJECT,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def recorded(server: RedisServer, key: str) -> list[dict[str, Any]]:
    raw = server.client().lrange(f"test:django:{key}", 0, -1)
    return [json.loads(item) for item in raw]


def test_django_model_save_runs_receiver_in_django_worker(
    redis_server: RedisServer, worker_factory: StartWorker, tmp_path: Path
) -> None:
    env = project_env(redis_server, tmp_path / "shop.sqlite3")
    worker = worker_factory(
        "audit",
        "shop.receivers",
        extra=["--django-settings", "mysite.settings"],
        env=env,
    )

    web = run_web(env)
    assert web.returncode == 0, web.stderr
    done = json.loads(web.stdout)

    wait_for(
        lambda: len(recorded(redis_server, "post_save")) == 2,
        timeout=30,
        what=f"2 saves; worker log:\n{worker.output()}",
    )
    wait_for(lambda: recorded(redis_server, "post_delete"), 30, "the delete")
    created, updated = recorded(redis_server, "post_save")
    assert created == {
        "sender": "shop.Order",
        "instance": {"pk": done["order"], "status": "paid", "total": "12.50"},
        "created": True,
        "update_fields": [],
        "note": "leave at the door",
    }
    assert updated["instance"] == {
        "pk": done["order"],
        "status": "shipped",
        "total": "12.50",
    }
    assert (updated["created"], updated["update_fields"]) == (False, ["status"])
    assert recorded(redis_server, "post_delete") == [
        {
            "sender": "shop.Order",
            "instance": {"pk": done["gone"], "status": "new", "total": "1.00"},
        }
    ]
    assert done["discovered"] is True


def test_django_unknown_forwarded_model_fails_web_startup(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    env = project_env(
        redis_server, tmp_path / "shop.sqlite3", SHOP_FORWARD_MODEL="shop.Ordr"
    )

    web = run_web(env)

    assert web.returncode != 0
    assert "ImproperlyConfigured" in web.stderr
    assert "'shop.Ordr'" in web.stderr


def test_django_worker_with_bad_settings_exits_with_usage_error(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        **project_env(
            redis_server, tmp_path / "shop.sqlite3", SHOP_FORWARD_MODEL="shop.Ordr"
        ),
    }
    command = [
        sys.executable, "-m", "busignal", "worker", "shop.receivers",
        "--service", "audit", "--url", redis_server.url,
        "--django-settings", "mysite.settings",
    ]  # fmt: skip

    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 2
    assert "mysite.settings" in done.stderr
    assert "'shop.Ordr'" in done.stderr


def test_django_worker_url_flag_keeps_settings_secret_and_refuses_unsigned(
    redis_server: RedisServer, worker_factory: StartWorker, tmp_path: Path
) -> None:
    env = project_env(
        redis_server,
        tmp_path / "shop.sqlite3",
        SHOP_SECRET="s3cret-s3cret-s3cret-s3cret-s3cret",
    )
    worker = worker_factory(  # the factory passes --url as well
        "audit",
        "shop.receivers",
        extra=["--django-settings", "mysite.settings"],
        env=env,
    )
    client = redis_server.client()
    _, unsigned = envelope.encode(
        signal="post_delete",
        sender="shop.Order",
        kwargs={"instance": {"pk": 1}},
        mode=Mode.PUBLISH,
        max_size=1024 * 1024,
    )

    client.xadd("busignal:{sig:post_delete}:events", unsigned)  # type: ignore[arg-type]  # bytes fields
    signed = Bus(redis_server.url, secret="s3cret-s3cret-s3cret-s3cret-s3cret")
    post_delete.using(bus=signed).publish("shop.Order", instance={"pk": 2})

    dead_key = "busignal:{sig:post_delete}:dead"
    wait_for(
        lambda: recorded(redis_server, "post_delete") and client.xlen(dead_key),
        timeout=30,
        what=f"the signed delete and a dead letter; worker log:\n{worker.output()}",
    )
    dead: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(dead_key)  # type: ignore[assignment]  # sync client
    signed.close()
    assert [event["instance"] for event in recorded(redis_server, "post_delete")] == [
        {"pk": 2}
    ]
    assert len(dead) == 1
    assert b"unsigned" in dead[0][1][b"reason"]
    assert "secret from Django settings: only signed entries run" in worker.output()
