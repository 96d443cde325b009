"""``busignal_worker`` and ``busignal_relay``."""
