"""The public API as a user sees it."""

from __future__ import annotations

import importlib
import subprocess
import sys

import busignal


def test_public_api_all_is_sorted() -> None:
    assert busignal.__all__ == sorted(busignal.__all__)


def test_public_api_every_name_in_all_is_importable() -> None:
    module = importlib.import_module("busignal")

    missing = [name for name in busignal.__all__ if not hasattr(module, name)]

    assert missing == []


def test_public_api_all_has_no_duplicates() -> None:
    assert len(set(busignal.__all__)) == len(busignal.__all__)


def test_public_api_exports_the_django_names() -> None:
    assert {"Signal", "receiver"} <= set(busignal.__all__)


def test_public_api_errors_share_one_base() -> None:
    errors = [
        busignal.BusUnavailable,
        busignal.ConfigurationError,
        busignal.RemoteError,
        busignal.SerializationError,
        busignal.SignalTimeout,
    ]

    assert all(issubclass(error, busignal.BusignalError) for error in errors)


def test_public_api_module_runs_as_a_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "busignal", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert done.returncode == 0
    assert "worker" in done.stdout
