"""Print the declared floors of busignal's dependencies as exact pins.

``redis[hiredis]>=5.0.1`` becomes ``redis[hiredis]==5.0.1``: one line per
requirement of ``[project] dependencies`` and of the ``test`` extra, for
``pip install``. scripts/test.sh installs them in a second virtualenv and
runs the unit tier there, so that a floor pyproject.toml declares is one
that works, not a guess. A requirement without a ``>=`` floor is printed
as it is (pip picks its newest release).

Usage: python scripts/floors.py [path/to/pyproject.toml]
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

#: name, optional [extras], then the floor; an upper bound after a comma is
#: dropped (the pin is below it).
_FLOOR = re.compile(r"^\s*([A-Za-z0-9_.\-]+(?:\[[^\]]*\])?)\s*>=\s*([^,\s]+)")


def pin(requirement: str) -> str:
    """``name[extras]>=X`` as ``name[extras]==X``, keeping any ``; marker``;
    anything else unchanged."""
    spec, semicolon, marker = requirement.partition(";")
    match = _FLOOR.match(spec)
    if match is None:
        return requirement.strip()
    name, version = match.groups()
    return f"{name}=={version}" + (f" ;{marker}" if semicolon else "")


def floors(pyproject: Path) -> list[str]:
    """The pins of the runtime dependencies and of the test extra."""
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = [
        *project.get("dependencies", []),
        *project.get("optional-dependencies", {}).get("test", []),
    ]
    return [pin(r) for r in requirements]


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else Path(__file__).parent.parent
    pyproject = path / "pyproject.toml" if path.is_dir() else path
    print("\n".join(floors(pyproject)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
