"""The busignal command run in-process: usage errors and the dead subcommands."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from busignal import tracing
from busignal.bus import Bus
from busignal.cli import main
from busignal.signal import Signal
from busignal.sources import Source
from busignal.testing import drain
from busignal.worker import Worker, WorkerConfig

from .bus_helpers import unique


@pytest.fixture(autouse=True)
def cli_side_effects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo what main() does to the process: sys.path and the root logger."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("BUSIGNAL_URL", raising=False)
    monkeypatch.delenv("BUSIGNAL_SECRET", raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def _module(tmp_path: Path, source: str) -> str:
    """Write a module of a fresh name into tmp_path (on sys.path); its name."""
    module = unique("cli_module")
    (tmp_path / f"{module}.py").write_text(source)
    return module


# -- worker: usage errors ------------------------------------------------------------


def _receiver_module(tmp_path: Path, signal: str) -> str:
    """A module connecting one receiver to ``Signal(signal)``; its name."""
    return _module(
        tmp_path,
        "from busignal import Signal, receiver\n"
        f"@receiver(Signal({signal!r}))\n"
        "def handler(sender, **kwargs):\n"
        "    pass\n",
    )


def test_cli_worker_module_that_does_not_exist_exits_2(
    memory_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    module = unique("no_such_module")

    code = main(["worker", module, "--service", "svc", "--url", memory_url])

    assert code == 2
    assert f"cannot import module {module!r}" in capsys.readouterr().err


def test_cli_worker_module_failing_on_import_exits_2_with_its_error(
    tmp_path: Path, memory_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    module = _module(tmp_path, "raise RuntimeError('settings missing')\n")

    code = main(["worker", module, "--service", "svc", "--url", memory_url])

    err = capsys.readouterr().err
    assert code == 2
    assert f"cannot import module {module!r}" in err
    assert "RuntimeError: settings missing" in err


def test_cli_worker_module_registering_no_receivers_exits_2(
    tmp_path: Path, memory_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name = unique("sig")
    module = _module(
        tmp_path, f"from busignal import Signal\nquiet = Signal({name!r})\n"
    )

    code = main(
        ["worker", module, "--service", "svc", "--url", memory_url, "--signal", name]
    )

    assert code == 2
    assert "register no receivers" in capsys.readouterr().err


def test_cli_worker_without_url_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = _module(tmp_path, "x = 1\n")

    code = main(["worker", module, "--service", "svc"])

    assert code == 2
    assert "no Redis URL" in capsys.readouterr().err


def test_cli_worker_without_service_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = _module(tmp_path, "x = 1\n")

    with pytest.raises(SystemExit) as info:
        main(["worker", module])

    assert info.value.code == 2
    assert "--service" in capsys.readouterr().err


def test_cli_worker_invalid_service_name_exits_2(
    tmp_path: Path, memory_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    module = _module(tmp_path, "x = 1\n")

    code = main(["worker", module, "--service", "a b", "--url", memory_url])

    assert code == 2
    assert "invalid service name" in capsys.readouterr().err


def test_cli_worker_batch_sets_how_many_entries_a_read_takes(
    tmp_path: Path, memory_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _receiver_module(tmp_path, "cli.batch")
    configs: list[WorkerConfig] = []

    def run(self: Worker) -> int:
        configs.append(self.config)
        return 0

    monkeypatch.setattr(Worker, "run", run)
    url = ["--url", memory_url]

    assert main(["worker", module, "--service", "svc", *url, "--batch", "7"]) == 0
    assert main(["worker", module, "--service", "svc", *url]) == 0
    assert [config.batch for config in configs] == [7, 100]


def test_cli_worker_otel_records_a_span_per_delivery(
    tmp_path: Path, memory_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _receiver_module(tmp_path, "cli.otel")
    seen: list[tuple[bool, list[str]]] = []

    def run(self: Worker) -> int:
        kinds = [type(o).__name__ for o in self.observers]
        seen.append((self.receiving is not None, kinds))
        return 0

    monkeypatch.setattr(Worker, "run", run)
    url = ["--url", memory_url]
    try:
        assert main(["worker", module, "--service", "svc", *url]) == 0
        assert main(["worker", module, "--service", "svc", *url, "--otel"]) == 0
    finally:
        tracing.install(None)

    assert seen == [
        (False, ["LogObserver"]),
        (True, ["LogObserver", "SpanObserver"]),
    ]


def test_cli_worker_batch_below_one_exits_2(
    tmp_path: Path, memory_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    module = _module(tmp_path, "x = 1\n")

    code = main(
        ["worker", module, "--service", "svc", "--url", memory_url, "--batch", "0"]
    )

    assert code == 2
    assert "batch" in capsys.readouterr().err


# -- worker: where the bus options come from ------------------------------------------


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[Worker]:
    """The workers main() would run; run() returns at once."""
    workers: list[Worker] = []

    def run(self: Worker) -> int:
        workers.append(self)
        return 0

    monkeypatch.setattr(Worker, "run", run)
    monkeypatch.delenv("BUSIGNAL_NAMESPACE", raising=False)
    return workers


@pytest.fixture
def django_settings(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Make ``--django-settings`` give this Source, without setting Django up."""
    from busignal.contrib.django import runtime

    def given(**options: Any) -> None:
        source = Source("Django settings", **options)
        monkeypatch.setattr(runtime, "setup", lambda module: source)

    return given


def test_cli_worker_django_settings_url_with_namespace_flag(
    tmp_path: Path,
    memory_url: str,
    started: list[Worker],
    django_settings: Callable[..., None],
) -> None:
    module = _receiver_module(tmp_path, "cli.settings_url")
    django_settings(url=memory_url, secrets=("s3cret",))

    settings = ["--django-settings", "m"]
    code = main(["worker", module, "--service", "svc", *settings, "--namespace", "n"])

    assert code == 0
    (config,) = [w.bus.config for w in started]
    assert (config.url, config.namespace) == (memory_url, "n")
    assert config.secrets == ("s3cret",)


def test_cli_worker_url_flag_keeps_django_settings_secret(
    tmp_path: Path,
    memory_url: str,
    started: list[Worker],
    django_settings: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    module = _receiver_module(tmp_path, "cli.settings_secret")
    django_settings(url="redis://elsewhere:6379/0", secrets=("s3cret",))

    with caplog.at_level(logging.INFO, logger="busignal"):
        settings = ["--django-settings", "m"]
        code = main(
            ["worker", module, "--service", "svc", *settings, "--url", memory_url]
        )

    assert code == 0
    (worker,) = started
    assert worker.bus.config.url == memory_url
    assert worker.bus.signer is not None
    assert "secret from Django settings: only signed entries run" in caplog.text


def test_cli_worker_namespace_flag_keeps_environment_secret(
    tmp_path: Path,
    memory_url: str,
    started: list[Worker],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = _receiver_module(tmp_path, "cli.env_secret")
    monkeypatch.setenv("BUSIGNAL_URL", memory_url)
    monkeypatch.setenv("BUSIGNAL_SECRET", "s3cret")

    assert main(["worker", module, "--service", "svc", "--namespace", "n"]) == 0

    (config,) = [w.bus.config for w in started]
    assert (config.namespace, config.secrets) == ("n", ("s3cret",))


def test_cli_worker_django_settings_without_url_exits_2(
    tmp_path: Path,
    started: list[Worker],
    django_settings: Callable[..., None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    django_settings(namespace="shop")

    code = main(["worker", "--service", "svc", "--django-settings", "m"])

    assert code == 2
    assert "BUSIGNAL['URL'] in the Django settings" in capsys.readouterr().err
    assert started == []


def test_cli_worker_secrets_differing_between_sources_exit_2(
    tmp_path: Path,
    memory_url: str,
    started: list[Worker],
    django_settings: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BUSIGNAL_SECRET", "other")
    django_settings(url=memory_url, secrets=("s3cret",))

    code = main(["worker", "--service", "svc", "--django-settings", "m"])

    err = capsys.readouterr().err
    assert code == 2
    assert "secret in the Django settings differs" in err
    assert "s3cret" not in err
    assert started == []


# -- dead -----------------------------------------------------------------------------


@pytest.fixture
def dead_letter(bus: Bus, name: str) -> str:
    """One dead letter of ``name`` (service 'svc'); returns the bus URL."""
    sig = Signal(name)

    def failing(**kwargs: object) -> None:
        raise RuntimeError("always")

    sig.connect(failing)
    drain(bus, "svc", signals=[name])
    sig.publish(sender=None)
    drain(bus, "svc", signals=[name], max_deliveries=1)
    return bus.config.url


def test_cli_dead_list_json_shows_the_dead_letters(
    dead_letter: str, bus: Bus, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--url", dead_letter, "--namespace", bus.config.namespace, "--json"]

    code = main(["dead", "list", name, *args])

    [letter] = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (letter["service"], letter["attempts"]) == ("svc", 1)
    assert "always" in letter["reason"]


def test_cli_dead_replay_without_ids_or_all_exits_2(
    dead_letter: str, bus: Bus, name: str
) -> None:
    args = ["--url", dead_letter, "--namespace", bus.config.namespace]

    assert main(["dead", "replay", name, *args]) == 2


def test_cli_dead_purge_deletes_the_dead_letters(
    dead_letter: str, bus: Bus, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--url", dead_letter, "--namespace", bus.config.namespace]

    code = main(["dead", "purge", name, *args])

    assert code == 0
    assert "purged 1 dead letter(s)" in capsys.readouterr().out
    assert bus.client.exists(bus.keys.dead(name)) == 0
