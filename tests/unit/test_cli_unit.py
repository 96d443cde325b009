"""The busignal command run in-process: usage errors and the dead subcommands."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from busignal import tracing
from busignal.admin import dead
from busignal.bus.bus import Bus
from busignal.bus.sources import Source
from busignal.cli.app import main
from busignal.dispatch.signal import Signal
from busignal.testing import drain
from busignal.worker.worker import Worker, WorkerConfig

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
    django_settings(url=memory_url, secrets=("s3cret-s3cret-s3cret-s3cret-s3cret",))

    settings = ["--django-settings", "m"]
    code = main(["worker", module, "--service", "svc", *settings, "--namespace", "n"])

    assert code == 0
    (config,) = [w.bus.config for w in started]
    assert (config.url, config.namespace) == (memory_url, "n")
    assert config.secrets == ("s3cret-s3cret-s3cret-s3cret-s3cret",)


def test_cli_worker_url_flag_keeps_django_settings_secret(
    tmp_path: Path,
    memory_url: str,
    started: list[Worker],
    django_settings: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    module = _receiver_module(tmp_path, "cli.settings_secret")
    django_settings(
        url="redis://elsewhere:6379/0", secrets=("s3cret-s3cret-s3cret-s3cret-s3cret",)
    )

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
    monkeypatch.setenv("BUSIGNAL_SECRET", "s3cret-s3cret-s3cret-s3cret-s3cret")

    assert main(["worker", module, "--service", "svc", "--namespace", "n"]) == 0

    (config,) = [w.bus.config for w in started]
    assert (config.namespace, config.secrets) == (
        "n",
        ("s3cret-s3cret-s3cret-s3cret-s3cret",),
    )


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
    monkeypatch.setenv("BUSIGNAL_SECRET", "other-secret-0123456789abcdefghijk")
    django_settings(url=memory_url, secrets=("s3cret-s3cret-s3cret-s3cret-s3cret",))

    code = main(["worker", "--service", "svc", "--django-settings", "m"])

    err = capsys.readouterr().err
    assert code == 2
    assert "secret in the Django settings differs" in err
    assert "s3cret-s3cret-s3cret-s3cret-s3cret" not in err
    assert started == []


# -- dead -----------------------------------------------------------------------------


@pytest.fixture
def dead_letters(bus: Bus, name: str) -> list[str]:
    """Three dead letters of ``name`` (service 'svc'); their ids, oldest first."""
    sig = Signal(name)

    def failing(n: int, **kwargs: object) -> None:
        raise RuntimeError(f"always {n}")

    sig.connect(failing, weak=False)
    drain(bus, "svc", signals=[name])
    sig.publish_many(None, [{"n": n} for n in range(3)])
    drain(bus, "svc", signals=[name], max_deliveries=1)
    return [d.id for d in dead.list_dead(bus, name)]


def _dead(bus: Bus, *args: str) -> list[str]:
    return [*args, "--url", bus.config.url, "--namespace", bus.config.namespace]


def test_cli_dead_list_json_shows_the_dead_letters(
    dead_letters: list[str], bus: Bus, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["dead", "list", *_dead(bus, name, "--json")])

    letters = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [(d["service"], d["attempts"]) for d in letters] == [("svc", 1)] * 3
    assert "always 0" in letters[0]["reason"]


def test_cli_dead_list_id_shows_only_that_letter(
    dead_letters: list[str], bus: Bus, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["dead", "list", *_dead(bus, name, "--id", dead_letters[1])])

    assert code == 0
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith(dead_letters[1])
    assert "always 1" in line


def test_cli_dead_list_of_an_unknown_id_exits_1_naming_it(
    dead_letters: list[str], bus: Bus, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["dead", "list", *_dead(bus, name, "--id", "1-1")])

    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert "'1-1'" in err


def test_cli_dead_list_of_a_signal_without_letters_says_so(
    bus: Bus, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["dead", "list", *_dead(bus, name)])

    out, err = capsys.readouterr()
    assert code == 0
    assert out == ""  # a pipe counting letters reads none
    assert f"no dead letters for {name!r}" in err


def test_cli_dead_list_json_of_a_signal_without_letters_is_an_empty_list(
    bus: Bus, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dead", "list", *_dead(bus, name, "--json")]) == 0

    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize("action", ["replay", "purge"])
def test_cli_dead_without_ids_or_all_is_a_usage_error(
    dead_letters: list[str],
    bus: Bus,
    name: str,
    action: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["dead", action, *_dead(bus, name)])

    out, err = capsys.readouterr()
    assert info.value.code == 2
    assert out == ""
    assert err.startswith("usage: busignal dead")
    assert "--id" in err.splitlines()[-1]
    assert "--all" in err.splitlines()[-1]
    assert len(dead.list_dead(bus, name)) == 3


def test_cli_dead_purge_all_deletes_the_dead_letters(
    dead_letters: list[str], bus: Bus, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["dead", "purge", *_dead(bus, name, "--all")])

    assert code == 0
    assert "purged 3 dead letter(s)" in capsys.readouterr().out
    assert bus.client.exists(bus.keys.dead(name)) == 0


def test_cli_dead_purge_id_deletes_only_that_letter(
    dead_letters: list[str], bus: Bus, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, third = dead_letters

    code = main(["dead", "purge", *_dead(bus, name, "--id", second, "--id", third)])

    assert code == 0
    assert "purged 2 dead letter(s)" in capsys.readouterr().out
    assert [d.id for d in dead.list_dead(bus, name)] == [first]


def test_cli_dead_purge_of_an_unknown_id_exits_1_and_deletes_nothing(
    dead_letters: list[str], bus: Bus, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = ["--id", dead_letters[0], "--id", "1-1"]

    code = main(["dead", "purge", *_dead(bus, name, *ids)])

    out, err = capsys.readouterr()
    assert code == 1
    assert "'1-1'" in err
    assert dead_letters[0] not in err
    assert out == ""
    assert [d.id for d in dead.list_dead(bus, name)] == dead_letters


def test_cli_dead_replay_of_an_unknown_id_exits_1_and_replays_nothing(
    dead_letters: list[str], bus: Bus, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = ["--id", dead_letters[0], "--id", "1-1"]

    code = main(["dead", "replay", *_dead(bus, name, *ids)])

    assert code == 1
    assert "'1-1'" in capsys.readouterr().err
    assert [d.id for d in dead.list_dead(bus, name)] == dead_letters
    assert bus.client.xlen(bus.keys.events(name)) == 3


# -- version --------------------------------------------------------------------------


def test_cli_version_prints_the_installed_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])

    assert info.value.code == 0
    assert capsys.readouterr().out == f"busignal {metadata.version('busignal')}\n"
