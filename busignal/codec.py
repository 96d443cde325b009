"""The codec's old home: ``busignal.codec.register`` keeps working.

The codec lives in ``busignal.wire.codec``; this module re-exports what
users call.
"""

from __future__ import annotations

from busignal.wire.codec import DecodeError, dumps, loads, register

__all__ = ["DecodeError", "dumps", "loads", "register"]
