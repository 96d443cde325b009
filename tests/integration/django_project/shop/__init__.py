"""A small shop app: its orders' saves are forwarded to the bus."""
