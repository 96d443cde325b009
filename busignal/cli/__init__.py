"""The ``busignal`` command."""

from __future__ import annotations

from busignal.cli.app import main

__all__ = ["main"]
