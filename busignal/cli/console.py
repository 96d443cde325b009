"""Tables and progress for the CLI: ``rich`` when installed, plain text otherwise.

``pip install 'busignal[cli]'`` brings rich; without it (or with
``plain=True``, or ``NO_COLOR``-style pipes) the same calls print aligned
text, so scripts and tests can read either.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TextIO

__all__ = ["Console", "Progress", "rich_available"]


def rich_available() -> bool:
    """True if ``rich`` can be imported."""
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


class Progress(Protocol):
    """What a progress context hands out: ``advance(n)``."""

    def advance(self, amount: int) -> None: ...


class _PlainProgress:
    """Prints a line at every tenth of the way (a log, not a redrawn bar)."""

    def __init__(self, out: TextIO, label: str, total: int) -> None:
        self.out, self.label, self.total = out, label, max(total, 1)
        self.done = 0
        self._printed = 0  # tenths of the way already printed

    def advance(self, amount: int) -> None:
        self.done = min(self.total, self.done + amount)
        tenth = self.done * 10 // self.total
        if tenth > self._printed:
            self._printed = tenth
            bar = "#" * (tenth * 2)
            print(
                f"  {self.label} [{bar:<20}] {self.done}/{self.total}",
                file=self.out,
                flush=True,
            )


class _RichProgress:
    def __init__(self, progress: Any, task: Any) -> None:
        self._progress, self._task = progress, task

    def advance(self, amount: int) -> None:
        self._progress.advance(self._task, amount)


class Console:
    """Where the CLI prints: lines, tables and progress bars."""

    def __init__(self, *, plain: bool = False, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self._rich: Any = None
        if not plain and rich_available():
            from rich.console import Console as RichConsole

            self._rich = RichConsole(file=self.out, highlight=False)

    @property
    def is_rich(self) -> bool:
        return self._rich is not None

    def line(self, text: str = "") -> None:
        """Print one line of text (rich markup is not interpreted)."""
        if self._rich is not None:
            self._rich.print(text, markup=False)
        else:
            print(text, file=self.out, flush=True)

    def table(
        self, title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]
    ) -> None:
        """Print rows under column headings, with a title above."""
        cells = [[str(c) for c in row] for row in rows]
        if self._rich is not None:
            from rich.table import Table

            table = Table(title=title, title_justify="left")
            for column in columns:
                table.add_column(column, overflow="fold")
            for row in cells:
                table.add_row(*row)
            self._rich.print(table)
            return
        print(plain_table(title, columns, cells), file=self.out, flush=True)

    @contextmanager
    def progress(self, label: str, total: int) -> Iterator[Progress]:
        """A progress bar for ``total`` steps; call ``advance(n)`` as they pass."""
        if self._rich is not None:
            from rich.progress import Progress as RichProgress

            with RichProgress(console=self._rich, transient=False) as bar:
                yield _RichProgress(bar, bar.add_task(label, total=total))
            return
        yield _PlainProgress(self.out, label, total)


def plain_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]
) -> str:
    """An aligned text table: title, headings, a rule, one line per row."""
    widths = [len(c) for c in columns]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=False)]
    lines = [title] if title else []
    lines.append("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip()
        for row in rows
    ]
    return "\n".join(lines)
