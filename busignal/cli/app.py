"""The ``busignal`` command: ``worker``, ``dead`` and the other subcommands.

Exit codes: 0 success; 1 runtime failure (Redis unreachable, forced stop);
2 bad usage (a module that does not import, no receivers, bad options).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from importlib import metadata

from busignal.bus.bus import Bus
from busignal.bus.sources import Resolved, Source, resolve
from busignal.errors import BusignalError, BusUnavailable, UsageError

__all__ = ["add_worker_arguments", "django_settings_module", "main", "run_worker"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _bus(url: str | None, namespace: str | None) -> Bus:
    return _resolve(url, namespace, None).bus()


def _resolve(
    url: str | None, namespace: str | None, settings: Source | None
) -> Resolved:
    """The bus from the flags, then the Django settings, then the environment."""
    flags = Source("command line", url=url, namespace=namespace)
    resolved = resolve(flags, settings, os.environ)
    if resolved is None:
        also = " or BUSIGNAL['URL'] in the Django settings" if settings else ""
        raise UsageError(f"no Redis URL: pass --url or set BUSIGNAL_URL{also}")
    return resolved


def import_modules(modules: Sequence[str]) -> None:
    """Import the modules that register receivers; UsageError if one fails."""
    sys.path.insert(0, os.getcwd())
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            detail = "".join(traceback.format_exception_only(exc)).strip()
            raise UsageError(f"cannot import module {name!r}: {detail}") from exc


def django_settings_module(flag: str | None, environ: Mapping[str, str]) -> str | None:
    """The Django settings a worker sets up: ``--django-settings``, else
    ``DJANGO_SETTINGS_MODULE`` from the environment (as ``manage.py`` reads it)."""
    return flag or environ.get("DJANGO_SETTINGS_MODULE", "").strip() or None


def _worker(args: argparse.Namespace) -> int:
    settings = None
    module = django_settings_module(args.django_settings, os.environ)
    if module is not None:
        from busignal.contrib.django.runtime import setup

        settings = setup(module)  # what the settings say of the bus
    elif not args.modules:
        raise UsageError("name the modules that connect receivers")
    return run_worker(args, settings, django=module is not None)


def run_worker(
    args: argparse.Namespace, settings: Source | None, *, django: bool
) -> int:
    """Run the worker the parsed options describe (``busignal worker`` and
    ``manage.py busignal_worker``); ``settings`` is what Django's say of the bus.

    With ``django``, the worker closes old database connections around each
    event (``busignal.contrib.django.hygiene``).
    """
    from busignal.worker.worker import Worker, WorkerConfig

    resolved = _resolve(args.url, args.namespace, settings)
    bus = resolved.bus()
    import_modules(args.modules)
    config = WorkerConfig(
        service=args.service,
        concurrency=args.concurrency,
        batch=args.batch,
        max_deliveries=args.max_deliveries,
        grace=args.grace,
        heartbeat_interval=args.heartbeat,
        consumer=args.name,
    )
    worker = Worker(bus, config, signals_to_serve=args.signal or None)
    if not worker.routes.streams(bus.keys) and not worker.routes.broadcast_streams(
        bus.keys
    ):
        raise UsageError(
            f"modules {', '.join(args.modules) or '(none)'} register no receivers "
            f"on named signals; connect some with @receiver(Signal('name'))"
        )
    if args.metrics_port is not None:
        from busignal.contrib.prometheus import serve_metrics

        serve_metrics(worker, args.metrics_port)
    if args.otel:
        from busignal.contrib import otel

        otel.instrument(worker=worker)
    if django:
        from busignal.contrib.django import hygiene

        hygiene.install(worker)  # after otel: it wraps the span hook
    logging.getLogger("busignal").info(
        "worker %s serving %s on %s",
        worker.consumer,
        ", ".join(worker.routes.streams(bus.keys)),
        resolved.describe(),
    )
    return worker.run()


def _version() -> str:
    """The installed distribution's version (what pip and bug reports name)."""
    try:
        return metadata.version("busignal")
    except metadata.PackageNotFoundError:  # run from a checkout never installed
        return "unknown (not installed)"


def add_worker_arguments(
    worker: argparse.ArgumentParser, *, django_settings: bool = True
) -> None:
    """The options of ``busignal worker``, also those of ``manage.py
    busignal_worker`` (which has Django's own ``--settings`` instead of
    ``--django-settings``)."""
    worker.add_argument("modules", nargs="*", help="modules that connect receivers")
    worker.add_argument("--service", required=True, help="service (consumer group)")
    worker.add_argument("--url", help="Redis URL (default: BUSIGNAL_URL)")
    worker.add_argument("--namespace", help="key namespace (default: busignal)")
    worker.add_argument("--concurrency", type=int, default=8, help="receiver threads")
    worker.add_argument(
        "--batch", type=int, default=100, help="entries read at a time per stream"
    )
    worker.add_argument("--max-deliveries", type=int, default=5)
    worker.add_argument("--grace", type=float, default=30.0, help="seconds on SIGTERM")
    worker.add_argument("--heartbeat", type=float, default=2.0, help="seconds")
    worker.add_argument("--name", help="consumer name (default: unique per process)")
    worker.add_argument(
        "--signal", action="append", help="serve only this signal (repeatable)"
    )
    if django_settings:
        worker.add_argument(
            "--django-settings",
            help="set DJANGO_SETTINGS_MODULE and run django.setup() before "
            "importing (default: DJANGO_SETTINGS_MODULE from the environment)",
        )
    worker.add_argument(
        "--metrics-port", type=int, help="serve Prometheus metrics on this port"
    )
    worker.add_argument(
        "--otel",
        action="store_true",
        help="record an OpenTelemetry span per delivery (extra 'otel'; the SDK "
        "is configured as usual, e.g. by opentelemetry-instrument)",
    )
    worker.add_argument("--log-level", default=argparse.SUPPRESS)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="busignal", description="Distributed Django signals over Redis streams."
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING...")
    parser.add_argument("--version", action="version", version=f"busignal {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    worker = commands.add_parser("worker", help="run the receivers of a service")
    add_worker_arguments(worker)
    worker.set_defaults(run=_worker)

    from busignal.admin import dead, inspection
    from busignal.cli import demo

    dead.add_commands(commands, _bus)
    inspection.add_commands(commands, _bus)
    demo.add_commands(commands, _bus)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.run(args)
    except UsageError as exc:
        print(f"busignal: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BusUnavailable as exc:
        print(f"busignal: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BusignalError as exc:
        print(f"busignal: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return code
