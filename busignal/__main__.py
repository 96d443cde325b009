"""``python -m busignal`` is the ``busignal`` command."""

from __future__ import annotations

import sys

from busignal.cli.app import main

if __name__ == "__main__":
    sys.exit(main())
