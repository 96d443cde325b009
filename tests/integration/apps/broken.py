"""A module that fails to import, for the CLI's error path."""

raise RuntimeError("this module is broken on purpose")
