"""Dead letters and inspect on a partitioned signal (memory://)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from busignal import Signal
from busignal.admin import dead
from busignal.admin.inspection import inspect_bus
from busignal.bus.bus import Bus
from busignal.cli.app import main
from busignal.testing import drain

from .bus_helpers import Recorder, Served, delivery

PARTITIONS = 3
SAME = "9999999999999-1"  # an entry id put in several dead streams


@pytest.fixture
def poisoned(bus: Bus, name: str) -> Served[tuple[int, str]]:
    """Six events of a 3-partition signal, all dead-lettered by service 'svc'.

    The receiver raises while ``failing`` is set (the default) and records
    ``(n, entry id)`` once it is cleared.
    """
    handled: Recorder[tuple[int, str]] = Recorder()
    sig = Signal(name, partitions=PARTITIONS)
    failing = [True]

    def poison(n: int, **kwargs: object) -> None:
        if failing[0]:
            raise RuntimeError(f"poison {n}")
        handled.add((n, delivery().entry_id))

    sig.connect(poison, weak=False)
    drain(bus, "svc", signals=[name])  # the service joins every partition
    sig.publish_many(None, [{"n": n} for n in range(6)])  # round-robin
    drain(bus, "svc", signals=[name], max_deliveries=1)
    failing.clear()
    failing.append(False)
    return Served(sig, handled)


def _n(reason: str) -> int:
    found = re.search(r"poison (\d+)", reason)
    assert found, reason
    return int(found.group(1))


def _partitions_of_events(bus: Bus, name: str) -> dict[int, int]:
    return {p: int(bus.client.xlen(bus.keys.events(name, p))) for p in range(3)}


def test_dead_list_shows_the_letters_of_every_partition(
    bus: Bus, name: str, poisoned: Served[tuple[int, str]]
) -> None:
    letters = dead.list_dead(bus, name)

    assert len(letters) == 6
    assert sorted({d.partition for d in letters}) == [0, 1, 2]
    assert [d.partition for d in letters] == sorted(d.partition for d in letters)
    for partition in range(PARTITIONS):
        ids = [d.id for d in letters if d.partition == partition]
        assert len(ids) == 2
        stored: Any = bus.client.xrange(bus.keys.dead(name, partition))
        assert ids == [i.decode() for i, _ in stored]  # oldest first
    assert all(d.service == "svc" and "poison" in d.reason for d in letters)
    assert dead.list_dead(bus, name, count=4) == letters[:4]


def test_dead_list_finds_partitions_whose_count_was_not_recorded(
    bus: Bus, name: str, poisoned: Served[tuple[int, str]]
) -> None:
    bus.client.delete(bus.keys.partitions(name))

    assert len(dead.list_dead(bus, name)) == 6


def test_dead_replay_returns_each_letter_to_its_partition_and_it_is_handled(
    bus: Bus, name: str, poisoned: Served[tuple[int, str]]
) -> None:
    # the poison's reason names n: where each event died
    died_in = {_n(d.reason): d.partition for d in dead.list_dead(bus, name)}
    before = _partitions_of_events(bus, name)

    new_ids = dead.replay(bus, name)
    after = _partitions_of_events(bus, name)
    drain(bus, "svc", signals=[name])

    assert len(new_ids) == 6
    assert {p: after[p] - before[p] for p in after} == {0: 2, 1: 2, 2: 2}
    assert dead.list_dead(bus, name) == []
    handled = dict(poisoned.seen.items)
    assert sorted(handled) == list(range(6))
    for n, entry_id in handled.items():
        stream = bus.keys.events(name, died_in[n])
        assert bus.client.xrange(stream, entry_id, entry_id), (n, died_in[n])


def test_dead_replay_of_partition_qualified_and_plain_ids(
    bus: Bus, name: str, poisoned: Served[tuple[int, str]]
) -> None:
    letters = dead.list_dead(bus, name)
    first = next(d for d in letters if d.partition == 1)
    # ids of letters of different partitions often collide (same millisecond):
    # one the other partitions cannot have
    bus.client.xadd(bus.keys.dead(name, 2), letters[0].fields, id=SAME)  # type: ignore[arg-type]

    assert len(dead.replay(bus, name, [f"1:{first.id}", SAME])) == 2

    left = {d.ref for d in dead.list_dead(bus, name)}
    assert left == {d.ref for d in letters} - {first.ref}
    assert _partitions_of_events(bus, name)[2] == 3  # 2 first sends + the replay


def test_dead_replay_of_an_id_in_several_partitions_is_refused(
    bus: Bus, name: str, poisoned: Served[tuple[int, str]]
) -> None:
    fields = dead.list_dead(bus, name)[0].fields
    for partition in (1, 2):
        bus.client.xadd(bus.keys.dead(name, partition), fields, id=SAME)  # type: ignore[arg-type]

    with pytest.raises(dead.AmbiguousId, match=f"1:{SAME}, 2:{SAME}"):
        dead.replay(bus, name, [SAME])
    assert len(dead.list_dead(bus, name)) == 8  # nothing replayed

    assert len(dead.replay(bus, name, [f"2:{SAME}"])) == 1
    assert [d.ref for d in dead.list_dead(bus, name) if d.id == SAME] == [f"1:{SAME}"]


def test_dead_purge_deletes_every_partition_and_counts_them_all(
    bus: Bus, name: str, poisoned: Served[tuple[int, str]]
) -> None:
    assert dead.purge(bus, name) == 6
    assert dead.list_dead(bus, name) == []
    assert not any(bus.client.exists(bus.keys.dead(name, p)) for p in range(3))


def test_dead_purge_of_ids_deletes_those_letters_of_their_partitions(
    bus: Bus, name: str, poisoned: Served[tuple[int, str]]
) -> None:
    letters = dead.list_dead(bus, name)
    first = next(d for d in letters if d.partition == 1)
    bus.client.xadd(bus.keys.dead(name, 2), letters[0].fields, id=SAME)  # type: ignore[arg-type]

    assert dead.purge(bus, name, [f"1:{first.id}", SAME]) == 2

    left = {d.ref for d in dead.list_dead(bus, name)}
    assert left == {d.ref for d in letters} - {first.ref}


def test_dead_purge_of_an_unknown_id_deletes_nothing(
    bus: Bus, name: str, poisoned: Served[tuple[int, str]]
) -> None:
    letters = dead.list_dead(bus, name)
    known = letters[-1].ref

    with pytest.raises(dead.UnknownId, match="'1:1-1', '7-7'") as info:
        dead.purge(bus, name, [known, "1:1-1", "7-7"])

    assert info.value.ids == ["1:1-1", "7-7"]
    assert dead.list_dead(bus, name) == letters


def test_dead_purge_of_an_id_in_several_partitions_is_refused(
    bus: Bus, name: str, poisoned: Served[tuple[int, str]]
) -> None:
    fields = dead.list_dead(bus, name)[0].fields
    for partition in (1, 2):
        bus.client.xadd(bus.keys.dead(name, partition), fields, id=SAME)  # type: ignore[arg-type]

    with pytest.raises(dead.AmbiguousId, match=f"1:{SAME}, 2:{SAME}"):
        dead.purge(bus, name, [SAME])
    assert len(dead.list_dead(bus, name)) == 8


def test_cli_dead_list_id_of_a_partition_shows_that_letter(
    bus: Bus,
    name: str,
    poisoned: Served[tuple[int, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    letter = next(d for d in dead.list_dead(bus, name) if d.partition == 2)
    args = ["--url", bus.config.url, "--namespace", bus.config.namespace]

    assert main(["dead", "list", name, "--id", letter.ref, *args, "--json"]) == 0

    assert json.loads(capsys.readouterr().out) == [letter.as_dict()]


def test_cli_dead_list_shows_partitions(
    bus: Bus,
    name: str,
    poisoned: Served[tuple[int, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["--url", bus.config.url, "--namespace", bus.config.namespace]

    assert main(["dead", "list", name, *args, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(d["partition"] for d in listed) == [0, 0, 1, 1, 2, 2]

    assert main(["dead", "list", name, *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith(("1:", "2:")) for line in lines) == 4


def test_cli_dead_replay_of_an_ambiguous_id_exits_2(
    bus: Bus,
    name: str,
    poisoned: Served[tuple[int, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    fields = dead.list_dead(bus, name)[0].fields
    for partition in (0, 2):
        bus.client.xadd(bus.keys.dead(name, partition), fields, id=SAME)  # type: ignore[arg-type]
    args = ["--url", bus.config.url, "--namespace", bus.config.namespace]

    assert main(["dead", "replay", name, "--id", SAME, *args]) == 2
    assert "PARTITION:ID" in capsys.readouterr().err
    assert main(["dead", "replay", name, "--id", f"0:{SAME}", *args]) == 0
    assert "replayed 1 dead letter(s)" in capsys.readouterr().out


def test_inspect_aggregates_the_partitions_of_a_signal(
    bus: Bus, name: str, poisoned: Served[tuple[int, str]]
) -> None:
    dead.replay(bus, name, [dead.list_dead(bus, name)[-1].ref])  # one pending

    [info] = [s for s in inspect_bus(bus).signals if s.name == name]

    assert info.partitions == PARTITIONS
    assert [p.partition for p in info.by_partition] == [0, 1, 2]
    assert info.dead == 5 == sum(p.dead for p in info.by_partition)
    assert info.length == 7 == sum(p.length for p in info.by_partition)
    [svc] = info.services
    assert svc.name == "svc"
    assert svc.lag == 1
    assert svc.pending == 0
    assert [p.services[0].lag for p in info.by_partition] == [0, 0, 1]
