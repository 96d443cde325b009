"""The README's first command, as a new user runs it on a machine with no Redis.

The command is read from the README itself, so the test follows the README
when it changes. Its install steps run in a copy of the checkout (a fresh
virtualenv, ``pip install`` as written); its demo step then runs in a
network namespace of its own, where nothing answers on localhost:6379,
with a PATH that holds no ``redis-server`` nor ``valkey-server``: the
server the demo uses must come from what the install step installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# what the demo step may call besides the virtualenv's own scripts
_TOOLS = ("bash", "sh", "env", "ip")
_NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache",
    "*.egg-info", "build", "dist",
)  # fmt: skip


def readme_first_command() -> str:
    """The first command in a README code block that runs ``busignal demo``."""
    inside = False
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("```"):
            inside = not inside
        elif inside and "busignal demo" in line:
            return line.removeprefix("$ ").split("#", 1)[0].strip()
    raise AssertionError("the README shows no command that runs 'busignal demo'")


def _steps(command: str) -> tuple[str, str]:
    """The install steps and the demo step of ``a && b && busignal demo``."""
    parts = [part.strip() for part in command.split("&&")]
    assert "busignal demo" in parts[-1], f"the demo is not the last step: {command}"
    return " && ".join(parts[:-1]), parts[-1]


def _unshare_allowed() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    return probe.returncode == 0


def test_the_readme_names_its_first_command_with_the_demo() -> None:
    install, demo = _steps(readme_first_command())

    assert "pip install" in install
    assert demo.endswith("busignal demo")


@pytest.mark.timeout(600)
def test_readme_first_command_runs_the_demo_with_no_redis_anywhere(
    tmp_path: Path,
) -> None:
    if not _unshare_allowed():
        pytest.skip(
            "this machine does not allow 'unshare -n' (a network namespace of "
            "its own, with 'ip' to bring up its loopback): run as root or "
            "where unprivileged user namespaces are enabled"
        )
    install, demo = _steps(readme_first_command())
    clone = tmp_path / "clone"
    shutil.copytree(ROOT, clone, ignore=_NOT_COPIED, symlinks=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUSIGNAL_")}
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)

    installed = subprocess.run(
        ["bash", "-c", install],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr

    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in _TOOLS:
        found = shutil.which(tool)
        assert found is not None, f"{tool} is needed to run the demo step"
        (tools / tool).symlink_to(found)
    bare = {"PATH": str(tools), "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    ran = subprocess.run(
        ["unshare", "-n", "env", "-i", *(f"{k}={v}" for k, v in bare.items()),
         "bash", "-c", f"ip link set lo up && ! command -v redis-server"
         f" && ! command -v valkey-server && {demo}"],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip

    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "an embedded server" in ran.stdout
    assert "busignal.examples.billing.charge" in ran.stdout
    assert "embedded Redis stopped and removed" in ran.stdout
