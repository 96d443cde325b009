"""The public API as a user sees it."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import busignal


def test_public_api_all_is_sorted() -> None:
    assert busignal.__all__ == sorted(busignal.__all__)


def _public_names_of_init() -> set[str]:
    """Every public name busignal/__init__.py defines or imports."""
    tree = ast.parse(Path(busignal.__file__).read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update((a.asname or a.name).partition(".")[0] for a in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return {name for name in names if not name.startswith("_")}


def test_public_api_all_is_complete() -> None:
    assert set(busignal.__all__) == _public_names_of_init()


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
