"""The pytest plugin: fixtures for testing code that sends and receives signals.

pytest loads it by itself once busignal is installed (the ``pytest11``
entry point); ``-p no:busignal`` turns it off. Every fixture is named
``busignal_*`` so none hides a fixture of the suite that uses it:

- ``busignal_bus``: a ``memory://`` bus (fakeredis, no server) set as the
  default bus for one test, on a server of its own, and removed after it;
- ``busignal_worker``: a worker running the receivers the test's modules
  connected, in a background thread, for the whole test;
- ``busignal_drain``: run a worker in burst mode, handling everything
  queued, and get how many events it handled;
- ``busignal_published``: what was sent or published, read back from the
  streams, with ``assert_published(signal, sender, **kwargs)``.

``@pytest.mark.busignal(service="billing", namespace="shop", secret="...",
signals=["order_paid"])`` sets, for one test, the service the worker
fixtures run as (default ``tests``), the bus's namespace and secret, and
the signals served. See docs/testing.md.

busignal itself is imported only when a fixture is used, so the plugin
costs a test suite that does not use it nothing, and coverage measured
from the start of the session sees busignal's import.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from busignal.bus.bus import Bus
    from busignal.testing import Published
    from busignal.worker.worker import Worker

__all__ = [
    "busignal_bus",
    "busignal_drain",
    "busignal_published",
    "busignal_worker",
]

_MARKER = "busignal"
_BUS_OPTIONS = ("namespace", "secret")
_WORKER_OPTIONS = ("service", "signals")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(service='tests', namespace='busignal', secret=None, "
        "signals=None): options of the busignal_* fixtures for this test",
    )


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The keyword arguments of the closest ``busignal`` marker, checked."""
    marker = request.node.get_closest_marker(_MARKER)
    if marker is None:
        return {}
    if marker.args:
        raise pytest.UsageError(
            f"@pytest.mark.{_MARKER} takes keyword arguments only, got {marker.args!r}"
        )
    unknown = sorted(set(marker.kwargs) - {*_BUS_OPTIONS, *_WORKER_OPTIONS})
    if unknown:
        raise pytest.UsageError(
            f"@pytest.mark.{_MARKER} got unknown option(s) {', '.join(unknown)}; "
            f"it takes {', '.join(sorted({*_BUS_OPTIONS, *_WORKER_OPTIONS}))}"
        )
    return dict(marker.kwargs)


@pytest.fixture
def busignal_bus(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Bus]:
    """A ``memory://`` bus, the default bus for this test only.

    Named signals without a bus of their own send over it. Its server is
    this test's alone, so nothing leaks between tests, and it is dropped
    afterwards; ``BUSIGNAL_URL`` is ignored while the test runs.
    """
    import busignal
    from busignal.bus.default import reset_default
    from busignal.transport.clients import forget_memory_server

    options = {k: v for k, v in _options(request).items() if k in _BUS_OPTIONS}
    server = f"pytest-{uuid.uuid4().hex}"
    monkeypatch.delenv("BUSIGNAL_URL", raising=False)
    bus = busignal.configure(url=f"memory://{server}", **options)
    assert bus is not None
    try:
        yield bus
    finally:
        busignal.configure(None)
        reset_default()
        forget_memory_server(server)


def _worker_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    options = _options(request)
    return {
        "service": options.get("service", "tests"),
        "signals": options.get("signals"),
    }


@pytest.fixture
def busignal_worker(
    request: pytest.FixtureRequest, busignal_bus: Bus
) -> Iterator[Worker]:
    """A worker of the ``tests`` service running for the whole test.

    It serves every named signal that the modules imported so far connect
    receivers to, so ``send`` returns their results as in production. It
    has joined its consumer groups before the test starts and has
    finished what it holds when the test ends; an error of the worker
    itself (not of a receiver) fails the test.
    """
    from busignal.testing import running_worker

    with running_worker(busignal_bus, **_worker_options(request)) as worker:
        yield worker


@pytest.fixture
def busignal_drain(
    request: pytest.FixtureRequest, busignal_bus: Bus
) -> Callable[..., int]:
    """``busignal_drain()`` handles every event queued and returns how many.

    A worker in burst mode: it runs the receivers of everything waiting,
    acknowledges it and returns, so a test of ``publish`` needs no
    waiting. As a deployed service, the service gets the events sent
    after it joined its consumer groups: the fixture joins them before
    the test starts, for the receivers connected by then.
    ``busignal_drain(service="billing")`` drains another service, which
    joins at its first drain.
    """
    from busignal.testing import drain

    defaults = _worker_options(request)

    def run(service: str | None = None, **options: Any) -> int:
        options.setdefault("signals", defaults["signals"])
        return drain(busignal_bus, service or defaults["service"], **options)

    run()  # the service joins its groups, as a deployed one would have
    return run


@pytest.fixture
def busignal_published(busignal_bus: Bus) -> Published:
    """What this test sent or published, read from the streams; no worker needed.

    ``busignal_published.assert_published(order_paid, sender=Order,
    order_id=7)`` passes when exactly one such event was sent;
    ``busignal_published.events(order_paid)`` lists them.
    """
    from busignal.testing import Published

    return Published(busignal_bus)
