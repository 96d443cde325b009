"""Exceptions raised by receivers in a worker, as the caller gets them back."""

from __future__ import annotations

import pytest

from busignal import register_exception
from busignal.bus.bus import Bus
from busignal.dispatch.signal import Signal
from busignal.errors import RemoteError, SignalTimeout
from busignal.testing import running_worker
from busignal.wire.remote import RemoteReceiver, decode_error, encode_error


class PaymentDeclined(Exception):
    """Neither builtin nor registered: it comes back as RemoteError."""


@register_exception
class CardExpired(Exception):
    """Registered: it comes back as itself."""

    def __init__(self, card: str, month: int) -> None:
        super().__init__(card, month)
        self.card = card
        self.month = month


class NeedsTwoArgs(Exception):
    def __init__(self, first: str, second: str) -> None:
        super().__init__(f"{first}/{second}")


def _always(value: object) -> bool:
    return True


# -- over the bus -----------------------------------------------------------------


def test_send_unknown_exception_class_arrives_as_remote_error(
    bus: Bus, name: str
) -> None:
    sig = Signal(name)

    def failing(**kwargs: object) -> None:
        raise PaymentDeclined("card 4242 declined")

    sig.connect(failing)
    with (
        running_worker(bus, "svc", signals=[name]),
        pytest.raises(RemoteError) as info,
    ):
        sig.send(sender=None)

    error = info.value
    assert error.type_name == f"{__name__}.PaymentDeclined"
    assert error.message == "card 4242 declined"
    assert "PaymentDeclined: card 4242 declined" in error.remote_traceback


def test_send_robust_unknown_exception_class_is_remote_error_response(
    bus: Bus, name: str
) -> None:
    sig = Signal(name)

    def failing(**kwargs: object) -> None:
        raise PaymentDeclined("declined")

    sig.connect(failing)
    with running_worker(bus, "svc", signals=[name]):
        [(_, response)] = sig.send_robust(sender=None)

    assert isinstance(response, RemoteError)
    assert str(response) == f"{__name__}.PaymentDeclined: declined"


def test_send_registered_exception_class_arrives_as_itself(bus: Bus, name: str) -> None:
    sig = Signal(name)

    def failing(**kwargs: object) -> None:
        raise CardExpired("4242", 7)

    sig.connect(failing)
    with (
        running_worker(bus, "svc", signals=[name]),
        pytest.raises(CardExpired) as info,
    ):
        sig.send(sender=None)

    assert (info.value.card, info.value.month) == ("4242", 7)


def test_send_busignal_error_of_a_receiver_arrives_as_itself(
    bus: Bus, name: str
) -> None:
    sig = Signal(name)

    def failing(**kwargs: object) -> None:
        raise SignalTimeout("inner", ["other"], 1.5)

    sig.connect(failing)
    with (
        running_worker(bus, "svc", signals=[name]),
        pytest.raises(SignalTimeout) as info,
    ):
        sig.send(sender=None)

    assert (info.value.signal, info.value.services) == ("inner", ["other"])


def test_send_remote_error_names_service_and_worker(bus: Bus, name: str) -> None:
    sig = Signal(name)

    def failing(**kwargs: object) -> None:
        raise PaymentDeclined("declined")

    sig.connect(failing)
    with (
        running_worker(bus, "billing", signals=[name]) as worker,
        pytest.raises(RemoteError) as info,
    ):
        sig.send(sender=None)

    note = info.value.__notes__[0]
    assert f"service 'billing' in worker {worker.consumer!r}" in note


# -- the error codec ----------------------------------------------------------------


def test_decode_error_rebuilds_builtin_with_its_args() -> None:
    wire = encode_error(KeyError("sku", 3), _always)

    error = decode_error(wire, service="svc", worker="w1")

    assert type(error) is KeyError
    assert error.args == ("sku", 3)


def test_decode_error_without_encodable_args_uses_the_message() -> None:
    wire = encode_error(ValueError(object()), lambda value: False)

    error = decode_error(wire, service="svc", worker="w1")

    assert type(error) is ValueError
    assert error.args[0].startswith("<object object")


def test_decode_error_class_that_cannot_be_rebuilt_is_remote_error() -> None:
    register_exception(NeedsTwoArgs)
    wire = encode_error(NeedsTwoArgs("a", "b"), _always)

    error = decode_error(wire, service="svc", worker="w1")

    assert isinstance(error, RemoteError)
    assert error.message == "a/b"


def test_decode_error_does_not_rebuild_builtin_base_exceptions() -> None:
    wire = encode_error(KeyboardInterrupt(), _always)

    error = decode_error(wire, service="svc", worker="w1")

    assert isinstance(error, RemoteError)
    assert error.type_name == "builtins.KeyboardInterrupt"


def test_decode_error_malformed_is_remote_error() -> None:
    error = decode_error(["only", "two"], service="svc", worker="w1")

    assert isinstance(error, RemoteError)
    assert error.type_name == "busignal.InvalidReply"


def test_register_exception_refuses_a_non_exception() -> None:
    with pytest.raises(TypeError, match="exception class"):
        register_exception(int)  # type: ignore[type-var]  # the point of the test


def test_remote_receiver_cannot_be_called_here() -> None:
    remote = RemoteReceiver("app.handler", "billing", "w1")

    with pytest.raises(TypeError, match="another process"):
        remote(signal=None, sender=None)


def test_decode_error_rebuilds_signal_timeout_with_its_fields() -> None:
    wire = encode_error(SignalTimeout("orders", ["billing"], 2.0), _always)

    error = decode_error(wire, service="svc", worker="w1")

    assert isinstance(error, SignalTimeout)
    assert (error.signal, error.services, error.timeout) == ("orders", ["billing"], 2)


def test_decode_error_rebuilds_remote_error_with_its_type_name() -> None:
    wire = encode_error(RemoteError("app.Declined", "no", "tb"), _always)

    error = decode_error(wire, service="svc", worker="w1")

    assert isinstance(error, RemoteError)
    assert (error.type_name, error.message) == ("app.Declined", "no")


@pytest.mark.parametrize(
    "name", ["builtins.StopIteration", "builtins.StopAsyncIteration"]
)
def test_remote_stop_iteration_is_never_rebuilt_as_itself(name: str) -> None:
    # Raised out of send() inside an iterator, it would silently end it.
    from busignal.errors import RemoteError
    from busignal.wire.remote import decode_error

    exc = decode_error([name, "forged", "", []], service="s", worker="w")

    assert type(exc) is RemoteError
    assert exc.type_name == name
