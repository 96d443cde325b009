"""Record formats that more than one part reads: dead letters, and Redis text.

A dead letter is written by the worker (``worker.settle``) and read by the
operator's tools (``admin.dead``): its field names live here once, so the
two cannot drift apart. ``text`` is how every part turns what Redis
returned (bytes or str, from RESP2 or RESP3 clients) into a str.
"""

from __future__ import annotations

__all__ = [
    "DEAD_AT",
    "DEAD_ATTEMPTS",
    "DEAD_ENTRY",
    "DEAD_REASON",
    "DEAD_SERVICE",
    "DEAD_WORKER",
    "FIELD_SERVICE",
    "ORIGINAL_FIELDS",
    "text",
]

#: The envelope's service target: an entry meant for one service only.
FIELD_SERVICE = b"s"
#: The envelope's own fields (version and body, HMAC, sent-at time, service
#: target): what a dead letter keeps of its entry, so that it can be replayed.
ORIGINAL_FIELDS = frozenset((b"v", b"b", b"h", b"t", FIELD_SERVICE))

# What a dead letter adds to the original fields.
DEAD_REASON = b"reason"
DEAD_ENTRY = b"entry"  # the entry id on the events stream
DEAD_SERVICE = b"service"
DEAD_WORKER = b"worker"
DEAD_ATTEMPTS = b"attempts"
DEAD_AT = b"at"  # time.time() when it was dead-lettered


def text(value: object) -> str:
    """A Redis reply (key, entry id, field, group name) as a str; None as ""."""
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
