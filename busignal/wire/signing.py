"""HMAC-SHA256 signatures for envelopes, with secret rotation.

A :class:`Signer` holds one or more secrets: the first signs, any of them
verifies. To rotate, deploy ``new,old`` everywhere (workers then accept both
while senders already sign with the new one), then drop ``old``.

Reading the secret from the environment is the config module's job; this
module only offers :func:`parse_secrets` to split such a value.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

__all__ = ["Signer", "parse_secrets"]

DIGEST_SIZE = hashlib.sha256().digest_size
"""Length in bytes of a signature: the raw SHA-256 digest, not hex."""

_LENGTH_BYTES = 8


class Signer:
    """Signs with the first secret and verifies against every secret.

    Secrets given as ``str`` are UTF-8 encoded. The repr never shows them.
    """

    __slots__ = ("_macs",)

    def __init__(self, secrets: Sequence[str | bytes]) -> None:
        if isinstance(secrets, str | bytes):
            raise TypeError("pass a sequence of secrets, not a single secret")
        keys = [s.encode() if isinstance(s, str) else bytes(s) for s in secrets]
        if not keys:
            raise ValueError("a Signer needs at least one secret")
        if not all(keys):
            raise ValueError("a secret cannot be empty")
        # Keyed once here; sign() and verify() copy these, skipping key setup.
        self._macs = tuple(hmac.new(key, digestmod=hashlib.sha256) for key in keys)

    def __repr__(self) -> str:
        return f"<Signer with {len(self._macs)} secret(s)>"

    def sign(self, *parts: bytes) -> bytes:
        """Return the raw 32-byte HMAC-SHA256 of parts, with the first secret.

        Each part is length-prefixed before hashing, so ``(b"ab", b"c")`` and
        ``(b"a", b"bc")`` sign differently.
        """
        return _digest(self._macs[0], parts)

    def verify(self, mac: bytes, *parts: bytes) -> bool:
        """Return whether mac signs parts under any of the secrets.

        Every secret is tried, each with ``hmac.compare_digest``, so the time
        taken does not depend on which secret (if any) matched.
        """
        valid = False
        for base in self._macs:
            valid |= hmac.compare_digest(mac, _digest(base, parts))
        return valid


def _digest(base: hmac.HMAC, parts: tuple[bytes, ...]) -> bytes:
    mac = base.copy()
    for part in parts:
        mac.update(len(part).to_bytes(_LENGTH_BYTES, "big"))
        mac.update(part)
    return mac.digest()


def parse_secrets(value: str) -> list[str]:
    """Split a comma-separated secrets setting, dropping blanks and spaces.

    ``"new, old,"`` -> ``["new", "old"]``; the first is the signing secret.
    """
    return [secret for secret in (s.strip() for s in value.split(",")) if secret]
