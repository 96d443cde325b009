"""The "web" side of the outbox tests, run in its own process.

``python outbox_web.py save COMMITTED ROLLED_BACK``: COMMITTED orders saved
one transaction each (status ``committed-N``), then ROLLED_BACK saved in one
``atomic()`` block that fails (status ``rolled-back-N``).
``python outbox_web.py fill N``: N ``order_shipped`` events written with
``outbox.publish`` in one transaction. Prints what it did as JSON.
"""

from __future__ import annotations

import json
import os
import sys
from decimal import Decimal
from importlib import import_module
from typing import Any


class Rollback(Exception):
    """Raised to roll a block back."""


def save(model: Any, committed: int, rolled_back: int) -> dict[str, object]:
    from django.db import transaction

    for n in range(committed):
        model.objects.create(status=f"committed-{n}", total=Decimal("1.00"))
    try:
        with transaction.atomic():
            for n in range(rolled_back):
                model.objects.create(status=f"rolled-back-{n}", total=Decimal("1.00"))
            raise Rollback
    except Rollback:
        pass
    return {"orders": model.objects.count()}


def fill(count: int) -> dict[str, object]:
    from django.db import transaction

    from busignal.contrib.django import outbox

    order_shipped = import_module("shop.signals").order_shipped

    with transaction.atomic():
        for n in range(count):
            outbox.publish(order_shipped, "shop", n=n)
    return {"written": count}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    import django

    django.setup()
    from django.apps import apps

    command, *numbers = sys.argv[1:]
    counts = [int(n) for n in numbers]
    if command == "save":
        done = save(apps.get_model("shop", "Order"), *counts)
    else:
        done = fill(*counts)
    print(json.dumps(done))


if __name__ == "__main__":
    main()
