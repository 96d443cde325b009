"""The error tree: every exception busignal defines is a drawn BusignalError."""

from __future__ import annotations

import importlib
import pkgutil
import re
from types import ModuleType

import pytest

import busignal
from busignal import errors
from busignal.admin.dead import AmbiguousId
from busignal.cli.embedded import EmbeddedUnavailable
from busignal.codec import DecodeError, register
from busignal.errors import BusignalError, CodecError
from busignal.wire.envelope import BadEntry

SKIPPED = ("busignal.examples", "busignal.__main__")


def _modules() -> list[ModuleType]:
    """Every busignal module, but examples and extras whose packages are missing."""
    found = []
    for info in pkgutil.walk_packages(busignal.__path__, "busignal.", onerror=print):
        if info.name.startswith(SKIPPED):
            continue
        try:
            found.append(importlib.import_module(info.name))
        except ImportError:
            if not info.name.startswith("busignal.contrib."):
                raise
        except Exception as exc:
            # Django models import only inside a configured project.
            django_error = type(exc).__module__.startswith("django.")
            if not (info.name.startswith("busignal.contrib.django.") and django_error):
                raise
    return found


def _exception_classes() -> set[type[BaseException]]:
    return {
        obj
        for module in _modules()
        for obj in vars(module).values()
        # type(obj), not isinstance: a lazy object (Django's settings) would
        # set itself up when asked for its __class__.
        if issubclass(type(obj), type)
        and issubclass(obj, BaseException)
        and obj.__module__.startswith("busignal.")
        and not obj.__module__.startswith(SKIPPED)
    }


EXCEPTIONS = sorted(_exception_classes(), key=lambda cls: cls.__qualname__)


def test_errors_walk_finds_the_package_exceptions() -> None:
    assert {BusignalError, DecodeError, BadEntry, AmbiguousId} <= set(EXCEPTIONS)


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=lambda cls: cls.__qualname__)
def test_errors_every_exception_is_a_busignal_error(cls: type[BaseException]) -> None:
    assert issubclass(cls, BusignalError)


def _drawn() -> dict[str, str | None]:
    """errors.py's docstring tree: each drawn class name -> its drawn parent."""
    assert errors.__doc__ is not None
    tree = errors.__doc__.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    lines = tree.splitlines()
    root = lines[0].strip()
    parents: dict[str, str | None] = {root: None}
    path = [root]
    for line in lines[1:]:
        branch = re.match(r"\s*((?:│   |    )*)[├└]── (\w+)", line)
        if branch is None:
            continue  # a description's second line
        depth = len(branch[1]) // 4 + 1
        del path[depth:]
        parents[branch[2]] = path[-1]
        path.append(branch[2])
    return parents


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=lambda cls: cls.__qualname__)
def test_errors_every_exception_is_drawn_under_its_base(
    cls: type[BaseException],
) -> None:
    bases = [b for b in cls.__mro__[1:] if b in EXCEPTIONS]
    parent = bases[0].__name__ if bases else None

    assert cls.__name__ in _drawn()
    assert _drawn()[cls.__name__] == parent


def test_errors_tree_draws_only_classes_that_exist() -> None:
    assert set(_drawn()) == {cls.__name__ for cls in EXCEPTIONS}


def test_errors_all_is_sorted_and_names_every_class() -> None:
    defined = {cls.__name__ for cls in EXCEPTIONS if cls.__module__ == errors.__name__}

    assert errors.__all__ == sorted(errors.__all__)
    assert set(errors.__all__) == defined


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (DecodeError, ValueError),
        (CodecError, ValueError),
        (AmbiguousId, ValueError),
        (BadEntry, Exception),
        (EmbeddedUnavailable, Exception),
    ],
)
def test_errors_leaves_stay_the_builtin_they_were(
    cls: type[BaseException], builtin: type[BaseException]
) -> None:
    # except clauses written before the leaf joined the tree keep catching it.
    assert issubclass(cls, builtin)


def test_errors_codec_register_refusal_is_a_codec_error() -> None:
    with pytest.raises(CodecError, match=r"0\.\.63"):
        register(complex, 64, repr, complex)
