"""``busignal demo``: the example services, running, on whatever Redis there is.

The Redis is the first of: ``--url`` or ``BUSIGNAL_URL``; a Redis on
localhost:6379 if it answers PING within 0.3 s; an embedded server
(``busignal.cli.embedded``) started for the demo and removed after it. The
demo keeps to its own namespace (``busignal-demo-<random>``) and deletes
its keys at the end, so it leaves a user's Redis as it found it.

``BUSIGNAL_DEMO_PROBE_URL`` replaces the localhost:6379 probe; it is for
tests, which must never touch the machine's own Redis.

The services are ``busignal.examples``, part of the installed package, so
the worker processes import them as any installation has them: the demo
needs no checkout of busignal and no PYTHONPATH of its own.
"""

from __future__ import annotations

import os
import shutil
import signal as signals
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import redis

from busignal.bus.bus import Bus
from busignal.cli.console import Console
from busignal.cli.embedded import EmbeddedRedis, EmbeddedUnavailable
from busignal.errors import BusignalError
from busignal.transport.clients import redact
from busignal.wire.records import text

__all__ = ["add_commands", "choose_redis", "run_demo"]

DEFAULT_PROBE_URL = "redis://localhost:6379/0"
PROBE_TIMEOUT = 0.3
SERVICES = (
    ("billing", "busignal.examples.billing"),
    ("notifications", "busignal.examples.notifications"),
    ("cache", "busignal.examples.cache"),
)


@dataclass
class RedisChoice:
    """The Redis the demo runs on, and how it was found."""

    url: str
    how: str
    embedded: EmbeddedRedis | None = None


def probe(url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """True if a Redis at ``url`` answers PING within ``timeout`` seconds."""
    client = redis.Redis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def choose_redis(url: str | None, environ: Mapping[str, str]) -> RedisChoice:
    """The given URL, else a local Redis that answers, else an embedded one."""
    if url:
        return RedisChoice(url, "--url")
    url = environ.get("BUSIGNAL_URL", "").strip()
    if url:
        return RedisChoice(url, "BUSIGNAL_URL")
    local = environ.get("BUSIGNAL_DEMO_PROBE_URL", "").strip() or DEFAULT_PROBE_URL
    if probe(local):
        return RedisChoice(local, "the Redis that answered on it")
    embedded = EmbeddedRedis().start()
    return RedisChoice(embedded.url, "an embedded server, removed at exit", embedded)


class Demo:
    """Runs the example services on one bus, then cleans up after them."""

    def __init__(self, bus: Bus, console: Console, *, events: int) -> None:
        self.bus = bus
        self.console = console
        self.events = events
        self.logs = Path(tempfile.mkdtemp(prefix="busignal-demo-"))
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    # -- workers ----------------------------------------------------------

    def start_workers(self) -> None:
        for service, module in SERVICES:
            command = [
                sys.executable, "-m", "busignal", "worker", module,
                "--service", service, "--url", self.bus.config.url,
                "--namespace", self.bus.config.namespace,
                "--heartbeat", "0.5", "--grace", "10", "--log-level", "WARNING",
            ]  # fmt: skip
            with (self.logs / f"{service}.log").open("ab") as log:
                self.processes[service] = subprocess.Popen(
                    command, stdout=log, stderr=subprocess.STDOUT
                )
        self._wait_for_workers(timeout=30)

    def _announced(self) -> set[str]:
        raw: Any = self.bus.client.hgetall(self.bus.keys.workers)
        services = set()
        for status in raw.values():
            try:
                services.add(str(msgpack.unpackb(status)["service"]))
            except Exception:
                continue
        return services

    def _wait_for_workers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        wanted = {service for service, _ in SERVICES}
        while not wanted <= self._announced():
            for service, process in self.processes.items():
                if process.poll() is not None:
                    raise BusignalError(
                        f"worker {service!r} exited with code {process.returncode}:"
                        f"\n{self.log_tail(service)}"
                    )
            if time.monotonic() > deadline:
                raise BusignalError(
                    f"workers did not announce themselves within {timeout:.0f}s"
                )
            time.sleep(0.05)

    def log_tail(self, service: str, lines: int = 15) -> str:
        path = self.logs / f"{service}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop_workers(self) -> list[str]:
        """SIGTERM every worker, wait, kill stragglers; the services that failed."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signals.SIGTERM)
        failed = []
        for service, process in self.processes.items():
            try:
                code = process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            if code != 0:
                failed.append(service)
        self.processes.clear()
        return failed

    def delete_keys(self) -> int:
        """Delete every key of the demo's namespace; returns how many."""
        client = self.bus.client
        deleted = 0
        batch: list[Any] = []
        for key in client.scan_iter(match=f"{self.bus.config.namespace}:*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                deleted += int(client.delete(*batch))
                batch.clear()
        if batch:
            deleted += int(client.delete(*batch))
        return deleted

    # -- the show -----------------------------------------------------------

    def sends(self) -> None:
        from busignal.examples.signals import order_paid, user_signed_up

        calls: list[tuple[str, Callable[[], list[tuple[object, object]]]]] = [
            (
                "order_paid.send(order_id=1001, amount=4200)",
                lambda: order_paid.using(bus=self.bus).send(
                    "demo", order_id=1001, amount=4200
                ),
            ),
            (
                "user_signed_up.send_robust(email='ada@example.com')",
                lambda: user_signed_up.using(bus=self.bus).send_robust(
                    "demo", email="ada@example.com"
                ),
            ),
            (
                "user_signed_up.send_robust(email='bob@example.invalid')",
                lambda: user_signed_up.using(bus=self.bus).send_robust(
                    "demo", email="bob@example.invalid"
                ),
            ),
        ]
        self.console.line("each send's (receiver, response) pairs:")
        for call, send in calls:
            started = time.perf_counter()
            results = send()
            ms = (time.perf_counter() - started) * 1000
            services = sorted({str(getattr(r, "service", "")) for r, _ in results})
            # Two columns, the service in the title: at 80 columns a whole
            # receiver id fits beside a response that wraps.
            self.console.line()
            self.console.table(
                f"{call}, {ms:.1f} ms round trip, from {', '.join(services)}",
                ["receiver", "response"],
                [[_receiver_id(r), _show(response)] for r, response in results],
                wrap=("response",),
            )
        self.console.line()
        started = time.perf_counter()
        try:
            user_signed_up.using(bus=self.bus).send("demo", email="eve@example.invalid")
            self.console.line("send() did not raise: unexpected")
        except Exception as exc:
            ms = (time.perf_counter() - started) * 1000
            self.console.line(
                f"send() raises the first error instead ({ms:.1f} ms): "
                f"{type(exc).__name__}: {exc}"
            )

    def broadcast(self) -> None:
        from busignal.examples.signals import cache_invalidated

        cache_invalidated.using(bus=self.bus).publish("demo", key="prices")
        self.console.line(
            "published cache_invalidated(key='prices'): a broadcast receiver, "
            "it runs in every process that imports busignal.examples.cache"
        )

    def burst(self) -> None:
        from busignal.examples.signals import page_viewed

        view = page_viewed.using(bus=self.bus)
        chunk = 100
        started = time.perf_counter()
        last = ""
        with self.console.progress("publishing page_viewed", self.events) as bar:
            for first in range(0, self.events, chunk):
                size = min(chunk, self.events - first)
                batch = [{"path": f"/page/{(first + i) % 7}"} for i in range(size)]
                last = view.publish_many("demo", batch)[-1]
                bar.advance(size)
        published = time.perf_counter() - started
        self._wait_drained("page_viewed", "billing", last, timeout=60)
        handled = time.perf_counter() - started
        self.console.line(
            f"published {self.events} events in {published:.2f}s; billing handled "
            f"them all in {handled:.2f}s ({self.events / handled:.0f} events/s)"
        )

    def _wait_drained(
        self, signal: str, service: str, last: str, timeout: float
    ) -> None:
        deadline = time.monotonic() + timeout
        stream = self.bus.keys.events(signal)
        while time.monotonic() < deadline:
            groups: Any = self.bus.client.xinfo_groups(stream)
            for group in groups:
                if text(group["name"]) != service:
                    continue
                delivered = text(group["last-delivered-id"])
                if int(group["pending"]) == 0 and _id(delivered) >= _id(last):
                    return
            time.sleep(0.05)
        raise BusignalError(f"service {service!r} did not drain {signal!r} in time")


def _id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _receiver_id(receiver: object) -> str:
    return str(getattr(receiver, "id", None) or getattr(receiver, "__qualname__", "?"))


def _show(response: object, width: int = 82) -> str:
    """``response`` on one table cell, cut to ``width``.

    82 keeps a remote error's full class name in view, with the start of
    its message: ``busignal.examples.notifications.UndeliverableError`` is
    the longest the examples raise.
    """
    if isinstance(response, BaseException):
        text = f"raised {type(response).__name__}: {response}"
    else:
        text = repr(response)
    return text if len(text) <= width else text[: width - 3] + "..."


def run_demo(
    url: str | None,
    make_bus: Callable[..., Bus],
    *,
    events: int = 500,
    plain: bool = False,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Run the whole demo; returns the exit code."""
    console = Console(plain=plain)
    try:
        choice = choose_redis(url, os.environ if environ is None else environ)
    except EmbeddedUnavailable as exc:
        print(f"busignal demo: {exc}", file=sys.stderr)
        return 1
    namespace = f"busignal-demo-{uuid.uuid4().hex[:8]}"
    bus = make_bus(choice.url, namespace)
    try:
        with bus.transport.errors():
            bus.client.ping()
    except BusignalError as exc:
        print(f"busignal demo: {exc}", file=sys.stderr)
        if choice.embedded is not None:
            choice.embedded.stop()
        return 1
    demo = Demo(bus, console, events=events)
    console.line(
        f"busignal demo on {redact(choice.url)} ({choice.how}), namespace {namespace!r}"
    )
    try:
        console.line("starting workers: " + ", ".join(s for s, _ in SERVICES))
        demo.start_workers()
        demo.sends()
        demo.broadcast()
        demo.burst()
    except BusignalError as exc:
        print(f"busignal demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("busignal demo: interrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        failed = demo.stop_workers()
        _cleanup(demo, choice, console)
    if failed:
        print(f"busignal demo: workers exited badly: {failed}", file=sys.stderr)
        return 1
    console.line("done: workers stopped, demo keys deleted")
    return 0


def _cleanup(demo: Demo, choice: RedisChoice, console: Console) -> None:
    try:
        demo.delete_keys()
    except Exception as exc:
        print(f"busignal demo: could not delete demo keys: {exc}", file=sys.stderr)
    demo.bus.close()
    shutil.rmtree(demo.logs, ignore_errors=True)
    if choice.embedded is not None:
        choice.embedded.stop()
        console.line("embedded Redis stopped and removed")


def add_commands(commands: Any, make_bus: Callable[..., Bus]) -> None:
    """Add ``busignal demo`` to the CLI."""
    demo = commands.add_parser(
        "demo", help="run the example services on a Redis and show them working"
    )
    demo.add_argument("--url", help="Redis URL (default: BUSIGNAL_URL, else local)")
    demo.add_argument("--events", type=int, default=500, help="burst size")
    demo.add_argument("--plain", action="store_true", help="plain text, no rich")
    demo.set_defaults(
        run=lambda args: run_demo(
            args.url, make_bus, events=args.events, plain=args.plain
        )
    )
