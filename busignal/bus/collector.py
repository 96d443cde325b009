"""How the caller of a send gathers the services' replies.

The ``Collector`` holds what the caller has so far; the sync and async
senders only do the waiting. The format of one reply is
``busignal.wire.reply``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from busignal.errors import SignalTimeout
from busignal.wire.remote import RemoteReceiver, decode_error
from busignal.wire.reply import decode_reply

__all__ = ["Collector"]

Response = tuple[object, object]


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
    replies: dict[str, tuple[str, list[Any]]] = field(default_factory=dict)
    error: BaseException | None = None

    @property
    def done(self) -> bool:
        """True when nothing more is worth waiting for."""
        return self.error is not None or len(self.replies) >= len(self.services)

    def add(self, data: bytes) -> None:
        """Take one raw reply; a service's duplicate (redelivery) is ignored."""
        service, worker, items = decode_reply(data)
        if service not in self.services or service in self.replies:
            return
        self.replies[service] = (worker, items)
        if self.fail_fast and self.error is None:
            for item in items:
                if isinstance(item, list) and len(item) == 3 and not item[1]:
                    self.error = decode_error(item[2], service=service, worker=worker)
                    break

    def missing(self) -> list[str]:
        """Services that have not answered."""
        return [s for s in self.services if s not in self.replies]

    def _responses(self, service: str, worker: str, items: list[Any]) -> list[Response]:
        out: list[Response] = []
        for item in items:
            rid, ok, value = str(item[0]), bool(item[1]), item[2]
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
