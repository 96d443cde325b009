"""The "web" side of the Django test: migrate, then save and delete orders.

Run in its own process (``python web.py`` from this folder), so that the
test process never sets Django up. Prints what it did as JSON.
"""

from __future__ import annotations

import json
import os
import sys
from decimal import Decimal


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    import django

    django.setup()
    from django.apps import apps
    from django.core.management import call_command

    Order = apps.get_model("shop", "Order")

    call_command("migrate", verbosity=0)
    order = Order.objects.create(
        status="paid", total=Decimal("12.50"), note="leave at the door"
    )
    order.status = "shipped"
    order.save(update_fields=["status"])
    gone = Order.objects.create(status="new", total=Decimal("1.00"))
    gone_pk = gone.pk
    gone.delete()
    print(
        json.dumps(
            {
                "order": order.pk,
                "gone": gone_pk,
                "discovered": "shop.signals" in sys.modules,
            }
        )
    )


if __name__ == "__main__":
    main()
