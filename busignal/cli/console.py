"""Tables and progress for the CLI: ``rich`` on a terminal, plain text otherwise.

``pip install 'busignal[cli]'`` brings rich. It is used only when the
output is a terminal: through a pipe or into a file (or with
``plain=True``, or without rich) the same calls print plain aligned text,
one row a line, nothing folded or cut, so ``busignal inspect | grep NAME``
finds whole names. On a terminal a table is drawn by rich only if it fits
the terminal's width with every cell whole (only the columns a caller
names as ``wrap`` may wrap); a table too wide for that is printed plain,
and the terminal wraps its long lines.
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
        if not plain and _is_terminal(self.out) and rich_available():
            from rich.console import Console as RichConsole

            self._rich = RichConsole(file=self.out, highlight=False)

    @property
    def is_rich(self) -> bool:
        return self._rich is not None

    def line(self, text: str = "") -> None:
        """Print one line of text (rich markup is not interpreted)."""
        if self._rich is not None:
            # soft_wrap: the terminal wraps a long line; no newline is added
            # inside it (a URL or namespace stays whole when copied)
            self._rich.print(text, markup=False, soft_wrap=True)
        else:
            print(text, file=self.out, flush=True)

    def table(
        self,
        title: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[object]],
        *,
        wrap: Sequence[str] = (),
    ) -> None:
        """Print rows under column headings, with a title above.

        No cell is ever folded or cut, except that on a terminal the
        ``wrap`` columns (free text, such as a response) may wrap onto more
        lines within their cell.
        """
        cells = [[str(c) for c in row] for row in rows]
        if self._rich is not None and self._rich_table(title, columns, cells, wrap):
            return
        print(plain_table(title, columns, cells), file=self.out, flush=True)

    def _rich_table(
        self,
        title: str,
        columns: Sequence[str],
        cells: list[list[str]],
        wrap: Sequence[str],
    ) -> bool:
        """Draw the table with rich if it fits the terminal whole; else False.

        rich fits a table to the terminal by folding or cutting cells; a
        name cut short is useless (and a grep of the scrollback misses it),
        so each column that may not wrap is held at its widest cell.
        """
        from rich.measure import Measurement
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        narrowest = Table(title=title, title_justify="left")
        for index, column in enumerate(columns):
            widest = max([len(column), *(len(row[index]) for row in cells)])
            if column in wrap:
                table.add_column(column, overflow="fold")
                narrowest.add_column(column, max_width=min(widest, _WRAP_MIN))
            else:
                for each in (table, narrowest):
                    each.add_column(column, no_wrap=True, min_width=widest)
        for row in cells:
            table.add_row(*row)
            narrowest.add_row(*row)
        options = self._rich.options.update_width(_UNBOUNDED)
        if Measurement.get(self._rich, options, narrowest).minimum > self._rich.width:
            return False
        self._rich.print(table)
        return True

    @contextmanager
    def progress(self, label: str, total: int) -> Iterator[Progress]:
        """A progress bar for ``total`` steps; call ``advance(n)`` as they pass."""
        if self._rich is not None:
            from rich.progress import Progress as RichProgress

            with RichProgress(console=self._rich, transient=False) as bar:
                yield _RichProgress(bar, bar.add_task(label, total=total))
            return
        yield _PlainProgress(self.out, label, total)


#: The narrowest a ``wrap`` column may get before a table counts as too wide.
_WRAP_MIN = 20
_UNBOUNDED = 1_000_000


def _is_terminal(out: TextIO) -> bool:
    """True if ``out`` is a terminal (not a pipe, a file or a test's buffer)."""
    try:
        return out.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def plain_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]
) -> str:
    """An aligned text table: title, headings, a rule, one line per row."""
    widths = [len(c) for c in columns]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=False)]
    lines = [title] if title else []
    lines.append(
        "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()
    )
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip()
        for row in rows
    ]
    return "\n".join(lines)
