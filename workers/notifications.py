"""Service ``notifications``: emails about orders and new users.

Run it with ``busignal worker busignal.examples.notifications --service
notifications``.
``welcome_email`` raises on purpose for an address at ``example.invalid``,
to show how ``send`` and ``send_robust`` report a remote failure.
"""

from __future__ import annotations

import logging
from typing import Any

from busignal import receiver
from busignal.examples.signals import order_paid, user_signed_up

__all__ = ["UndeliverableError", "order_email", "welcome_email"]

logger = logging.getLogger(__name__)


class UndeliverableError(Exception):
    """An email address that mail cannot be delivered to."""


@receiver(order_paid)
def order_email(sender: Any, order_id: int, amount: int, **kwargs: Any) -> str:
    """Email the buyer that their order is paid."""
    logger.info("emailed about order %s", order_id)
    return f"emailed about order {order_id}"


@receiver(user_signed_up)
def welcome_email(sender: Any, email: str, **kwargs: Any) -> str:
    """Welcome a new user; raises UndeliverableError for example.invalid."""
    if email.endswith("@example.invalid"):
        raise UndeliverableError(f"cannot deliver to {email!r}")
    return f"welcomed {email}"
