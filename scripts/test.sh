#!/usr/bin/env bash
# The one test command: sets up everything on a fresh machine, then runs
# lint, type check and the whole test suite. Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test,dev]'

# Integration tests start their own redis-server processes on free ports;
# the dashboard's are driven in Debian's chromium (Playwright never downloads
# a browser here); the README's first command runs in a network namespace
# brought up with ip (iproute2). Where apt-get cannot install them, those
# tests skip and say why.
missing=""
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
if [ -n "$missing" ]; then
  echo "installing:$missing" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086  # one word per package
  $SUDO apt-get install -y -qq $missing >/dev/null
fi
# The TLS tests make a throwaway CA with openssl.
if ! command -v openssl >/dev/null 2>&1; then
  echo "openssl not found: installing it" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq openssl >/dev/null
fi

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
# The declared floors: the unit tier again, with every dependency at the
# oldest release pyproject.toml allows (scripts/floors.py), in a virtualenv
# of its own, rebuilt only when the floors change. Before the whole suite, so
# that the suite's summary is the last line.
floors=$(.venv/bin/python scripts/floors.py)
if [ ! -x .venv-floors/bin/python ] || [ "$(cat .venv-floors/floors.txt 2>/dev/null)" != "$floors" ]; then
  echo "== installing the declared floors in .venv-floors"
  rm -rf .venv-floors
  "$PYTHON" -m venv .venv-floors
  .venv-floors/bin/python -m pip install --quiet --upgrade pip
  printf '%s\n' "$floors" >.venv-floors/requirements.txt
  .venv-floors/bin/python -m pip install --quiet -r .venv-floors/requirements.txt
  .venv-floors/bin/python -m pip install --quiet --no-deps -e .
  printf '%s\n' "$floors" >.venv-floors/floors.txt # written last: a complete install
fi
echo "== pytest tests/unit at the declared floors"
.venv-floors/bin/pytest tests/unit -q -p no:cacheprovider

echo "== pytest"
.venv/bin/pytest "$@"
