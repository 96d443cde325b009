"""The in-process Signal against the contract of django.dispatch.Signal."""

from __future__ import annotations

import functools
import gc
import logging
import threading
import weakref
from typing import Any

import pytest

from busignal.dispatch import signal as signal_module
from busignal.dispatch.signal import Registration, Signal, named_signals, receiver
from busignal.errors import ConfigurationError


def receiver_1_arg(val: object, **kwargs: object) -> object:
    return val


class Callable:
    def __call__(self, val: object, **kwargs: object) -> object:
        return val

    def a(self, val: object, **kwargs: object) -> object:
        return val


class Sender:
    """A weak-referenceable sender."""


def assert_clean(sig: Signal) -> None:
    assert not sig.has_listeners()
    assert sig.receivers == []


def failing(val: object, **kwargs: object) -> object:
    raise ValueError("this is an error")


# -- connect and weak references ---------------------------------------------


def test_connect_function_receives_signal_and_sender() -> None:
    sig = Signal()
    seen: list[dict[str, object]] = []

    def handler(**kwargs: object) -> None:
        seen.append(kwargs)

    sig.connect(handler)
    sig.send(sender="s", val=1)
    assert seen == [{"signal": sig, "sender": "s", "val": 1}]


def test_send_returns_receiver_response_pairs() -> None:
    sig = Signal()
    sig.connect(receiver_1_arg)
    assert sig.send(sender=None, val="test") == [(receiver_1_arg, "test")]
    sig.disconnect(receiver_1_arg)
    assert_clean(sig)


def test_connect_same_receiver_twice_registers_once() -> None:
    sig = Signal()
    sig.connect(receiver_1_arg)
    sig.connect(receiver_1_arg)
    assert len(sig.receivers) == 1
    assert sig.send(sender=None, val=1) == [(receiver_1_arg, 1)]


def test_connect_weak_receiver_disappears_when_collected() -> None:
    sig = Signal()
    obj = Callable()
    sig.connect(obj.a)
    del obj
    gc.collect()
    assert sig.send(sender=None, val="test") == []
    assert_clean(sig)


def test_connect_weak_bound_method_does_not_keep_instance_alive() -> None:
    sig = Signal()
    obj = Callable()
    alive = weakref.ref(obj)
    sig.connect(obj.a)
    del obj
    gc.collect()
    assert alive() is None


def test_connect_bound_method_stays_connected_while_instance_lives() -> None:
    sig = Signal()
    obj = Callable()
    sig.connect(obj.a)
    gc.collect()
    assert sig.send(sender=None, val=2) == [(obj.a, 2)]


def test_connect_weak_callable_object_disappears_when_collected() -> None:
    sig = Signal()
    obj = Callable()
    sig.connect(obj)
    del obj
    gc.collect()
    assert_clean(sig)


def test_connect_strong_receiver_is_kept_alive() -> None:
    sig = Signal()

    def make() -> Any:
        def handler(**kwargs: object) -> str:
            return "kept"

        return handler

    sig.connect(make(), weak=False)
    gc.collect()
    assert [response for _, response in sig.send(sender=None)] == ["kept"]


def test_connect_weak_inline_lambda_is_collected() -> None:
    sig = Signal()
    sig.connect(lambda **kwargs: 1)
    gc.collect()
    assert_clean(sig)


def test_connect_non_callable_raises_type_error() -> None:
    with pytest.raises(TypeError, match=r"^Signal receivers must be callable\.$"):
        Signal().connect(object())  # type: ignore[arg-type]  # wrong on purpose


def test_connect_receiver_without_kwargs_raises_value_error() -> None:
    def no_kwargs(sender: object) -> None:
        pass

    message = r"^Signal receivers must accept keyword arguments \(\*\*kwargs\)\.$"
    with pytest.raises(ValueError, match=message):
        Signal().connect(no_kwargs)


def test_connect_builtin_without_signature_is_accepted() -> None:
    sig = Signal()
    sig.connect(max, weak=False)  # inspect.signature(max) raises ValueError
    assert sig.has_listeners()


def test_connect_partial_accepting_kwargs_is_accepted() -> None:
    sig = Signal()
    bound = functools.partial(receiver_1_arg, "fixed")
    sig.connect(bound)
    assert sig.send(sender=None) == [(bound, "fixed")]


# -- dispatch_uid and disconnect ---------------------------------------------


def test_dispatch_uid_second_receiver_is_ignored() -> None:
    sig = Signal()

    def first(**kwargs: object) -> str:
        return "first"

    def second(**kwargs: object) -> str:
        return "second"

    sig.connect(first, dispatch_uid="uid")
    sig.connect(second, dispatch_uid="uid")
    assert sig.send(sender=None) == [(first, "first")]


def test_disconnect_by_dispatch_uid_removes_receiver() -> None:
    sig = Signal()
    sig.connect(receiver_1_arg, dispatch_uid="uid")
    assert sig.disconnect(dispatch_uid="uid") is True
    assert_clean(sig)


def test_disconnect_returns_true_when_connected() -> None:
    sig = Signal()
    sig.connect(receiver_1_arg)
    assert sig.disconnect(receiver_1_arg) is True


def test_disconnect_returns_false_when_not_connected() -> None:
    assert Signal().disconnect(receiver_1_arg) is False


def test_disconnect_with_other_sender_returns_false() -> None:
    sig = Signal()
    sig.connect(receiver_1_arg, sender="a")
    assert sig.disconnect(receiver_1_arg, sender="b") is False
    assert len(sig.receivers) == 1


def test_disconnect_bound_method_by_new_bound_method_object() -> None:
    sig = Signal()
    obj = Callable()
    sig.connect(obj.a)
    assert sig.disconnect(obj.a) is True
    assert_clean(sig)


def test_dispatch_uid_same_for_different_senders_registers_both() -> None:
    sig = Signal()
    sig.connect(receiver_1_arg, sender="a", dispatch_uid="uid")
    sig.connect(receiver_1_arg, sender="b", dispatch_uid="uid")
    assert len(sig.receivers) == 2


# -- send, ordering and errors -----------------------------------------------


def test_send_calls_receivers_in_connection_order() -> None:
    sig = Signal()
    calls: list[int] = []
    handlers = []
    for number in range(5):

        def handler(number: int = number, **kwargs: object) -> None:
            calls.append(number)

        handlers.append(handler)
        sig.connect(handler)
    sig.send(sender=None)
    assert calls == [0, 1, 2, 3, 4]


def test_send_without_receivers_returns_empty_list() -> None:
    assert Signal().send(sender=None, val=1) == []


def test_send_propagates_first_exception_and_stops() -> None:
    sig = Signal()
    later: list[object] = []
    sig.connect(failing)
    sig.connect(lambda **kwargs: later.append(1), weak=False)
    with pytest.raises(ValueError, match="this is an error"):
        sig.send(sender=None, val="x")
    assert later == []


def test_send_robust_returns_exception_for_failing_receiver() -> None:
    sig = Signal()
    sig.connect(failing)
    ((recv, err),) = sig.send_robust(sender=None, val="x")
    assert recv is failing
    assert isinstance(err, ValueError)
    assert err.__traceback__ is not None


def test_send_robust_calls_every_receiver() -> None:
    sig = Signal()
    sig.connect(failing)
    sig.connect(receiver_1_arg)
    responses = sig.send_robust(sender=None, val="ok")
    assert [recv for recv, _ in responses] == [failing, receiver_1_arg]
    assert responses[1][1] == "ok"


def test_send_robust_logs_failure(caplog: pytest.LogCaptureFixture) -> None:
    sig = Signal()
    sig.connect(failing)
    with caplog.at_level(logging.ERROR, logger="busignal.dispatch"):
        sig.send_robust(sender=None, val="x")
    (record,) = caplog.records
    assert record.name == "busignal.dispatch"
    assert record.getMessage() == (
        "Error calling failing in Signal.send_robust() (this is an error)"
    )
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)


def test_send_robust_does_not_catch_base_exception() -> None:
    sig = Signal()

    def interrupt(**kwargs: object) -> None:
        raise KeyboardInterrupt

    sig.connect(interrupt)
    with pytest.raises(KeyboardInterrupt):
        sig.send_robust(sender=None)


def test_send_robust_without_receivers_returns_empty_list() -> None:
    assert Signal().send_robust(sender=None) == []


# -- sender filtering and has_listeners --------------------------------------


def test_send_calls_receiver_only_for_its_sender() -> None:
    sig = Signal()
    a, b = Sender(), Sender()
    sig.connect(receiver_1_arg, sender=a)
    assert sig.send(sender=b, val=1) == []
    assert sig.send(sender=a, val=1) == [(receiver_1_arg, 1)]


def test_send_calls_sender_none_receiver_for_every_sender() -> None:
    sig = Signal()
    sig.connect(receiver_1_arg)
    assert sig.send(sender=Sender(), val=1) == [(receiver_1_arg, 1)]


def test_has_listeners_false_without_receivers() -> None:
    assert Signal().has_listeners() is False


def test_has_listeners_true_after_connect() -> None:
    sig = Signal()
    sig.connect(receiver_1_arg)
    assert sig.has_listeners() is True
    assert sig.has_listeners(sender=object()) is True


def test_has_listeners_for_other_sender_is_false() -> None:
    sig = Signal()
    sig.connect(receiver_1_arg, sender="a")
    assert sig.has_listeners(sender="a") is True
    assert sig.has_listeners(sender="b") is False
    assert sig.has_listeners() is False


def test_sender_collected_drops_its_registrations() -> None:
    sig = Signal()
    sender = Sender()
    sig.connect(receiver_1_arg, sender=sender)
    del sender
    gc.collect()
    assert sig.live_registrations() == []
    assert sig.receivers == []


def test_sender_collected_does_not_route_to_new_object() -> None:
    sig = Signal()
    sender = Sender()
    sig.connect(receiver_1_arg, sender=sender)
    old_id = id(sender)
    del sender
    gc.collect()
    # A new object may reuse the id: the old registration must not match it.
    for _ in range(100):
        new = Sender()
        if id(new) == old_id:
            break
    assert sig.send(sender=new, val=1) == []


def test_sender_not_weak_referenceable_is_kept() -> None:
    sig = Signal()
    sig.connect(receiver_1_arg, sender=("tuple", "sender"))
    gc.collect()
    (registration,) = sig.live_registrations()
    assert registration.sender == ("tuple", "sender")


# -- caching -----------------------------------------------------------------


def test_use_caching_caches_receivers_per_sender() -> None:
    sig = Signal(use_caching=True)
    sender = Sender()
    sig.connect(receiver_1_arg, sender=sender)
    sig.send(sender=sender, val=1)
    assert sender in sig.sender_receivers_cache


def test_use_caching_marks_sender_without_receivers() -> None:
    sig = Signal(use_caching=True)
    sig.connect(receiver_1_arg, sender=Sender)
    sender = Sender()
    assert sig.send(sender=sender, val=1) == []
    assert sig.sender_receivers_cache[sender] is signal_module.NO_RECEIVERS


def test_use_caching_connect_invalidates_cache() -> None:
    sig = Signal(use_caching=True)
    sender = Sender()
    sig.send(sender=sender, val=1)
    sig.connect(receiver_1_arg, sender=sender)
    assert sig.send(sender=sender, val=1) == [(receiver_1_arg, 1)]


def test_use_caching_disconnect_invalidates_cache() -> None:
    sig = Signal(use_caching=True)
    sender = Sender()
    sig.connect(receiver_1_arg, sender=sender)
    sig.send(sender=sender, val=1)
    sig.disconnect(receiver_1_arg, sender=sender)
    assert sig.send(sender=sender, val=1) == []


def test_use_caching_cache_does_not_keep_sender_alive() -> None:
    sig = Signal(use_caching=True)
    sender = Sender()
    sig.connect(receiver_1_arg, sender=sender)
    sig.send(sender=sender, val=1)
    del sender
    gc.collect()
    assert len(sig.sender_receivers_cache) == 0


def test_use_caching_collected_receiver_not_called_from_cache() -> None:
    sig = Signal(use_caching=True)
    obj = Callable()
    sig.connect(obj.a, sender=Sender)
    sig.send(sender=Sender, val=1)
    del obj
    gc.collect()
    assert sig.send(sender=Sender, val=1) == []


def test_use_caching_sender_none_is_not_cached_and_works() -> None:
    sig = Signal(use_caching=True)
    sig.connect(receiver_1_arg)
    assert sig.send(sender=None, val=1) == [(receiver_1_arg, 1)]


def test_use_caching_string_sender_works() -> None:
    sig = Signal(use_caching=True)
    sig.connect(receiver_1_arg, sender="orders")
    assert sig.send(sender="orders", val=1) == [(receiver_1_arg, 1)]


# -- thread safety -----------------------------------------------------------


def test_concurrent_connect_disconnect_send_is_safe() -> None:
    sig = Signal()
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)
    keep = [Callable() for _ in range(8)]
    sig.connect(receiver_1_arg, dispatch_uid="stable")

    def work(index: int) -> None:
        try:
            barrier.wait()
            for round_ in range(200):
                obj = Callable()
                sig.connect(obj.a)
                sig.connect(keep[index].a, sender=index)
                responses = sig.send(sender=index, val=round_)
                assert (receiver_1_arg, round_) in responses
                assert sig.disconnect(obj.a) is True
                sig.send_robust(sender=None, val=round_)
        except BaseException as exc:  # collected and re-checked below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    gc.collect()
    assert len(sig.live_registrations()) == 9


# -- receiver decorator ------------------------------------------------------


def test_receiver_decorator_connects_and_returns_function() -> None:
    sig = Signal()

    @receiver(sig)
    def handler(**kwargs: object) -> str:
        return "handled"

    assert handler(sender=None) == "handled"
    assert sig.send(sender=None) == [(handler, "handled")]


def test_receiver_decorator_connects_list_of_signals() -> None:
    first, second = Signal(), Signal()

    @receiver([first, second], sender="s")
    def handler(**kwargs: object) -> int:
        return 1

    assert first.send(sender="s") == [(handler, 1)]
    assert second.send(sender="s") == [(handler, 1)]
    assert second.send(sender="other") == []


def test_receiver_decorator_rejects_non_signal() -> None:
    message = r"receiver\(\) expects a Signal or a list of Signals, got 'str'"
    with pytest.raises(TypeError, match=message):
        receiver("post_save")  # type: ignore[arg-type]  # wrong on purpose


def test_receiver_decorator_rejects_list_with_non_signal() -> None:
    with pytest.raises(TypeError, match=r"got 'int' in the list"):
        receiver([Signal(), 3])  # type: ignore[list-item]  # wrong on purpose


# -- name, providing_args, registry ------------------------------------------


def test_signal_repr_shows_name() -> None:
    assert repr(Signal("pizza_done")) == "<Signal 'pizza_done'>"


def test_signal_name_defaults_to_none() -> None:
    assert Signal().name is None


@pytest.mark.parametrize("name", ["", "has space", "tab\t", "{brace}", "a}", "a#1"])
def test_signal_name_invalid_raises_value_error(name: str) -> None:
    with pytest.raises(ValueError, match="without whitespace, braces or"):
        Signal(name)


def test_signal_name_invalid_is_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        Signal(["size"])  # type: ignore[arg-type]  # Django 1.x positional form


def test_providing_args_kept_as_frozenset() -> None:
    sig = Signal(providing_args=["size", "toppings"])
    assert sig.providing_args == frozenset({"size", "toppings"})


def test_providing_args_does_not_restrict_kwargs() -> None:
    sig = Signal(providing_args=["size"])
    sig.connect(receiver_1_arg)
    assert sig.send(sender=None, val=1, other=2) == [(receiver_1_arg, 1)]


def test_named_signals_lists_signals_sharing_a_name() -> None:
    first = Signal("registry_shared")
    second = Signal("registry_shared")
    assert named_signals()["registry_shared"] == [first, second]


def test_named_signals_omits_unnamed_signals() -> None:
    sig = Signal()
    assert all(sig not in signals for signals in named_signals().values())


def test_named_signals_drops_collected_signals() -> None:
    Signal("registry_temporary")
    gc.collect()
    assert "registry_temporary" not in named_signals()


# -- worker hooks ------------------------------------------------------------


def test_live_registrations_describe_each_connection() -> None:
    sig = Signal()
    sig.connect(receiver_1_arg, sender=Sender, broadcast=True)
    assert sig.live_registrations() == [
        Registration(
            receiver_id=f"{__name__}.receiver_1_arg",
            receiver=receiver_1_arg,
            sender_name=f"{__name__}.Sender",
            sender=Sender,
            is_async=False,
            broadcast=True,
        )
    ]


def test_live_registrations_filter_by_sender_name() -> None:
    sig = Signal()

    def for_all(**kwargs: object) -> None:
        pass

    sig.connect(for_all)
    sig.connect(receiver_1_arg, sender="orders")
    sig.connect(failing, sender="invoices")
    found = [r.receiver for r in sig.live_registrations(sender_name="orders")]
    assert found == [for_all, receiver_1_arg]


def test_live_registrations_use_dispatch_uid_as_receiver_id() -> None:
    sig = Signal()
    sig.connect(receiver_1_arg, dispatch_uid="my-uid")
    assert [r.receiver_id for r in sig.live_registrations()] == ["my-uid"]


def test_live_registrations_sender_none_has_empty_name() -> None:
    sig = Signal()
    sig.connect(receiver_1_arg)
    (registration,) = sig.live_registrations()
    assert (registration.sender_name, registration.sender) == ("", None)


def test_find_receiver_returns_live_receiver() -> None:
    sig = Signal()
    sig.connect(receiver_1_arg)
    assert sig.find_receiver(f"{__name__}.receiver_1_arg") is receiver_1_arg


def test_find_receiver_unknown_id_returns_none() -> None:
    assert Signal().find_receiver("nowhere.nothing") is None


def test_find_receiver_collected_receiver_returns_none() -> None:
    sig = Signal()
    obj = Callable()
    sig.connect(obj.a)
    del obj
    gc.collect()
    assert sig.find_receiver(f"{__name__}.Callable.a") is None


def test_module_all_is_sorted_and_complete() -> None:
    assert signal_module.__all__ == sorted(signal_module.__all__)
    assert set(signal_module.__all__) == {
        "Registration",
        "Signal",
        "named_signals",
        "receiver",
    }
