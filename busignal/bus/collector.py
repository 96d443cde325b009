"""How the caller of a send gathers the services' replies.

The ``Collector`` holds what the caller has so far; the sync and async
senders only do the waiting. The format of one reply is
``busignal.wire.reply``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from busignal.errors import SignalTimeout
from busignal.wire import codec
from busignal.wire.remote import RemoteReceiver, decode_error
from busignal.wire.reply import open_reply
from busignal.wire.signing import Signer

__all__ = ["Collector"]

logger = logging.getLogger(__name__)

Response = tuple[object, object]


def _checked_item(item: Any) -> list[Any]:
    """A reply item as ``[receiver_id, ok, value]``; a malformed one becomes a
    ``busignal.InvalidReply`` error, so that a bad reply never raises a
    TypeError or IndexError out of ``send_robust``."""
    if type(item) is list and len(item) == 3 and type(item[0]) is str:
        return [item[0], bool(item[1]), item[2]]
    error = ["busignal.InvalidReply", f"malformed reply item {item!r:.200}", "", None]
    return ["", False, error]


@dataclass(slots=True)
class Collector:
    """Gathers the replies of the services expected to answer one send.

    ``fail_fast`` (``send``) stops at the first receiver error, as Django's
    ``send`` does; otherwise (``send_robust``) every reply is awaited.
    """

    signal: str
    services: list[str]
    timeout: float
    fail_fast: bool
    find_receiver: Callable[[str], Callable[..., object] | None]
    message_id: str = ""
    signer: Signer | None = None
    max_size: int = codec.MAX_SIZE
    replies: dict[str, tuple[str, list[Any]]] = field(default_factory=dict)
    error: BaseException | None = None

    @property
    def done(self) -> bool:
        """True when nothing more is worth waiting for."""
        return self.error is not None or len(self.replies) >= len(self.services)

    def add(self, data: bytes) -> None:
        """Take one raw reply; a service's duplicate (redelivery) is ignored.

        A reply that is unsigned or badly signed (with a secret), signed for
        another send, too large or not a reply is dropped and logged: the
        real one may still come.
        """
        try:
            service, worker, items = open_reply(
                data,
                message_id=self.message_id,
                signer=self.signer,
                max_size=self.max_size,
            )
        except ValueError as exc:
            logger.warning(
                "signal %s: dropped a reply to message %s: %s",
                self.signal,
                self.message_id,
                exc,
            )
            return
        if service not in self.services or service in self.replies:
            return
        items = [_checked_item(item) for item in items]
        self.replies[service] = (worker, items)
        if self.fail_fast and self.error is None:
            for item in items:
                if not item[1]:
                    self.error = decode_error(item[2], service=service, worker=worker)
                    break

    def missing(self) -> list[str]:
        """Services that have not answered."""
        return [s for s in self.services if s not in self.replies]

    def _responses(self, service: str, worker: str, items: list[Any]) -> list[Response]:
        out: list[Response] = []
        for item in items:
            rid, ok, value = item
            receiver: object = self.find_receiver(rid) or RemoteReceiver(
                rid, service, worker
            )
            response = (
                value if ok else decode_error(value, service=service, worker=worker)
            )
            out.append((receiver, response))
        return out

    def results(self) -> list[Response]:
        """``[(receiver, response), ...]`` by service, in connection order.

        Fail-fast raises the first receiver error, or SignalTimeout naming the
        services that did not answer; robust returns both as responses.
        """
        if self.error is not None:
            raise self.error
        missing = self.missing()
        timeout = SignalTimeout(self.signal, missing, self.timeout) if missing else None
        if timeout is not None and self.fail_fast:
            raise timeout
        out: list[Response] = []
        for service in self.services:
            if service in self.replies:
                worker, items = self.replies[service]
                out.extend(self._responses(service, worker, items))
            elif timeout is not None:
                out.append((RemoteReceiver("", service, None), timeout))
        return out
