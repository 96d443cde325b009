"""A module that registers no receivers."""
