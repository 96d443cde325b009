"""The built-in signals mirror Django's, named for the bus."""

from __future__ import annotations

import pytest

from busignal import signals
from busignal.dispatch.signal import Signal, named_signals

EXPECTED_ARGS = {
    "pre_save": {"instance", "raw", "using", "update_fields"},
    "post_save": {"instance", "created", "raw", "using", "update_fields"},
    "pre_delete": {"instance", "using", "origin"},
    "post_delete": {"instance", "using", "origin"},
    "m2m_changed": {"action", "instance", "reverse", "model", "pk_set", "using", "raw"},
    "request_started": {"environ"},
    "request_finished": set(),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_ARGS))
def test_builtin_signal_is_named_like_its_variable(name: str) -> None:
    sig = getattr(signals, name)
    assert isinstance(sig, Signal)
    assert sig.name == name


@pytest.mark.parametrize(("name", "args"), sorted(EXPECTED_ARGS.items()))
def test_builtin_signal_documents_django_kwargs(name: str, args: set[str]) -> None:
    assert getattr(signals, name).providing_args == frozenset(args)


@pytest.mark.parametrize("name", sorted(EXPECTED_ARGS))
def test_builtin_signal_is_in_named_registry(name: str) -> None:
    assert getattr(signals, name) in named_signals()[name]


def test_builtin_signals_all_is_sorted_and_complete() -> None:
    assert signals.__all__ == sorted(EXPECTED_ARGS)


def test_builtin_model_signal_delivers_to_sender_receiver() -> None:
    class Pizza:
        pass

    def on_save(instance: object, created: bool, **kwargs: object) -> bool:
        return created

    signals.post_save.connect(on_save, sender=Pizza)
    try:
        responses = signals.post_save.send(
            sender=Pizza, instance=Pizza(), created=True, raw=False, using="default"
        )
    finally:
        signals.post_save.disconnect(on_save, sender=Pizza)
    assert responses == [(on_save, True)]
