"""``python -m benchmarks [--smoke] [--write] [--rounds N] [--signed] [--soak [N]]``.

Exit codes: 0 the run completed (targets missed or not, they are reported,
not asserted); 1 a run failed (a worker died, Redis stopped); 2 something
the harness needs is missing (redis-server).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks import others, policies, report
from benchmarks.fleet import Fleet
from benchmarks.procs import MissingTool, RedisServer
from benchmarks.scenarios import Plan, Run
from benchmarks.stats import Figures
from busignal import Bus


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="busignal against a hand-written redis-py loop, interleaved.",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="a few hundred events, one round"
    )
    parser.add_argument(
        "--write", action="store_true", help="rewrite README results and results.png"
    )
    parser.add_argument("--rounds", type=int, help="rounds (default 5)")
    parser.add_argument(
        "--no-others", action="store_true", help="skip Celery, taskiq and FastStream"
    )
    parser.add_argument(
        "--signed",
        action="store_true",
        help="sign every entry and reply (a random secret, in BUSIGNAL_SECRET "
        "for the workers): the cost of signing and the handled-id record",
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="instead: a local Redis Cluster: one worker's drain rate against one "
        "Redis's, and throughput with 1, 2, 3 partitions",
    )
    parser.add_argument(
        "--soak",
        type=int,
        nargs="?",
        const=1_000_000,
        metavar="N",
        help="instead: one worker handles N events (default 1,000,000) while its "
        "memory is sampled; with --write, draws soak.png",
    )
    return parser


def measure(server: RedisServer, plan: Plan, logs: Path, with_others: bool) -> Figures:
    """Run every round against ``server``; the workers are stopped afterwards."""
    client = server.client()
    bus = Bus(server.url, timeout=10, secret=os.environ.get("BUSIGNAL_SECRET"))
    figures = Figures()
    fleet = Fleet(server.url, client, logs)
    run = Run(bus, client, fleet, plan, figures)
    try:
        run.start_workers()
        for index in range(plan.rounds):
            started = time.perf_counter()
            run.round(index)
            print(
                f"round {index + 1}/{plan.rounds}: "
                f"{time.perf_counter() - started:.1f}s",
                flush=True,
            )
        run.record_peak_memory()
    finally:
        fleet.stop()
        bus.close()
    policies.run_all(server.url, plan.rounds, plan.publishes, logs, figures)
    if with_others:
        others.run_all(server, plan, logs, figures)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        RedisServer.binary()
    except MissingTool as exc:
        print(f"benchmarks: {exc}", file=sys.stderr)
        return 2
    if args.cluster:
        from benchmarks import cluster

        cluster.main(500 if args.smoke else 20_000, smoke=args.smoke)
        return 0
    if args.soak is not None:
        return _soak(args.soak, args.write)
    if args.signed:  # the workers inherit the environment
        os.environ["BUSIGNAL_SECRET"] = secrets.token_hex(32)
    else:
        os.environ.pop("BUSIGNAL_SECRET", None)
    plan = Plan.smoke() if args.smoke else Plan()
    if args.rounds:
        plan = Plan(**{**_fields(plan), "rounds": args.rounds})
    with tempfile.TemporaryDirectory(prefix="busignal-bench-") as tmp:
        server = RedisServer(Path(tmp))
        server.start()
        try:
            version = server.version()
            figures = measure(server, plan, Path(tmp), not args.no_others)
        except RuntimeError as exc:
            print(f"benchmarks: {exc}", file=sys.stderr)
            return 1
        finally:
            server.stop()
    sides = [] if args.no_others else others.sides()
    absent = others.absent()
    command = "python -m benchmarks " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    info = report.machine(version, command.strip())
    print()
    print(info)
    print()
    print(report.table(figures, sides, absent=absent))
    print()
    note = " (smoke run: too few events to mean anything)" if args.smoke else ""
    print(f"targets{note}:")
    lines = [t.line() for t in report.targets(figures)]
    print("\n".join(lines))
    for line in others.skipped() + policies.skipped():
        print(line)
    if args.write:
        text = "\n\n".join(
            [
                info,
                report.table(figures, sides, markdown=True, absent=absent),
                "```\n" + "\n".join(lines) + "\n```",
                "![round trips and drain rates](results.png)",
            ]
        )
        print(f"wrote {report.write_readme(text)}")
        print(report.write_plot(figures, sides))
    return 0


#: The worker's default dead-letter cap (``WorkerConfig.dead_maxlen``).
_DEAD_CAP = 100_000


def _soak(events: int, write: bool) -> int:
    from benchmarks import soak

    if events < 1:
        print(
            f"benchmarks: --soak takes a positive count, not {events}", file=sys.stderr
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="busignal-soak-") as tmp:
        server = RedisServer(Path(tmp))
        server.start()
        try:
            version = server.version()
            result = soak.run(server, events, Path(tmp))
        except RuntimeError as exc:
            print(f"benchmarks: {exc}", file=sys.stderr)
            return 1
        finally:
            server.stop()
    print(report.machine(version, "python -m benchmarks " + shlex.join(sys.argv[1:])))
    print("\n".join(result.verdicts(_DEAD_CAP)))
    if write:
        print(soak.write_plot(result))
    return 0


def _fields(plan: Plan) -> dict[str, int]:
    return {name: getattr(plan, name) for name in Plan.__slots__}


if __name__ == "__main__":
    sys.exit(main())
