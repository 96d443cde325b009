"""The benchmark harness runs end to end, and says what is missing when it cannot.

Timings are never asserted: the machines tests run on are shared.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.scenarios import SCENARIOS

REPO = Path(__file__).resolve().parents[2]


def _run(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.timeout(150)
def test_benchmarks_smoke_prints_every_scenario() -> None:
    result = _run("--smoke")

    assert result.returncode == 0, result.stderr
    for scenario in SCENARIOS:
        assert scenario in result.stdout, f"{scenario} missing:\n{result.stdout}"
    assert "targets" in result.stdout
    # The fan-out target is read beside what the baseline's own fan-out costs.
    assert "the baseline loop's own 4-service p50 is" in result.stdout
    # FastStream is measured where it is installed (the bench extra has it).
    header, *rows = result.stdout.split("\nscenario", 1)[1].splitlines()
    assert "faststream" in header
    drain = next(r for r in rows if r.startswith("drain_sync_1w")).split()
    if importlib.util.find_spec("faststream") is not None:
        assert drain[-1].replace(",", "").isdigit(), drain  # a measured rate
    else:
        assert drain[-2:] == ["not", "installed"], drain


@pytest.mark.timeout(150)
def test_benchmarks_smoke_without_faststream_or_celery_says_not_installed(
    tmp_path: Path,
) -> None:
    for name in ("faststream", "celery"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(
            f'raise ImportError("No module named {name!r}")\n'
        )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"}

    result = _run("--smoke", env=env)

    assert result.returncode == 0, result.stderr
    assert "faststream: not installed (No module named 'faststream'" in result.stdout
    assert "celery: not installed (No module named 'celery'" in result.stdout
    publish = next(r for r in result.stdout.splitlines() if r.startswith("publish_one"))
    # the two hidden here, and taskiq where the test extra lacks it
    missing = 2 + (importlib.util.find_spec("taskiq") is None)
    assert publish.count("not installed") == missing


@pytest.mark.timeout(150)
def test_benchmarks_cluster_smoke_prints_each_partition_count() -> None:
    result = _run("--cluster", "--smoke")

    assert result.returncode == 0, result.stderr
    assert "cluster drain ratio: " in result.stdout
    for partitions in (1, 2, 3):
        assert f"cluster partitions={partitions} events=500" in result.stdout


def test_benchmarks_without_redis_server_names_it(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}

    result = _run("--smoke", env=env)

    assert result.returncode != 0
    assert "redis-server" in result.stderr


@pytest.mark.timeout(150)
def test_benchmarks_soak_small_prints_memory_and_bounds() -> None:
    result = _run("--soak", "20000")

    assert result.returncode == 0, result.stderr
    assert "soak: 20,000 events" in result.stdout
    for measure in ("worker RSS growth", "events stream length", "dead letters"):
        assert measure in result.stdout, f"{measure} missing:\n{result.stdout}"
    # Too few events to judge growth after the 100k warm-up: it says so.
    assert "N/A   worker RSS growth" in result.stdout


def test_benchmarks_soak_refuses_a_count_below_one() -> None:
    result = _run("--soak", "0")

    assert result.returncode == 2
    assert "--soak takes a positive count, not 0" in result.stderr
