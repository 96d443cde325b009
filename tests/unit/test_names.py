"""Wire names of senders and receivers: the same in every process."""

from __future__ import annotations

import functools
from typing import Any

from busignal.names import receiver_id, sender_name


class Order:
    def handle(self, **kwargs: Any) -> None:
        """A bound-method receiver."""


class _Meta:
    label = "shop.Order"


class Model:
    """Looks like a Django model: its ``_meta`` has a ``label``."""

    _meta = _Meta()


def on_order(**kwargs: Any) -> None:
    """A function receiver."""


def test_sender_name_of_none_is_empty() -> None:
    assert sender_name(None) == ""


def test_sender_name_of_a_string_is_itself() -> None:
    assert sender_name("shop.Order") == "shop.Order"


def test_sender_name_of_a_class_is_module_and_qualname() -> None:
    assert sender_name(Order) == f"{__name__}.Order"


def test_sender_name_of_an_instance_is_its_class_name() -> None:
    assert sender_name(Order()) == f"{__name__}.Order"


def test_sender_name_of_a_django_model_is_its_label() -> None:
    assert sender_name(Model) == "shop.Order"
    assert sender_name(Model()) == "shop.Order"


def test_receiver_id_prefers_dispatch_uid() -> None:
    assert receiver_id(on_order, "billing-charge") == "billing-charge"


def test_receiver_id_of_function_method_and_partial() -> None:
    assert receiver_id(on_order) == f"{__name__}.on_order"
    assert receiver_id(Order().handle) == f"{__name__}.Order.handle"
    assert receiver_id(functools.partial(on_order, x=1)) == f"{__name__}.on_order"
