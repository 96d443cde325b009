"""Why ``busignal.wire.codec.dumps`` failed: the walk that finds the culprit's path.

Runs only after packing has failed, to build the SerializationError
message: the path below ``where`` of the first value that cannot be
encoded (``kwargs['order']['items'][2]``), its type and what to do. It
mirrors the codec's encoders value by value, so it reads the same tables
(``busignal.wire.codec_types``); kept apart so that the codec module is
about the format.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from busignal.errors import SerializationError
from busignal.wire.codec_types import (
    ENCODERS,
    MAX_DEPTH,
    NATIVE,
    Codec,
    Encoder,
    encode_codec,
    encode_dict,
    encode_iso,
    encode_list,
    lookup,
    type_name,
)

__all__: list[str] = []  # only busignal.wire.codec calls explain()

_HINT = (
    "pass a plain value (such as its primary key) or register a codec with "
    "busignal.wire.codec.register()"
)


def explain(value: object, where: str, exc: Exception) -> SerializationError:
    """Build the error for a failed dumps, finding where the culprit sits."""
    try:
        found = _find(value, where, 0, set())
    except RecursionError:
        found = (where, f"is nested too deeply ({exc})")
    if found is None:
        found = (where, f"cannot be encoded ({type(exc).__name__}: {exc})")
    path, problem = found
    return SerializationError(f"cannot encode {path}: {problem}")


_Found = tuple[str, str] | None
_TOO_DEEP = f"nests tuples, sets and codec values more than {MAX_DEPTH} deep"


def _find(value: object, path: str, depth: int, ancestors: set[int]) -> _Found:
    """Return (path, problem) for the first value below path that fails.

    Mirrors codec_types.default: the same encoder is chosen for every value.
    """
    cls = type(value)
    if cls in NATIVE:
        return None
    encode = ENCODERS.get(cls) or lookup(cls)
    if encode is None:
        return path, f"{type_name(cls)} is not serializable; {_HINT}"
    if _is_scalar(encode):
        return None  # a builtin scalar encoder never fails
    if id(value) in ancestors:
        return path, "refers back to a container enclosing it (a reference cycle)"
    ancestors.add(id(value))
    try:
        return _find_inside(value, encode, path, depth, ancestors)
    finally:
        ancestors.discard(id(value))


def _is_scalar(encode: Encoder) -> bool:
    if isinstance(encode, partial):
        return encode.func is encode_iso
    return encode is not encode_list and encode is not encode_dict


def _find_inside(
    value: Any, encode: Encoder, path: str, depth: int, ancestors: set[int]
) -> _Found:
    if encode is encode_dict:
        return _find_dict(value, path, depth, ancestors)
    if encode is encode_list:
        children = ((f"{path}[{i}]", item) for i, item in enumerate(value))
        return _find_all(children, depth, ancestors)
    if depth + 1 > MAX_DEPTH:
        return path, _TOO_DEEP
    if isinstance(encode, partial) and encode.func is encode_codec:
        return _find_codec(value, encode.args[0], path, depth + 1, ancestors)
    if isinstance(value, tuple):
        children = ((f"{path}[{i}]", item) for i, item in enumerate(value))
    else:
        children = ((f"{path}{{...}}", item) for item in value)
    return _find_all(children, depth + 1, ancestors)


def _find_all(
    children: Iterable[tuple[str, object]], depth: int, ancestors: set[int]
) -> _Found:
    for path, item in children:
        found = _find(item, path, depth, ancestors)
        if found is not None:
            return found
    return None


def _find_dict(
    value: dict[Any, Any], path: str, depth: int, ancestors: set[int]
) -> _Found:
    for key, item in value.items():
        found = _find(key, f"{path}<key>", depth, ancestors)
        found = found or _find(item, f"{path}[{key!r}]", depth, ancestors)
        if found is not None:
            return found
    return None


def _find_codec(
    value: object, codec: Codec, path: str, depth: int, ancestors: set[int]
) -> _Found:
    try:
        encoded = codec.encode(value)
    except Exception as exc:
        name = type_name(codec.cls)
        return path, f"the codec for {name} raised {type(exc).__name__}: {exc}"
    return _find(encoded, f"{path}<encoded>", depth, ancestors)
