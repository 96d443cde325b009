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

Delayed events not yet due are counted per signal (``scheduled``), with
the soonest due time (``next_due``, epoch seconds); a signal with
scheduled events but no stream yet is listed too.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from busignal.admin.outbox_status import OutboxInfo, parse
from busignal.bus.bus import Bus
from busignal.bus.partitions import partition_counts
from busignal.transport.clients import redact
from busignal.wire.records import text
from busignal.worker import heartbeat

__all__ = [
    "PartitionInfo",
    "Report",
    "ServiceInfo",
    "SignalInfo",
    "WorkerInfo",
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
    # entries delivered to the group so far; None before Redis 7 (a rate
    # is its change over time, as ``busignal dashboard`` shows it)
    entries_read: int | None = None


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """One partition of a signal: its stream's length, services and dead letters."""

    partition: int
    length: int
    dead: int
    services: tuple[ServiceInfo, ...]
    scheduled: int = 0  # delayed events not yet due
    next_due: float | None = None  # the soonest one's due time (epoch seconds)


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
    scheduled: int = 0  # delayed events not yet due, every partition
    next_due: float | None = None  # the soonest one's due time (epoch seconds)


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


def _service(group: dict[Any, Any]) -> ServiceInfo:
    info = {text(k): v for k, v in group.items()}
    lag = info.get("lag")
    read = info.get("entries-read")
    return ServiceInfo(
        name=text(info["name"]),
        consumers=int(info.get("consumers", 0)),
        pending=int(info.get("pending", 0)),
        lag=None if lag is None else int(lag),
        last_delivered_id=text(info.get("last-delivered-id", "")),
        entries_read=None if read is None else int(read),
    )


def _stream_id(value: str) -> tuple[int, int]:
    ms, _, seq = value.partition("-")
    return (int(ms), int(seq or 0)) if ms.isdigit() and seq.isdigit() else (-1, -1)


def _aggregate(services: list[ServiceInfo]) -> ServiceInfo:
    """One service over every partition it is registered on."""
    lags = [s.lag for s in services]
    reads = [s.entries_read for s in services]
    return ServiceInfo(
        name=services[0].name,
        # a worker joins every partition under one consumer name
        consumers=max(s.consumers for s in services),
        pending=sum(s.pending for s in services),
        lag=None if None in lags else sum(lag or 0 for lag in lags),
        last_delivered_id=max((s.last_delivered_id for s in services), key=_stream_id),
        entries_read=None if None in reads else sum(r or 0 for r in reads),
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
        scheduled=sum(p.scheduled for p in parts),
        next_due=min((p.next_due for p in parts if p.next_due), default=None),
    )


def _found(bus: Bus, client: Any) -> dict[str, list[tuple[int, str]]]:
    """Signal name -> its (partition, events key) pairs: streams, and the
    streams-to-be of signals that so far have only delayed events."""
    streams: dict[str, list[tuple[int, str]]] = {}
    keys = bus.keys
    for pattern, events_of in (
        (keys.events_pattern(), str),
        (keys.scheduled_pattern(), keys.events_of_scheduled),
    ):
        for raw in client.scan_iter(match=pattern, count=500):
            key = events_of(text(raw))
            try:
                name, partition = keys.partition_of(key)
            except ValueError:
                continue
            streams.setdefault(name, []).append((partition, key))
    return streams


def _partition(partition: int, answers: list[Any]) -> PartitionInfo | None:
    """One partition from its XLEN, XINFO GROUPS, dead XLEN, ZCARD and ZRANGE."""
    length, groups, dead, waiting, first = answers
    scheduled = 0 if isinstance(waiting, Exception) else int(waiting)
    if isinstance(groups, Exception):  # no stream (yet), or not a stream
        if isinstance(length, Exception) or int(length) or not scheduled:
            return None
        groups = []  # only delayed events so far
    services = tuple(sorted((_service(g) for g in groups), key=lambda s: s.name))
    due = float(first[0][1]) / 1000 if scheduled and first else None
    return PartitionInfo(partition, int(length), int(dead), services, scheduled, due)


def _signals(bus: Bus) -> list[SignalInfo]:
    client: Any = bus.client
    streams = _found(bus, client)
    found = [(n, p, k) for n in sorted(streams) for p, k in sorted(set(streams[n]))]
    pipe = client.pipeline(transaction=False)
    for _, _, key in found:
        pipe.xlen(key)
        pipe.xinfo_groups(key)
        pipe.xlen(bus.keys.dead_of(key))
        scheduled = bus.keys.scheduled_of(key)[0]
        pipe.zcard(scheduled)
        pipe.zrange(scheduled, 0, 0, withscores=True)
    for name in sorted(streams):
        pipe.smembers(bus.keys.partitions(name))
    answers = pipe.execute(raise_on_error=False) if found else []
    parts: dict[str, list[PartitionInfo]] = {}
    for index, (name, partition, _) in enumerate(found):
        info = _partition(partition, answers[5 * index : 5 * index + 5])
        if info is not None:
            parts.setdefault(name, []).append(info)
    recorded = dict(zip(sorted(streams), answers[5 * len(found) :], strict=True))
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
