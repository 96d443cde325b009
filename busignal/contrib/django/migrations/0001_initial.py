"""Create the outbox table (``busignal_outbox``)."""

from __future__ import annotations

from typing import Any, ClassVar

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):  # type: ignore[misc]  # Django is untyped
    initial = True

    dependencies: ClassVar[list[Any]] = []

    operations: ClassVar[list[Any]] = [
        migrations.CreateModel(
            name="OutboxEvent",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("signal", models.CharField(max_length=200)),
                ("sender", models.CharField(blank=True, max_length=255)),
                ("kwargs", models.BinaryField()),
                ("message_id", models.CharField(max_length=32)),
                ("trace", models.CharField(blank=True, default="", max_length=128)),
                (
                    "status",
                    models.CharField(
                        choices=[("pending", "pending"), ("dead", "dead")],
                        default="pending",
                        max_length=8,
                    ),
                ),
                ("reason", models.TextField(blank=True, default="")),
            ],
            options={
                "verbose_name": "outbox event",
                "db_table": "busignal_outbox",
                "indexes": [
                    models.Index(fields=["status", "id"], name="busignal_outbox_next")
                ],
            },
        ),
    ]
