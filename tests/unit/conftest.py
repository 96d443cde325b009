"""Fixtures for the distributed path on ``memory://`` (fakeredis, no network).

Every test gets its own in-process server and namespace, so nothing is
shared between tests and nothing needs flushing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import busignal
from busignal.bus.bus import Bus
from busignal.bus.default import reset_default

from .bus_helpers import unique


@pytest.fixture
def memory_url() -> str:
    """The URL of a fresh in-process server."""
    return f"memory://{uuid.uuid4().hex}"


@pytest.fixture
def namespace() -> str:
    return unique("ns")


@pytest.fixture
def bus(
    memory_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Bus]:
    """The default bus, on a server and namespace of this test only."""
    monkeypatch.delenv("BUSIGNAL_URL", raising=False)
    configured = busignal.configure(url=memory_url, namespace=namespace)
    assert configured is not None
    yield configured
    busignal.configure(None)
    reset_default()


@pytest.fixture
def make_bus(memory_url: str, namespace: str) -> Iterator[Callable[..., Bus]]:
    """More buses on the same server and namespace, with other options."""
    made: list[Bus] = []

    def make(**options: Any) -> Bus:
        options.setdefault("namespace", namespace)
        made.append(Bus(memory_url, **options))
        return made[-1]

    yield make
    for each in made:
        each.close()


@pytest.fixture
def name() -> str:
    """A signal name of this test only."""
    return unique("sig")


@pytest.fixture
def no_bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No default bus at all: nothing configured, no BUSIGNAL_URL."""
    monkeypatch.delenv("BUSIGNAL_URL", raising=False)
    busignal.configure(None)
    yield
    reset_default()
