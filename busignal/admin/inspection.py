"""``busignal inspect``: what a namespace holds, read without changing it.

Signals are found by SCANning the namespace's events streams; their
services are the streams' consumer groups (XINFO GROUPS: consumers,
pending, lag, last delivered id); dead letters are the XLEN of each
stream's dead stream; workers come from the workers hash, with the age of
their last heartbeat: live ones, and apart from them the lost ones, whose
heartbeat lapsed (``busignal.worker.heartbeat``) until a live worker deletes their
record. (Named ``inspection`` so as not to shadow the
standard library's ``inspect``.)

With a Django outbox, the backlog its relays last reported is shown
too (``busignal.admin.outbox_status``).

A partitioned signal has one events stream per partition; it is reported
once, its partitions aggregated (lengths, dead letters, pending and lag
summed; consumers the most any partition has; the latest last delivered
id), with each partition's own figures under ``by_partition``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from busignal.admin.outbox_status import OutboxInfo, parse
from busignal.bus.bus import Bus
from busignal.bus.partitions import partition_counts
from busignal.cli.console import Console
from busignal.transport.clients import redact
from busignal.worker import heartbeat

__all__ = [
    "PartitionInfo",
    "Report",
    "ServiceInfo",
    "SignalInfo",
    "WorkerInfo",
    "add_commands",
    "inspect_bus",
]


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """One consumer group on one signal's stream."""

    name: str
    consumers: int
    pending: int
    lag: int | None  # None: the server does not report it (Redis < 7)
    last_delivered_id: str


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """One partition of a signal: its stream's length, services and dead letters."""

    partition: int
    length: int
    dead: int
    services: tuple[ServiceInfo, ...]


@dataclass(frozen=True, slots=True)
class SignalInfo:
    """One signal, its partitions aggregated.

    ``partitions`` is the largest count senders recorded (or more, if
    streams of higher partitions exist); ``by_partition`` has one entry per
    partition stream found, partition 0 first.
    """

    name: str
    length: int
    dead: int
    services: tuple[ServiceInfo, ...]
    partitions: int = 1
    by_partition: tuple[PartitionInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One worker process, from its last heartbeat."""

    name: str
    service: str
    host: str
    pid: int
    age: float  # seconds since its last heartbeat
    uptime: float  # a lost worker's: up to its last heartbeat
    handled: int
    streams: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Report:
    """Everything ``busignal inspect`` shows for one namespace."""

    url: str  # password redacted
    namespace: str
    signals: tuple[SignalInfo, ...]
    workers: tuple[WorkerInfo, ...]  # live: a heartbeat within the lapse
    lost: tuple[WorkerInfo, ...] = ()  # lapsed, not yet deleted
    outbox: tuple[OutboxInfo, ...] = ()  # as Django outbox relays reported

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _service(group: dict[Any, Any]) -> ServiceInfo:
    info = {_text(k): v for k, v in group.items()}
    lag = info.get("lag")
    return ServiceInfo(
        name=_text(info["name"]),
        consumers=int(info.get("consumers", 0)),
        pending=int(info.get("pending", 0)),
        lag=None if lag is None else int(lag),
        last_delivered_id=_text(info.get("last-delivered-id", "")),
    )


def _stream_id(value: str) -> tuple[int, int]:
    ms, _, seq = value.partition("-")
    return (int(ms), int(seq or 0)) if ms.isdigit() and seq.isdigit() else (-1, -1)


def _aggregate(services: list[ServiceInfo]) -> ServiceInfo:
    """One service over every partition it is registered on."""
    lags = [s.lag for s in services]
    return ServiceInfo(
        name=services[0].name,
        # a worker joins every partition under one consumer name
        consumers=max(s.consumers for s in services),
        pending=sum(s.pending for s in services),
        lag=None if None in lags else sum(lag or 0 for lag in lags),
        last_delivered_id=max((s.last_delivered_id for s in services), key=_stream_id),
    )


def _signal(name: str, parts: list[PartitionInfo], recorded: int) -> SignalInfo:
    by_service: dict[str, list[ServiceInfo]] = {}
    for part in parts:
        for service in part.services:
            by_service.setdefault(service.name, []).append(service)
    return SignalInfo(
        name=name,
        length=sum(p.length for p in parts),
        dead=sum(p.dead for p in parts),
        services=tuple(_aggregate(by_service[n]) for n in sorted(by_service)),
        partitions=max(recorded, parts[-1].partition + 1),
        by_partition=tuple(parts),
    )


def _signals(bus: Bus) -> list[SignalInfo]:
    client: Any = bus.client
    streams: dict[str, list[tuple[int, str]]] = {}
    for raw in client.scan_iter(match=bus.keys.events_pattern(), count=500):
        key = _text(raw)
        try:
            name, partition = bus.keys.partition_of(key)
        except ValueError:
            continue
        streams.setdefault(name, []).append((partition, key))
    found = [(n, p, k) for n in sorted(streams) for p, k in sorted(set(streams[n]))]
    pipe = client.pipeline(transaction=False)
    for _, _, key in found:
        pipe.xlen(key)
        pipe.xinfo_groups(key)
        pipe.xlen(bus.keys.dead_of(key))
    for name in sorted(streams):
        pipe.smembers(bus.keys.partitions(name))
    answers = pipe.execute(raise_on_error=False) if found else []
    parts: dict[str, list[PartitionInfo]] = {}
    for index, (name, partition, _) in enumerate(found):
        length, groups, dead = answers[3 * index : 3 * index + 3]
        if isinstance(groups, Exception):  # the key is not a stream
            continue
        services = tuple(sorted((_service(g) for g in groups), key=lambda s: s.name))
        info = PartitionInfo(partition, int(length), int(dead), services)
        parts.setdefault(name, []).append(info)
    recorded = dict(zip(sorted(streams), answers[3 * len(found) :], strict=True))
    signals = []
    for name in sorted(parts):
        members = recorded.get(name)
        count = partition_counts(None if isinstance(members, Exception) else members)
        signals.append(_signal(name, parts[name], count))
    return signals


def _workers(bus: Bus, now: float) -> tuple[list[WorkerInfo], list[WorkerInfo]]:
    """The live workers and the lost ones, each by service and name."""
    raw: Any = bus.client.hgetall(bus.keys.workers)
    beats, _ = heartbeat.read(raw)  # a record this version cannot read: not ours
    live: list[WorkerInfo] = []
    lost: list[WorkerInfo] = []
    for beat in beats:
        try:
            info = _worker(beat, now)
        except Exception:
            continue
        (live if beat.is_live(now) else lost).append(info)
    return sorted(live, key=_by_name), sorted(lost, key=_by_name)


def _worker(beat: heartbeat.Heartbeat, now: float) -> WorkerInfo:
    status = beat.status
    up_to = now if beat.is_live(now) else beat.seen
    return WorkerInfo(
        name=beat.name,
        service=str(status["service"]),
        host=str(status.get("host", "")),
        pid=int(status.get("pid", 0)),
        age=beat.age(now),
        uptime=max(0.0, up_to - float(status.get("started", up_to))),
        handled=int(status.get("handled", 0)),
        streams=tuple(str(s) for s in status.get("streams", ())),
    )


def _by_name(worker: WorkerInfo) -> tuple[str, str]:
    return worker.service, worker.name


def inspect_bus(bus: Bus) -> Report:
    """Read the namespace of ``bus``; BusUnavailable if Redis cannot be reached."""
    with bus.transport.errors():
        now = time.time()
        signals = _signals(bus)
        live, lost = _workers(bus, now)
        outbox = parse(bus.client.hgetall(bus.keys.outbox), now)
    return Report(
        url=redact(bus.config.url),
        namespace=bus.config.namespace,
        signals=tuple(signals),
        workers=tuple(live),
        lost=tuple(lost),
        outbox=tuple(outbox),
    )


def print_report(report: Report, console: Console) -> None:
    """The readable form: a signals table and a workers table."""
    console.line(f"namespace {report.namespace!r} on {report.url}")
    rows: list[list[object]] = []
    for sig in report.signals:
        first = [sig.name, sig.length, sig.dead]
        partitions: object = sig.partitions
        if not sig.services:
            rows.append([*first, "(no service)", "", "", "", "", partitions])
        for service in sig.services:
            lag = "?" if service.lag is None else service.lag
            rows.append(
                [
                    *first,
                    service.name,
                    service.consumers,
                    service.pending,
                    lag,
                    service.last_delivered_id,
                    partitions,
                ]
            )
            first, partitions = ["", "", ""], ""
    console.table(
        f"signals ({len(report.signals)})",
        [
            "signal",
            "length",
            "dead",
            "service",
            "consumers",
            "pending",
            "lag",
            "last",
            "partitions",
        ],
        rows,
    )
    console.table(
        f"live workers ({len(report.workers)})",
        ["worker", "service", "host", "pid", "heartbeat", "up", "handled"],
        [
            [w.name, w.service, w.host, w.pid, f"{w.age:.1f}s ago", *_up(w)]
            for w in report.workers
        ],
    )
    if report.lost:
        console.table(
            f"lost workers ({len(report.lost)}), no heartbeat for "
            f"{heartbeat.LAPSE_INTERVALS} intervals "
            f"(deleted after {heartbeat.FORGET_AFTER / 60:.0f} min)",
            ["worker", "service", "host", "pid", "last heartbeat", "was up", "handled"],
            [
                [w.name, w.service, w.host, w.pid, f"{_duration(w.age)} ago", *_up(w)]
                for w in report.lost
            ],
        )

    for box in report.outbox:
        oldest = (
            "" if box.oldest_age is None else f", oldest {_duration(box.oldest_age)}"
        )
        console.line(
            f"outbox of database {box.database!r}: {box.waiting} waiting{oldest}, "
            f"{box.dead} dead (relay {box.relay}, {_duration(box.reported_age)} ago)"
        )


def _duration(seconds: float) -> str:
    """``42s``, ``3m07s``, ``2h05m``: readable at a glance."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _up(worker: WorkerInfo) -> tuple[str, int]:
    return _duration(worker.uptime), worker.handled


def _run(args: argparse.Namespace, make_bus: Callable[..., Bus]) -> int:
    bus = make_bus(args.url, args.namespace)
    try:
        report = inspect_bus(bus)
    finally:
        bus.close()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print_report(report, Console(plain=args.plain))
    return 0


def add_commands(commands: Any, make_bus: Callable[..., Bus]) -> None:
    """Add ``busignal inspect`` to the CLI."""
    inspect = commands.add_parser(
        "inspect", help="signals, services, live and lost workers, dead letters"
    )
    inspect.add_argument("--url", help="Redis URL (default: BUSIGNAL_URL)")
    inspect.add_argument("--namespace", help="key namespace (default: busignal)")
    inspect.add_argument("--json", action="store_true", help="JSON, for scripts")
    inspect.add_argument("--plain", action="store_true", help="plain text, no rich")
    inspect.set_defaults(run=lambda args: _run(args, make_bus))
