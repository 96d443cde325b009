"""A worker running Django code: connection hygiene and how Django is found.

The database side (a killed backend, CONN_MAX_AGE on PostgreSQL) is in
tests/integration/test_django_outbox.py; here the hook's placement: in the
receivers' thread, before and after each event, around a span hook.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from busignal import Signal, receiver
from busignal.bus.bus import Bus
from busignal.bus.sources import Source
from busignal.cli import app
from busignal.contrib.django import hygiene, runtime
from busignal.worker.delivery import Job
from busignal.worker.worker import Worker, WorkerConfig

from .bus_helpers import unique


@pytest.fixture
def closes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Each close_old_connections() call: ("close", thread name)."""
    calls: list[tuple[str, str]] = []

    def close() -> None:
        calls.append(("close", threading.current_thread().name))

    monkeypatch.setattr(hygiene, "close_old_connections", close)
    return calls


def test_hygiene_closes_old_connections_around_each_event_in_its_thread(
    bus: Bus, closes: list[tuple[str, str]]
) -> None:
    name = unique("hygiene")
    sig = Signal(name, bus=bus)

    @receiver(sig)
    def on(sender: Any, n: int, **kwargs: Any) -> None:
        closes.append(("receiver", threading.current_thread().name))

    worker = Worker(bus, WorkerConfig(service="svc"), signals_to_serve=[name])
    hygiene.install(worker)
    asyncio.run(worker.serve(burst=True))  # joins the group
    sig.publish_many(None, [{"n": 1}, {"n": 2}])
    asyncio.run(worker.serve(burst=True))

    kinds = [kind for kind, _ in closes]
    assert kinds == ["close", "receiver", "close"] * 2
    assert len({thread for _, thread in closes}) == 1
    assert closes[0][1] != threading.current_thread().name


def test_hygiene_wraps_the_hook_already_there(closes: list[tuple[str, str]]) -> None:
    @contextmanager
    def span(job: Job) -> Iterator[None]:
        closes.append(("span start", ""))
        yield
        closes.append(("span end", ""))

    class Holder:
        receiving: Any = None

    holder: Any = Holder()
    holder.receiving = span
    installed = hygiene.install(holder)
    again = hygiene.install(holder)
    with holder.receiving(None):
        pass

    assert again is installed
    assert [kind for kind, _ in closes] == ["close", "span start", "span end", "close"]


def test_hygiene_does_nothing_on_the_event_loop(closes: list[tuple[str, str]]) -> None:
    async def run_async_part() -> None:
        with hygiene.ConnectionHygiene()(None):  # type: ignore[arg-type]  # unused
            pass

    asyncio.run(run_async_part())

    assert closes == []


@pytest.fixture
def setups(monkeypatch: pytest.MonkeyPatch, memory_url: str) -> list[object]:
    """The settings modules the CLI set Django up with, then the workers it
    would have run (they do not run)."""
    found: list[object] = []

    def setup(module: str) -> Source:
        found.append(module)
        return Source("Django settings", url=memory_url)

    def run(self: Worker) -> int:
        found.append(self)
        return 0

    monkeypatch.setattr(runtime, "setup", setup)
    monkeypatch.setattr(Worker, "run", run)
    monkeypatch.delenv("BUSIGNAL_URL", raising=False)
    return found


def test_cli_worker_sets_django_up_from_django_settings_module(
    setups: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    sig = Signal(unique("env_settings"))
    sig.connect(lambda sender, **kwargs: None, weak=False)
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "mysite.settings")

    code = app.main(["worker", "--service", "svc"])

    assert code == 0
    module, worker = setups
    assert module == "mysite.settings"
    assert isinstance(worker, Worker)
    assert isinstance(worker.receiving, hygiene.ConnectionHygiene)


def test_cli_worker_django_settings_flag_wins_over_environment(
    setups: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "from.environment")

    app.main(["worker", "--service", "svc", "--django-settings", "from.flag"])

    assert setups[0] == "from.flag"


def test_cli_worker_without_django_settings_names_modules(
    setups: list[object], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)

    assert app.main(["worker", "--service", "svc"]) == 2

    assert setups == []
    assert "name the modules" in capsys.readouterr().err
