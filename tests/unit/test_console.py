"""The CLI's output: plain through a pipe, rich on a terminal, never a name cut."""

from __future__ import annotations

import io
import re

import pytest

from busignal.cli.console import Console, plain_table, rich_available

LONG = "orders.fulfilment.warehouse_pick_list_generated_for_region_eu"
COLUMNS = ["signal", "length", "dead", "service", "consumers", "pending", "lag"]
ROWS = [
    [LONG, 12, 0, "billing", 2, 0, 0],
    ["order_paid", 3, 1, "billing", 1, 0, 0],
]

needs_rich = pytest.mark.skipif(not rich_available(), reason="rich not installed")


class Terminal(io.StringIO):
    """A buffer that says it is a terminal, as a tty stdout does."""

    def isatty(self) -> bool:
        return True

    def text(self) -> str:
        """What was written, without the escape sequences of styles."""
        return re.sub(r"\x1b\[[0-9;]*m", "", self.getvalue())


def _row_of(text: str, name: str) -> str:
    [line] = [line for line in text.splitlines() if name in line]
    return line


def test_plain_table_prints_each_row_whole_on_one_line() -> None:
    cells = [[str(c) for c in row] for row in ROWS]

    text = plain_table("signals (2)", COLUMNS, cells)

    lines = text.splitlines()
    assert lines[0] == "signals (2)"
    assert lines[1].split() == COLUMNS
    assert len(lines) == 2 + 1 + len(ROWS)  # title, headings, rule, rows
    assert _row_of(text, LONG).split() == [LONG, "12", "0", "billing", "2", "0", "0"]
    assert lines[-1].split()[0] == "order_paid"
    assert all(line == line.rstrip() for line in lines)


def test_console_to_a_pipe_prints_plain_text_even_with_rich(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    out = io.StringIO()

    Console(out=out).table("signals (2)", COLUMNS, ROWS)

    assert out.getvalue().rstrip("\n") == plain_table(
        "signals (2)", COLUMNS, [[str(c) for c in row] for row in ROWS]
    )


@needs_rich
def test_console_on_a_narrow_terminal_keeps_names_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    out = Terminal()

    Console(out=out).table("signals (2)", COLUMNS, ROWS)

    assert LONG in _row_of(out.text(), LONG)


@needs_rich
def test_console_on_a_terminal_draws_a_table_that_fits_with_rich(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    out = Terminal()
    console = Console(out=out)

    console.table("short", ["signal", "dead"], [["order_paid", 1]])

    assert console.is_rich
    assert "│ order_paid │ 1    │" in out.text()


@needs_rich
def test_console_on_a_terminal_wraps_only_the_columns_named_to_wrap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    out = Terminal()
    receiver = "busignal.examples.notifications.welcome_email"
    response = "raised RemoteError: " + "word " * 30

    Console(out=out).table(
        "a send", ["receiver", "response"], [[receiver, response]], wrap=["response"]
    )

    text = out.text()
    assert all(len(line) <= 80 for line in text.splitlines())
    assert f"│ {receiver} │ raised RemoteError:" in text
    assert text.count("word") == 30
