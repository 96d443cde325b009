"""``busignal worker --reload``: restart the worker when its code changes.

For development only. The worker runs in a child process, watched with
watchfiles (extra ``reload``); when a ``.py`` file under the current
directory changes, the child gets SIGINT, finishes and acknowledges what
it holds (as on any stop) and a fresh one starts with the new code. Its
receivers' modules are imported again from scratch, which reloading
modules in place could not promise.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys

from busignal.errors import ConfigurationError

__all__ = ["run_reloading"]

logger = logging.getLogger("busignal")


def run_reloading(args: argparse.Namespace) -> int:
    """Run ``busignal worker`` without ``--reload`` in a child, anew on a change."""
    try:
        import watchfiles
    except ImportError as exc:
        raise ConfigurationError(
            "--reload needs watchfiles: pip install 'busignal[reload]'"
        ) from exc
    argv = [arg for arg in args.argv if arg != "--reload"]
    root = os.getcwd()
    logger.info("reloading: watching the .py files under %s", root)
    watchfiles.run_process(
        root,
        # a command, not a function: the child is a fresh interpreter that
        # imports everything anew, whatever the parent had imported
        target=shlex.join([sys.executable, "-m", "busignal", *argv]),
        target_type="command",
        watch_filter=watchfiles.PythonFilter(),
        sigint_timeout=int(args.grace) + 1,  # the worker's own grace, then kill
        callback=lambda changes: logger.info(
            "reloading: %s changed",
            ", ".join(sorted(os.path.relpath(path, root) for _, path in changes)),
        ),
    )
    return 0
