"""``busignal worker --metrics-port``: Prometheus metrics over HTTP."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Callable

from busignal import Signal
from busignal.bus.bus import Bus

from .servers import APPS, RedisServer, WorkerProcess, free_port, wait_for

StartWorker = Callable[..., WorkerProcess]

# The signal the billing app (tests/integration/apps) has receivers for.
order_paid = Signal("order_paid")


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        body: bytes = r.read()
        return body.decode()


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text format, or None if absent."""
    for line in text.splitlines():
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if match is None or match[1] != name:
            continue
        found = dict(re.findall(r'([a-z_]+)="([^"]*)"', match[2] or ""))
        if found == labels:
            return float(match[3])
    return None


def answers(port: int) -> bool:
    try:
        scrape(port)
    except OSError:
        return False
    return True


def test_metrics_count_handled_failed_and_dead_events(
    bus: Bus, redis_server: RedisServer, worker_factory: StartWorker
) -> None:
    port = free_port()
    worker_factory("billing", "billing", extra=["--metrics-port", str(port)])
    wait_for(lambda: answers(port), what="the metrics server")

    order_paid.send_robust(sender=None, amount=5)
    order_paid.send_robust(sender=None, amount=6)
    order_paid.send_robust(sender=None, amount=-1)  # charge raises
    redis_server.client().xadd(bus.keys.events("order_paid"), {"junk": "1"})
    wait_for(
        lambda: sample(
            scrape(port),
            "busignal_dead_letters_total",
            signal="order_paid",
            service="billing",
        ),
        what="the dead letter to be counted",
    )

    text = scrape(port)
    labels = {"signal": "order_paid", "service": "billing"}
    assert sample(text, "busignal_events_handled_total", **labels, outcome="ok") == 2
    assert (
        sample(text, "busignal_events_handled_total", **labels, outcome="failed") == 1
    )
    assert (
        sample(
            text,
            "busignal_receiver_failures_total",
            **labels,
            receiver="billing.charge",
        )
        == 1
    )
    assert sample(text, "busignal_handling_seconds_count", **labels) == 3
    assert sample(text, "busignal_stream_pending", **labels) == 0
    assert sample(text, "busignal_stream_lag", **labels) == 0
    assert sample(text, "busignal_redis_up") == 1


def test_metrics_without_prometheus_client_exit_2_naming_the_extra() -> None:
    hide = "import sys; sys.modules['prometheus_client'] = None; "
    run = "from busignal.cli.app import main; sys.exit(main(sys.argv[1:]))"
    command = [
        sys.executable, "-c", hide + run, "worker", "billing",
        "--service", "billing", "--url", "memory://metrics", "--metrics-port", "1",
    ]  # fmt: skip

    done = subprocess.run(
        command,
        env={**os.environ, "PYTHONPATH": str(APPS)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert "busignal[metrics]" in done.stderr
