"""The keyword options of ``busignal.configure``, typed for the caller.

A ``TypedDict`` rather than parameters with defaults so that the defaults
stay in one place, ``BusConfig``; a type checker still refuses a
misspelt option or a value of the wrong type. Each key is a ``Bus``
keyword (``namespace``, ``secret``) or a ``BusConfig`` field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from busignal.errors import ConfigurationError
from busignal.wire.envelope import DEFAULT_MAX_AGE

__all__ = [
    "MIN_SECRET_BYTES",
    "BusConfig",
    "BusOptions",
    "MiB",
    "check_secret",
    "redacted_repr",
]

#: The shortest secret accepted, in bytes: HMAC-SHA256's own key size. A
#: shorter key can be guessed offline from one signed entry read from Redis.
MIN_SECRET_BYTES = 32


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


def check_secret(number: int, secret: str | bytes) -> None:
    """ConfigurationError for a secret too short to resist guessing.

    The message names the secret by its place in the list, never by value.
    """
    size = len(secret.encode() if isinstance(secret, str) else secret)
    if size < MIN_SECRET_BYTES:
        raise ConfigurationError(
            f"secret #{number} is {size} bytes long; busignal needs at least "
            f"{MIN_SECRET_BYTES} (HMAC-SHA256's key size), since a short key can "
            f"be guessed offline from any signed entry read from Redis. Generate "
            f"one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            f". In BUSIGNAL_SECRET a comma separates secrets (a list, newest "
            f"first); a secret that contains a comma goes in BUSIGNAL_SECRET_FILE"
        )


def redacted_repr(config: Any) -> str:
    """A config dataclass's repr without its passwords and secrets.

    The URL is shown redacted, the secrets counted, and ``extra`` options by
    name only: a config ends up in logs and tracebacks.
    """
    from busignal.transport.clients import redact

    shown = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name == "url":
            shown.append(f"url={redact(value)!r}")
        elif f.name == "secrets":
            shown.append(f"secrets=<{len(value)} secret(s)>")
        elif f.name == "extra":
            shown.append(f"extra=<options {sorted(value)!r}>")
        else:
            shown.append(f"{f.name}={value!r}")
    return f"{type(config).__name__}({', '.join(shown)})"


MiB = 1024 * 1024


@dataclass(frozen=True, slots=True, repr=False)
class BusConfig:
    """Everything that configures a bus; see the README's configuration table.

    Its repr shows the URL without passwords and counts the secrets rather
    than show them: a config ends up in logs and tracebacks.
    """

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
        for number, secret in enumerate(self.secrets, 1):
            check_secret(number, secret)

    def __repr__(self) -> str:
        return redacted_repr(self)
