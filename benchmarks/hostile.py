"""``python -m benchmarks.hostile``: CPU time of the worst payloads per size.

Decodes hand-made hostile payloads of each size with ``busignal.wire.codec``
(the decoder a worker runs on every event) and prints the CPU time of
each, and the worst one per size. Every payload here is refused
(DecodeError) or decodes; none may take more than milliseconds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import msgpack

from busignal.errors import DecodeError
from busignal.wire import codec

PRIME = 2**61 - 1  # ints that differ by a multiple of it hash alike
SIZES = (1024, 64 * 1024, 1024 * 1024)


def _ext(code: int, payload: bytes) -> bytes:
    data: bytes = msgpack.packb(msgpack.ExtType(code, payload))
    return data


def _fill(
    size: int, header: Callable[[int], bytes], item: Callable[[int], bytes]
) -> bytes:
    """A container of as many items as fit in ``size`` bytes (at most
    ``MAX_ITEMS``: more is refused before anything is built)."""
    items: list[bytes] = []
    total = 8
    while total < size and len(items) < codec.MAX_ITEMS:
        items.append(item(len(items) + 1))
        total += len(items[-1])
    return header(len(items)) + b"".join(items)


def _map(count: int) -> bytes:
    return b"\xdf" + count.to_bytes(4, "big")


def _array(count: int) -> bytes:
    return b"\xdd" + count.to_bytes(4, "big")


def _big(k: int) -> bytes:
    return _ext(73, (k * PRIME).to_bytes(16, "big"))


PAYLOADS: dict[str, Callable[[int], bytes]] = {
    "map of colliding big-int keys": lambda n: _fill(
        n, _map, lambda k: _big(k) + b"\xc0"
    ),
    "set of colliding big ints": lambda n: _ext(65, _fill(n, _array, _big)),
    "set of colliding Decimals": lambda n: _ext(
        65, _fill(n, _array, lambda k: _ext(71, str(k * PRIME).encode()))
    ),
    "map of tuple keys": lambda n: _fill(
        n, _map, lambda k: _ext(64, msgpack.packb([k, -k])) + b"\xc0"
    ),
    "array of empty tuples": lambda n: _fill(n, _array, lambda k: _ext(64, b"\x90")),
    "array of Decimals": lambda n: _fill(n, _array, lambda k: _ext(71, b"1.5")),
    "array of datetimes": lambda n: _fill(
        n, _array, lambda k: _ext(67, b"2024-01-01T00:00:00")
    ),
    "array of empty arrays": lambda n: _fill(n, _array, lambda k: b"\x90"),
    "map of int keys": lambda n: _fill(n, _map, lambda k: msgpack.packb(k) + b"\xc0"),
    "one big int": lambda n: _ext(73, b"\x7f" * (n - 8)),
    "Decimal, huge exponent": lambda n: _ext(71, b"1E+999999999999999999"),
    "Decimal, many digits": lambda n: _ext(71, b"1" * (n - 8)),
}


def cpu_seconds(data: bytes, repeat: int = 3) -> tuple[float, str]:
    """The least CPU time of ``repeat`` decodes, and how the decode ended."""
    best, outcome = float("inf"), ""
    for _ in range(repeat):
        started = time.process_time()
        try:
            codec.loads(data)
            outcome = "decoded"
        except DecodeError as exc:
            outcome = (
                "refused: " + str(exc).removeprefix("cannot decode payload: ")[:50]
            )
        best = min(best, time.process_time() - started)
    return best, outcome


def main() -> int:
    worst: dict[int, tuple[float, str]] = {}
    print(f"{'payload':32} {'size':>8} {'CPU ms':>8}  outcome")
    for name, build in PAYLOADS.items():
        for size in SIZES:
            data = build(size)
            seconds, outcome = cpu_seconds(data)
            print(f"{name:32} {len(data):>8} {seconds * 1000:>8.2f}  {outcome}")
            if seconds > worst.get(size, (-1.0, ""))[0]:
                worst[size] = (seconds, name)
    print()
    for size, (seconds, name) in worst.items():
        print(f"worst at {size:>8} bytes: {seconds * 1000:.2f} ms CPU ({name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
