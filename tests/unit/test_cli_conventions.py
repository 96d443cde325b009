"""The CLI's conventions in-process: help, environment defaults, bad input, logs."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from busignal.cli import app
from busignal.cli.flags import walk
from busignal.cli.logs import JsonFormatter

WORKER_ENV = {
    "BUSIGNAL_SERVICE": "--service",
    "BUSIGNAL_CONCURRENCY": "--concurrency",
    "BUSIGNAL_BATCH": "--batch",
    "BUSIGNAL_MAX_DELIVERIES": "--max-deliveries",
    "BUSIGNAL_GRACE": "--grace",
    "BUSIGNAL_HEARTBEAT": "--heartbeat",
    "BUSIGNAL_WORKER_NAME": "--name",
    "BUSIGNAL_SIGNALS": "--signal",
    "BUSIGNAL_METRICS_ADDR": "--metrics-addr",
    "BUSIGNAL_OTEL": "--otel",
    "BUSIGNAL_URL": "--url",
    "BUSIGNAL_NAMESPACE": "--namespace",
    "BUSIGNAL_LOG_LEVEL": "--log-level",
    "BUSIGNAL_LOG_FORMAT": "--log-format",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for variable in WORKER_ENV:
        monkeypatch.delenv(variable, raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        app.main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


def _help(*command: str) -> str:
    parser = app._parser()
    for each in walk(parser):
        if each.prog == " ".join(["busignal", *command]):
            return " ".join(each.format_help().split())  # unwrapped
    raise AssertionError(f"no parser for {command}")


# -- help -------------------------------------------------------------------------


def test_cli_every_flag_of_every_subcommand_has_help() -> None:
    missing = [
        f"{parser.prog} {action.option_strings or action.dest}"
        for parser in walk(app._parser())
        for action in parser._actions
        if not action.help and not isinstance(action, argparse._SubParsersAction)
    ]

    assert missing == []


def test_cli_worker_help_names_every_environment_default() -> None:
    text = _help("worker")

    for variable, flag in WORKER_ENV.items():
        assert variable in text, (variable, flag)


@pytest.mark.parametrize(
    ("flag", "shown"),
    [
        ("--concurrency", "default: 8"),
        ("--batch", "default: 100"),
        ("--max-deliveries", "default: 5"),
        ("--grace", "default: 30.0"),
        ("--heartbeat", "default: 2.0"),
        ("--log-level", "default: INFO"),
        ("--log-format", "default: text"),
    ],
)
def test_cli_worker_help_shows_defaults(flag: str, shown: str) -> None:
    text = _help("worker")

    assert shown in text[text.index(f"{flag} ", text.index("options:")) :][:300]


def test_cli_log_flags_are_accepted_on_every_subcommand() -> None:
    without = [
        parser.prog
        for parser in walk(app._parser())
        if not {"--log-level", "--log-format"}
        <= {s for a in parser._actions for s in a.option_strings}
    ]

    assert without == []


# -- environment defaults ------------------------------------------------------------


def test_cli_worker_flags_default_to_their_environment_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BUSIGNAL_SERVICE", "billing")
    monkeypatch.setenv("BUSIGNAL_CONCURRENCY", "3")
    monkeypatch.setenv("BUSIGNAL_GRACE", "1.5")
    monkeypatch.setenv("BUSIGNAL_METRICS_ADDR", "9100")
    monkeypatch.setenv("BUSIGNAL_OTEL", "yes")

    args = app._parser().parse_args(["worker", "billing"])

    assert (args.service, args.concurrency, args.grace) == ("billing", 3, 1.5)
    assert args.metrics_addr == ("127.0.0.1", 9100)
    assert args.otel is True


def test_cli_worker_flag_wins_over_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BUSIGNAL_CONCURRENCY", "3")

    args = app._parser().parse_args(
        ["worker", "m", "--service", "s", "--concurrency", "4"]
    )

    assert args.concurrency == 4


@pytest.mark.parametrize(
    ("variable", "value", "flag"),
    [
        ("BUSIGNAL_CONCURRENCY", "eight", "--concurrency"),
        ("BUSIGNAL_GRACE", "soon", "--grace"),
        ("BUSIGNAL_METRICS_ADDR", "host:port", "--metrics-addr"),
        ("BUSIGNAL_OTEL", "maybe", "--otel"),
        ("BUSIGNAL_LOG_FORMAT", "xml", "--log-format"),
    ],
)
def test_cli_bad_environment_default_is_a_usage_error_naming_it(
    variable: str,
    value: str,
    flag: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(variable, value)

    err = _usage_error(["worker", "m", "--service", "s"], capsys)

    assert f"{variable}={value!r}" in err
    assert flag in err


def test_cli_bad_worker_variable_does_not_stop_other_subcommands(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BUSIGNAL_CONCURRENCY", "eight")

    code = app.main(["ping", "--url", "memory://conventions"])

    assert code == 0
    assert capsys.readouterr().out.startswith("PONG from fakeredis ")


# -- bad flags ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--log-format", "xml", "ping"], "--log-format"),
        (["ping", "--log-format", "xml"], "--log-format"),
        (["ping", "--log-level", "LOUD"], "--log-level"),
        (
            ["worker", "m", "--service", "s", "--metrics-addr", "nowhere"],
            "--metrics-addr",
        ),
        (
            ["worker", "m", "--service", "s", "--metrics-addr", "h:70000"],
            "--metrics-addr",
        ),
        (["worker", "m", "--service", "s", "--metrics-port", "0"], "--metrics-port"),
        (["worker", "m", "--service", "s", "--concurrency", "x"], "--concurrency"),
        (["inspect", "--watch", "-1"], "--watch"),
    ],
)
def test_cli_bad_flag_value_is_a_usage_error_naming_the_flag(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _usage_error(argv, capsys)

    assert f"argument {named}" in err


def test_cli_log_level_before_or_after_the_subcommand_agree() -> None:
    parser = app._parser()

    before = parser.parse_args(["--log-level", "debug", "ping"])
    after = parser.parse_args(["ping", "--log-level", "debug"])
    neither = parser.parse_args(["ping"])

    assert before.log_level == after.log_level == "DEBUG"
    assert neither.log_level == "INFO"


# -- json logs ------------------------------------------------------------------------


def test_json_formatter_writes_one_parsable_line_with_fields_and_traceback() -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        record = logging.getLogger("busignal.worker").makeRecord(
            "busignal.worker", logging.ERROR, __file__, 1, "failed %s", ("x",),
            sys.exc_info(), extra={"busignal_signal": "order_paid"},
        )  # fmt: skip

    line = JsonFormatter().format(record)

    entry = json.loads(line)
    assert "\n" not in line
    assert entry["message"] == "failed x"
    assert entry["signal"] == "order_paid"
    assert entry["level"] == "ERROR"
    assert "ValueError: bad" in entry["exception"]
