"""One service's reply to a send, and how the caller gathers replies.

A worker sends one reply per event and service: the results of that
service's receivers in connection order. The ``Collector`` holds what the
caller has so far; the sync and async senders only do the waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from busignal.errors import SerializationError, SignalTimeout
from busignal.wire import codec
from busignal.wire.remote import RemoteReceiver, decode_error, encode_error

__all__ = ["Collector", "Outcome", "decode_reply", "encode_reply"]

Response = tuple[object, object]


@dataclass(slots=True)
class Outcome:
    """What one receiver did in a worker: a value or an exception."""

    receiver_id: str
    value: object = None
    error: BaseException | None = None
    seconds: float = 0.0


def _encodable(value: object) -> bool:
    try:
        codec.dumps(value)
    except SerializationError:
        return False
    return True


def _item(outcome: Outcome) -> list[object]:
    if outcome.error is None:
        return [outcome.receiver_id, True, outcome.value]
    return [outcome.receiver_id, False, encode_error(outcome.error, _encodable)]


def _unencodable_result(outcome: Outcome) -> Outcome:
    value = outcome.value
    cls = type(value)
    error = SerializationError(
        f"receiver {outcome.receiver_id!r} returned a {cls.__module__}."
        f"{cls.__qualname__}, which cannot be sent back; return plain data or "
        f"register a codec with busignal.wire.codec.register()"
    )
    return Outcome(outcome.receiver_id, error=error)


def encode_reply(service: str, worker: str, outcomes: list[Outcome]) -> bytes:
    """Encode a service's reply; a result that cannot be encoded becomes an error.

    Only that receiver's response is replaced; the others are sent as they are.
    """
    try:
        return codec.dumps([service, worker, [_item(o) for o in outcomes]])
    except SerializationError:
        fixed = [
            o if o.error is not None or _encodable(o.value) else _unencodable_result(o)
            for o in outcomes
        ]
        return codec.dumps([service, worker, [_item(o) for o in fixed]])


def decode_reply(data: bytes) -> tuple[str, str, list[Any]]:
    """Decode a reply; raises codec.DecodeError or ValueError if malformed."""
    reply = codec.loads(data)
    if not (isinstance(reply, list) and len(reply) == 3 and isinstance(reply[2], list)):
        raise ValueError(f"malformed reply {reply!r}")
    return str(reply[0]), str(reply[1]), reply[2]


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
