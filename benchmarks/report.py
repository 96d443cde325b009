"""The results as text: the table, the targets, the machine, README and plot.

``--write`` regenerates the part of ``benchmarks/README.md`` between the
results markers and ``benchmarks/results.png``, so the published figures
always come from one run of the harness, with the machine they came from.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
from collections.abc import Collection, Sequence
from pathlib import Path

from benchmarks.scenarios import BASELINE, BUSIGNAL, SCENARIOS
from benchmarks.stats import Figures, Target, ratio

__all__ = ["machine", "table", "targets", "write_plot", "write_readme"]

HERE = Path(__file__).resolve().parent
START, END = "<!-- results:start -->", "<!-- results:end -->"
LATENCIES = ("send_rtt_1svc", "send_rtt_4svc")
UNITS = {"publish": "events/s", "drain": "events/s", "rss": "MB"}


def _metrics(scenario: str) -> list[tuple[str, str]]:
    """(row key in Figures, unit) for one scenario."""
    if scenario in LATENCIES:
        return [(f"{scenario} p{q}", "ms") for q in (50, 90, 99)]
    return [(scenario, UNITS[scenario.split("_")[0]])]


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:.3f}"
    if unit == "MB":
        return f"{value:.1f}"
    return f"{value:,.0f}"


def rows(
    figures: Figures, others: Sequence[str] = (), absent: Collection[str] = ()
) -> list[list[str]]:
    """Table rows: scenario, unit, busignal, baseline, ratio, then other sides.

    A side in ``absent`` (its library is not installed) says so in its cells.
    """
    out = []
    for scenario in SCENARIOS:
        for key, unit in _metrics(scenario):
            ours, base = figures.median(key, BUSIGNAL), figures.median(key, BASELINE)
            r = ratio(ours, base)
            row = [key, unit, _fmt(ours, unit), _fmt(base, unit)]
            row.append("-" if r is None else f"{r:.2f}x")
            row += [
                "not installed"
                if side in absent
                else _fmt(figures.median(key, side), unit)
                for side in others
            ]
            out.append(row)
    return out


def table(
    figures: Figures,
    others: Sequence[str] = (),
    markdown: bool = False,
    absent: Collection[str] = (),
) -> str:
    header = ["scenario", "unit", BUSIGNAL, BASELINE, "busignal/baseline", *others]
    body = rows(figures, others, absent)
    if markdown:
        lines = [header, ["---"] * len(header), *body]
        return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *body]
    )


def targets(figures: Figures) -> list[Target]:
    """The issue's goals, each a ratio against the baseline of the same run."""

    def mid(key: str, side: str = BUSIGNAL) -> float | None:
        return figures.median(key, side)

    def vs_base(key: str) -> float | None:
        return ratio(mid(key), mid(key, BASELINE))

    return [
        Target("send p50 vs baseline", vs_base("send_rtt_1svc p50"), 1.2, True),
        Target(
            "send to 4 services p50 vs 1-service baseline",
            ratio(mid("send_rtt_4svc p50"), mid("send_rtt_1svc p50", BASELINE)),
            2.0,
            True,
            context=_baseline_fan_out(figures),
        ),
        Target("publish_many vs pipelined XADD", vs_base("publish_many"), 0.8, False),
        Target("publish vs plain XADD loop", vs_base("publish_one"), 0.9, False),
        Target(
            "drain, 1 worker, sync vs baseline", vs_base("drain_sync_1w"), 0.7, False
        ),
        Target(
            "drain, 1 worker, async vs sync drain",
            ratio(mid("drain_async_1w"), mid("drain_sync_1w")),
            0.5,
            False,
        ),
        Target("idle worker RSS", mid("rss_idle"), 40.0, True, " MB"),
    ]


def _baseline_fan_out(figures: Figures) -> str:
    """How much the baseline loop itself pays for four services over one."""
    own = ratio(
        figures.median("send_rtt_4svc p50", BASELINE),
        figures.median("send_rtt_1svc p50", BASELINE),
    )
    if own is None:
        return ""
    return (
        f"the baseline loop's own 4-service p50 is {own:.2f}x its 1-service one "
        f"({os.cpu_count()} CPUs for 4 workers, a caller and Redis)"
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def machine(redis_version: str, command: str) -> str:
    """Where and how the figures were taken, as a few lines of text."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            f"- date: {now}",
            f"- machine: {os.cpu_count()} CPUs ({_cpu_model()}), {_memory()} RAM",
            f"- redis-server {redis_version} on loopback; Python "
            f"{platform.python_version()}",
            f"- command: `{command}`",
        ]
    )


def write_readme(text: str) -> Path:
    """Replace the results section of benchmarks/README.md with ``text``."""
    path = HERE / "README.md"
    old = path.read_text() if path.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in old or END not in old:
        old = old.rstrip() + f"\n\n{START}\n{END}\n"
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    path.write_text(pattern.sub(lambda _: f"{START}\n{text}\n{END}", old, count=1))
    return path


def write_plot(figures: Figures, others: Sequence[str] = ()) -> str:
    """Draw results.png; returns a line saying what was done (or why not)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullFormatter
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install -e .[bench])"
    measured = {side for _, side in figures.rounds}
    sides = [side for side in (BUSIGNAL, BASELINE, *others) if side in measured]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, scenario in zip(axes[:2], LATENCIES, strict=True):
        for side in sides:
            ms = sorted(s * 1000 for s in figures.samples.get((scenario, side), []))
            if ms:
                ys = [(i + 1) / len(ms) for i in range(len(ms))]
                ax.plot(ms, ys, label=side)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # labels of minor ticks overlap
        ax.set_xlabel("round trip (ms, log)")
        ax.set_ylabel("fraction of sends")
        ax.set_title(scenario.replace("_", " "))
        ax.legend()
    drains = ["drain_sync_1w", "drain_async_1w", "drain_sync_2w", "drain_sync_4w"]
    width = 0.8 / len(sides)
    for i, side in enumerate(sides):
        values = [figures.median(d, side) or 0.0 for d in drains]
        ax = axes[2]
        ax.bar([x + i * width for x in range(len(drains))], values, width, label=side)
    axes[2].set_xticks([x + 0.4 - width / 2 for x in range(len(drains))], drains)
    # Log scale: the task queues' few thousand a second would not show
    # beside a few hundred thousand.
    axes[2].set_yscale("log")
    axes[2].set_ylabel("events/s (median of rounds, log)")
    axes[2].set_title("drain rate")
    axes[2].legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(sides))
    fig.tight_layout()
    path = HERE / "results.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"wrote {path}"
