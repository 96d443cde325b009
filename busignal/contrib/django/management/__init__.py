"""Management commands of the busignal Django app."""
