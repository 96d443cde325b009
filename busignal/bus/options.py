"""The keyword options of ``busignal.configure``, typed for the caller.

A ``TypedDict`` rather than parameters with defaults so that the defaults
stay in one place, ``BusConfig``; a type checker still refuses a
misspelt option or a value of the wrong type. Each key is a ``Bus``
keyword (``namespace``, ``secret``) or a ``BusConfig`` field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypedDict

from busignal.errors import ConfigurationError

__all__ = ["MIN_SECRET_BYTES", "BusOptions", "check_secret", "redacted_repr"]

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
