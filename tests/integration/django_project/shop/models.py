"""The shop's one model."""

from __future__ import annotations

from django.db import models


class Order(models.Model):  # type: ignore[misc]  # Django is untyped
    status = models.CharField(max_length=20)
    total = models.DecimalField(max_digits=10, decimal_places=2)
    note = models.CharField(max_length=200, blank=True)  # never forwarded
