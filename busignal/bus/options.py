"""The keyword options of ``busignal.configure``, typed for the caller.

A ``TypedDict`` rather than parameters with defaults so that the defaults
stay in one place, ``BusConfig``; a type checker still refuses a
misspelt option or a value of the wrong type. Each key is a ``Bus``
keyword (``namespace``, ``secret``) or a ``BusConfig`` field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from busignal.errors import ConfigurationError
from busignal.wire.envelope import DEFAULT_MAX_AGE

__all__ = ["BusConfig", "BusOptions", "MiB"]


class BusOptions(TypedDict, total=False):
    """What ``configure(url, **options)`` accepts besides the URL.

    The README's configuration table says what each one means.
    """

    namespace: str
    secret: str | Sequence[str] | None
    timeout: float
    max_payload: int
    connect_timeout: float
    socket_timeout: float
    reply_ttl: int
    stream_maxlen: int
    max_age: float
    cluster: bool


MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class BusConfig:
    """Everything that configures a bus; see the README's configuration table."""

    url: str
    namespace: str = "busignal"
    timeout: float = 10.0
    secrets: tuple[str, ...] = ()
    max_payload: int = MiB
    connect_timeout: float = 2.0
    socket_timeout: float = 5.0
    reply_ttl: int = 60
    stream_maxlen: int = 10_000
    max_age: float = DEFAULT_MAX_AGE
    cluster: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ConfigurationError(f"timeout must be positive, got {self.timeout!r}")
        if not self.max_age > 0:
            raise ConfigurationError(
                f"max_age must be a positive number of seconds, got {self.max_age!r}"
            )
        if self.max_payload <= 0:
            raise ConfigurationError(
                f"max_payload must be positive, got {self.max_payload!r}"
            )
        if not self.namespace or any(c in self.namespace for c in "{} "):
            raise ConfigurationError(
                f"namespace must be non-empty, without braces or spaces: "
                f"{self.namespace!r}"
            )
