"""``busignal worker``: run the receivers of a service until SIGTERM.

Every flag but the modules has an environment default (``BUSIGNAL_*``,
named in ``--help``), so a container image can be configured the way
its platform prefers: a command line, or environment variables.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from busignal.bus.sources import Resolved, Source, resolve
from busignal.cli.flags import BadEnv, address, env_default, port
from busignal.errors import UsageError

__all__ = [
    "add_commands",
    "add_worker_arguments",
    "django_settings_module",
    "import_modules",
    "resolve_bus",
    "run_worker",
]

logger = logging.getLogger("busignal")

#: Metrics bind loopback unless told otherwise: a worker's metrics name
#: its signals, services and host, which the network at large need not
#: see. In a container, say ``--metrics-addr 0.0.0.0:9100`` to let
#: Prometheus in from outside.
METRICS_HOST = "127.0.0.1"

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE or lowered in _FALSE:
        return lowered in _TRUE
    raise ValueError(text)


def resolve_bus(
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


def _signals(args: argparse.Namespace) -> list[str] | None:
    if args.signal:
        return list(args.signal)
    names = [n.strip() for n in os.environ.get("BUSIGNAL_SIGNALS", "").split(",")]
    return [n for n in names if n] or None


def _run(args: argparse.Namespace) -> int:
    if args.reload:
        from busignal.cli.reload import run_reloading

        return run_reloading(args)
    settings = None
    module = django_settings_module(args.django_settings, os.environ)
    if module is not None:
        from busignal.contrib.django.runtime import setup

        settings = setup(module)  # what the settings say of the bus
    elif not args.modules:
        raise UsageError("name the modules that connect receivers")
    return run_worker(args, settings, django=module is not None)


def django_settings_module(flag: str | None, environ: Mapping[str, str]) -> str | None:
    """The Django settings a worker sets up: ``--django-settings``, else
    ``DJANGO_SETTINGS_MODULE`` from the environment (as ``manage.py`` reads it)."""
    return flag or environ.get("DJANGO_SETTINGS_MODULE", "").strip() or None


def run_worker(
    args: argparse.Namespace, settings: Source | None, *, django: bool
) -> int:
    """Run the worker the parsed options describe (``busignal worker`` and
    ``manage.py busignal_worker``); ``settings`` is what Django's say of the bus.

    With ``django``, the worker closes old database connections around each
    event (``busignal.contrib.django.hygiene``).
    """
    from busignal.worker.worker import Worker, WorkerConfig

    resolved = resolve_bus(args.url, args.namespace, settings)
    bus = resolved.bus()
    import_modules(args.modules)
    config = WorkerConfig(
        service=args.service,
        concurrency=args.concurrency,
        batch=args.batch,
        max_deliveries=args.max_deliveries,
        retry_backoff=args.retry_backoff,
        grace=args.grace,
        heartbeat_interval=args.heartbeat,
        consumer=args.name,
    )
    worker = Worker(bus, config, signals_to_serve=_signals(args))
    if not worker.routes.streams(bus.keys) and not worker.routes.broadcast_streams(
        bus.keys
    ):
        raise UsageError(
            f"modules {', '.join(args.modules) or '(none)'} register no receivers "
            f"on named signals; connect some with @receiver(Signal('name'))"
        )
    metrics = args.metrics_addr
    if args.metrics_port is not None:
        metrics = (METRICS_HOST, args.metrics_port)
    if metrics is not None:
        from busignal.contrib.prometheus import serve_metrics

        serve_metrics(worker, metrics[1], addr=metrics[0])
    if args.otel:
        from busignal.contrib import otel

        otel.instrument(worker=worker)
    if django:
        from busignal.contrib.django import hygiene

        hygiene.install(worker)  # after otel: it wraps the span hook
    logger.info(
        "worker %s serving %s on %s",
        worker.consumer,
        ", ".join(worker.routes.streams(bus.keys)),
        resolved.describe(),
    )
    return worker.run()


def _number_flags(worker: argparse.ArgumentParser) -> None:
    for flag, variable, kind, default, text in (
        ("--concurrency", "CONCURRENCY", int, 8, "threads for sync receivers"),
        ("--batch", "BATCH", int, 100, "entries one read takes per stream"),
        (
            "--max-deliveries",
            "MAX_DELIVERIES",
            int,
            5,
            "runs of a failing receiver without a retry policy before its "
            "event is dead-lettered",
        ),
        (
            "--retry-backoff",
            "RETRY_BACKOFF",
            float,
            2.0,
            "seconds between those runs; receivers connected with "
            "retry=busignal.Retry(...) follow their own policy",
        ),
        ("--grace", "GRACE", float, 30.0, "seconds to finish in-hand work on SIGTERM"),
        ("--heartbeat", "HEARTBEAT", float, 2.0, "seconds between heartbeats"),
    ):
        env_default(
            worker,
            flag,
            f"BUSIGNAL_{variable}",
            type=kind,
            default=default,
            help=text,
            metavar="N" if kind is int else "SECONDS",
            expected="a whole number" if kind is int else "a number",
        )


def add_commands(commands: Any) -> None:
    """Add ``busignal worker`` to the CLI."""
    worker = commands.add_parser(
        "worker",
        help="run the receivers of a service",
        description="Run the receivers the MODULES connect, as one worker of "
        "a service, until SIGTERM or SIGINT (then finish, acknowledge, exit "
        "0). Flags left out take their BUSIGNAL_* environment variable.",
    )
    add_worker_arguments(worker)
    worker.set_defaults(run=_run)


def _otel_flag(worker: argparse.ArgumentParser) -> None:
    raw = os.environ.get("BUSIGNAL_OTEL", "")
    default: object = False
    if raw:
        try:
            default = _boolean(raw)
        except ValueError:
            default = BadEnv(
                "BUSIGNAL_OTEL", raw, "--otel", "1/0, true/false, yes/no or on/off"
            )
    worker.add_argument(
        "--otel",
        action="store_true",
        default=default,
        help="record an OpenTelemetry span per delivery (extra 'otel'; the "
        "SDK is configured as usual, e.g. by opentelemetry-instrument) "
        "(env BUSIGNAL_OTEL: 1 or 0; default: off)",
    )


def add_worker_arguments(
    worker: argparse.ArgumentParser, *, django_settings: bool = True
) -> None:
    """The options of ``busignal worker``, also those of ``manage.py
    busignal_worker`` (which has Django's own ``--settings`` instead of
    ``--django-settings``)."""
    worker.add_argument("modules", nargs="*", help="modules that connect receivers")
    env_default(
        worker,
        "--service",
        "BUSIGNAL_SERVICE",
        help="service (consumer group); required",
        required=True,
    )
    worker.add_argument("--url", help="Redis URL (env BUSIGNAL_URL)")
    worker.add_argument(
        "--namespace", help="key namespace (env BUSIGNAL_NAMESPACE; default: busignal)"
    )
    _number_flags(worker)
    env_default(
        worker,
        "--name",
        "BUSIGNAL_WORKER_NAME",
        help="consumer name; default: SERVICE:HOST:PID:RANDOM, unique per process",
    )
    worker.add_argument(
        "--signal",
        action="append",
        metavar="NAME",
        help="serve only this signal, repeatable (env BUSIGNAL_SIGNALS, "
        "comma-separated; default: every signal the modules connect to)",
    )
    if django_settings:
        worker.add_argument(
            "--django-settings",
            metavar="MODULE",
            help="set DJANGO_SETTINGS_MODULE to MODULE and run django.setup() "
            "before importing the modules (default: DJANGO_SETTINGS_MODULE "
            "from the environment)",
        )
    env_default(
        worker,
        "--metrics-addr",
        "BUSIGNAL_METRICS_ADDR",
        type=address(METRICS_HOST),
        metavar="[HOST:]PORT",
        expected="[HOST:]PORT with a port in 1-65535",
        help=f"serve Prometheus metrics there (extra 'metrics'); HOST defaults "
        f"to {METRICS_HOST}, reachable from this machine only: use 0.0.0.0:PORT "
        f"for a scraper elsewhere; default: off",
    )
    worker.add_argument(
        "--metrics-port",
        type=port,
        metavar="PORT",
        help=f"the same as --metrics-addr {METRICS_HOST}:PORT (older spelling)",
    )
    _otel_flag(worker)
    worker.add_argument(
        "--reload",
        action="store_true",
        help="restart the worker when a .py file under the current directory "
        "changes, for development (extra 'reload')",
    )
