"""Imported by the busignal app's autodiscovery, in the web and worker alike.

A project's own named signals live in modules like this one.
"""

from __future__ import annotations

from busignal import Signal

order_shipped = Signal("order_shipped")
