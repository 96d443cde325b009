"""Connections to Redis: clients for every URL kind, and the raw command path."""
