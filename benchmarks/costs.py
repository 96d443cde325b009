"""Instructions per event: ``python -m benchmarks.costs [--events N] [--async]``.

Wall-clock rates on a shared machine move by a third from run to run;
instruction counts do not. This drains a backlog of the benchmark's
``x + 1`` events with one worker, in a process run under ``valgrind
--tool=callgrind``, twice (a small backlog and a large one), and prints
the difference in instructions divided by the difference in events: the
worker's own cost per event, start-up excluded. ``--publish`` counts a
sender's ``publish`` and ``publish_many`` the same way, beside redis-py's
plain and pipelined XADD. ``--profile FILE`` instead records the large
drain with py-spy (natively, flamegraph SVG) to show where the time goes.

The callgrind output files are kept (their paths are printed) for
``callgrind_annotate``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import redis

from benchmarks.procs import REPO, RedisServer

__all__ = ["main"]

SIGNALS = {False: ("bench.drain", "drain"), True: ("bench.adrain", "adrain")}


def _fill(url: str, signal: str, count: int) -> None:
    from benchmarks import receivers
    from busignal import Bus

    view = {"bench.drain": receivers.drain, "bench.adrain": receivers.adrain}[signal]
    bus = Bus(url)
    try:
        bound = view.using(bus=bus)
        for first in range(0, count, 1000):
            last = min(first + 1000, count)
            bound.publish_many(None, [{"x": x} for x in range(first, last)])
    finally:
        bus.close()


def _child_drain(url: str, signal: str, service: str, count: int) -> None:
    """Serve ``signal`` until ``count`` events were handled, then stop."""
    import benchmarks.receivers  # noqa: F401  (connects the receivers)
    from busignal import Bus
    from busignal.worker.worker import Worker, WorkerConfig

    bus = Bus(url)
    worker = Worker(bus, WorkerConfig(service=service), signals_to_serve=[signal])

    def watch() -> None:
        while worker.handled < count:
            time.sleep(0.02)
        worker.stop()

    threading.Thread(target=watch, daemon=True).start()
    asyncio.run(worker.serve())
    bus.close()


def _child_baseline_drain(url: str, stream: str, group: str, count: int) -> None:
    """The baseline loop until ``count`` entries are acknowledged, then exit."""
    from benchmarks import baseline

    client = redis.Redis.from_url(url)
    serving = threading.Thread(
        target=baseline.serve, args=(url, stream, group), daemon=True
    )
    serving.start()  # serve() never returns: it stops with the process
    while True:
        time.sleep(0.02)
        info = client.xinfo_groups(stream)[0]
        if (info["entries-read"] or 0) >= count and info["pending"] == 0:
            return


def _child_publish(url: str, count: int, how: str) -> None:
    """``count`` events published one at a time (``one``) or 100 at a time."""
    from benchmarks import baseline, receivers
    from busignal import Bus

    if how.startswith("xadd"):
        client = redis.Redis.from_url(url)
        if how == "xadd-one":
            baseline.publish_loop(client, "bl.sink", count)
        else:
            baseline.publish_pipelined(client, "bl.sink", count, 100)
        client.close()
        return
    bus = Bus(url)
    view = receivers.sink.using(bus=bus)
    if how == "one":
        for x in range(count):
            view.publish(None, x=x)
    else:
        for first in range(0, count, 100):
            view.publish_many(None, [{"x": x} for x in range(first, first + 100)])
    bus.close()


def _python(*args: str) -> list[str]:
    return [sys.executable, "-m", "benchmarks.costs", *args]


def _callgrind(command: Sequence[str], out: Path) -> int:
    """Run ``command`` under callgrind; its total instruction count."""
    subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command],
        check=True,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M)
    if match is None:
        raise RuntimeError(f"no instruction total in {out}")
    return int(match.group(1))


def _group(client: redis.Redis, stream: str, service: str) -> None:
    client.delete(stream)
    client.xgroup_create(stream, service, id="0", mkstream=True)


def _drain_cost(server: RedisServer, is_async: bool, sizes: tuple[int, int]) -> None:
    from benchmarks import baseline

    signal, service = SIGNALS[is_async]
    stream = f"busignal:{{sig:{signal}}}:events"
    client = server.client()
    keep = Path(tempfile.mkdtemp(prefix="busignal-costs-"))
    for name in ("busignal", "baseline"):
        totals = []
        for size in sizes:
            out = keep / f"callgrind.drain.{name}.{service}.{size}"
            if name == "busignal":
                _group(client, stream, service)
                _fill(server.url, signal, size)
                child = _python("--child-drain", server.url, signal, service, str(size))
            else:
                _group(client, "bl.drain", "drain")
                baseline.publish_pipelined(client, "bl.drain", size, 1000)
                child = _python("--child-baseline", server.url, str(size))
            totals.append(_callgrind(child, out))
            print(f"  {size:>7} events: {totals[-1]:>14,} instructions ({out})")
        per = (totals[1] - totals[0]) / (sizes[1] - sizes[0])
        kind = "async" if is_async and name == "busignal" else "sync"
        print(f"{name} drain ({kind} x + 1): {per:,.0f} instructions per event")


def _publish_cost(server: RedisServer, sizes: tuple[int, int]) -> None:
    keep = Path(tempfile.mkdtemp(prefix="busignal-costs-"))
    for how in ("one", "xadd-one", "many", "xadd-many"):
        totals = []
        for size in sizes:
            out = keep / f"callgrind.publish.{how}.{size}"
            command = _python("--child-publish", server.url, str(size), how)
            totals.append(_callgrind(command, out))
        per = (totals[1] - totals[0]) / (sizes[1] - sizes[0])
        name = {"one": "busignal publish", "many": "busignal publish_many"}.get(
            how, f"redis-py {how}"
        )
        print(f"{name}: {per:,.0f} instructions per event")


def _profile(server: RedisServer, is_async: bool, count: int, path: Path) -> None:
    signal, service = SIGNALS[is_async]
    client = server.client()
    _group(client, f"busignal:{{sig:{signal}}}:events", service)
    _fill(server.url, signal, count)
    subprocess.run(
        [_py_spy() or "py-spy", "record", "-r", "500", "-o", str(path), "--",
         *_python("--child-drain", server.url, signal, service, str(count))],
        check=True, cwd=REPO,
    )  # fmt: skip
    print(f"wrote {path}")


def _py_spy() -> str | None:
    """py-spy beside this Python (a venv's bin) or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.costs",
        description="Instructions per event (callgrind), busignal beside the "
        "hand-written loop; or a py-spy profile of a drain.",
    )
    parser.add_argument(
        "--events",
        type=int,
        default=20_000,
        help="events drained (default 20000; a quarter of that published)",
    )
    parser.add_argument(
        "--async",
        dest="is_async",
        action="store_true",
        help="drain with the async receiver",
    )
    parser.add_argument(
        "--publish",
        action="store_true",
        help="instead: publish and publish_many beside redis-py's XADD loops",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="instead: record a drain of --events with py-spy to this SVG",
    )
    parser.add_argument("--child-drain", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--child-baseline", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--child-publish", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_drain:
        url, signal, service, count = args.child_drain
        _child_drain(url, signal, service, int(count))
        return 0
    if args.child_baseline:
        url, count = args.child_baseline
        _child_baseline_drain(url, "bl.drain", "drain", int(count))
        return 0
    if args.child_publish:
        url, count, how = args.child_publish
        _child_publish(url, int(count), how)
        return 0
    if args.profile is None and shutil.which("valgrind") is None:
        print(
            "benchmarks.costs: valgrind is not on PATH; install it "
            "(apt-get install valgrind) or use --profile",
            file=sys.stderr,
        )
        return 2
    if args.profile is not None and _py_spy() is None:
        print(
            "benchmarks.costs: py-spy is not installed; pip install -e '.[bench]'",
            file=sys.stderr,
        )
        return 2
    sizes = (1000, 1000 + args.events)
    with tempfile.TemporaryDirectory(prefix="busignal-costs-") as tmp:
        server = RedisServer(Path(tmp))
        server.start()
        try:
            if args.profile is not None:
                _profile(server, args.is_async, args.events, args.profile)
            elif args.publish:
                _publish_cost(server, (100, 100 + args.events // 4))
            else:
                _drain_cost(server, args.is_async, sizes)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
