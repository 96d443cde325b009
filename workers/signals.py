"""The named signals the example services share (same names in every process)."""

from __future__ import annotations

from busignal import Signal

__all__ = ["cache_invalidated", "order_paid", "page_viewed", "user_signed_up"]

#: An order was paid: kwargs ``order_id`` (int), ``amount`` (cents, int).
order_paid = Signal("order_paid")
#: A user signed up: kwargs ``email`` (str).
user_signed_up = Signal("user_signed_up")
#: A cached value changed: kwargs ``key`` (str); broadcast to every process.
cache_invalidated = Signal("cache_invalidated")
#: A page was viewed (metered usage): kwargs ``path`` (str).
page_viewed = Signal("page_viewed")
