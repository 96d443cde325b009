"""``manage.py busignal_worker [MODULE ...] --service NAME [options]``.

The same worker as ``busignal worker``, started the Django way (as
django-rq's ``rqworker``): Django is already set up by ``manage.py``, so
the project's ``--settings`` and ``DJANGO_SETTINGS_MODULE`` apply, the
installed apps' ``signals`` modules are already imported, and MODULE names
more receiver modules to import (none is needed when the apps connect
them). Every option of ``busignal worker`` is accepted, from its own parser
definition; ``busignal worker --help`` describes them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from busignal.cli.worker import add_worker_arguments, run_worker
from busignal.contrib.django import conf
from busignal.errors import BusignalError, BusUnavailable, UsageError

__all__ = ["Command"]


class Command(BaseCommand):  # type: ignore[misc]  # Django is untyped
    help = "Run a busignal worker: the receivers of one service, over Redis."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_worker_arguments(parser, django_settings=False)

    def handle(self, *unused: str, **options: Any) -> None:
        logging.basicConfig(  # a no-op when LOGGING gave the root logger handlers
            level=str(options.get("log_level", "INFO")).upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        args = argparse.Namespace(**options)
        try:
            source = conf.load(settings).source()
            code = run_worker(args, source, django=True)
        except ImproperlyConfigured as exc:
            raise CommandError(f"bad busignal settings: {exc}", returncode=2) from exc
        except (UsageError, BusUnavailable) as exc:
            returncode = 1 if isinstance(exc, BusUnavailable) else 2
            raise CommandError(str(exc), returncode=returncode) from exc
        except BusignalError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        if code:
            sys.exit(code)
