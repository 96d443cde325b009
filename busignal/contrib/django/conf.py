"""Reading busignal's Django settings into one checked value.

Two forms are accepted: ``BUSIGNAL_URL = "redis://..."`` alone, or a
``BUSIGNAL`` dict::

    BUSIGNAL = {
        "URL": "redis://redis:6379/0",
        "NAMESPACE": "mysite",                  # default "busignal"
        "SECRET": "...",                        # or a list, newest first
        "OPTIONS": {"timeout": 5},              # more Bus options
        "FORWARD": {
            "shop.Order": {"signals": ["post_save"], "fields": ["status"]},
            # "outbox": True/False per model overrides OUTBOX
        },
        "REQUESTS": ["request_started"],        # request signals to forward
        "ON_ERROR": "raise",                    # or "log"
        "OUTBOX": False,                        # forward through the outbox
        "AUTODISCOVER": True,                   # import each app's signals
    }

Every mistake (an unknown key, signal or option) is an
``ImproperlyConfigured`` at startup naming the setting, not a surprise at
the first save.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from busignal.bus.sources import Source

__all__ = [
    "MODEL_SIGNALS",
    "REQUEST_SIGNALS",
    "SETTINGS",
    "BusignalSettings",
    "ForwardSpec",
    "load",
]

#: Model signals that can be forwarded, by their name in ``busignal.signals``.
MODEL_SIGNALS = ("pre_save", "post_save", "pre_delete", "post_delete", "m2m_changed")
#: How messages and start-up logs name the Django settings as a source.
SETTINGS = "Django settings"
#: Request signals that can be forwarded.
REQUEST_SIGNALS = ("request_started", "request_finished")

_KEYS = frozenset(
    {"URL", "NAMESPACE", "SECRET", "OPTIONS", "FORWARD", "REQUESTS"}
    | {"ON_ERROR", "AUTODISCOVER", "OUTBOX"}
)
_FORWARD_KEYS = frozenset(("signals", "fields", "on_commit", "outbox"))


@dataclass(frozen=True, slots=True)
class ForwardSpec:
    """Which signals of one model to forward, and which fields to send."""

    model: str
    signals: tuple[str, ...]
    fields: tuple[str, ...] = ()
    on_commit: bool = False
    #: Write the event to the outbox table in the save's transaction.
    outbox: bool = False


@dataclass(frozen=True, slots=True)
class BusignalSettings:
    """busignal's Django settings, checked."""

    url: str | None = None
    namespace: str | None = None
    secret: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    forward: tuple[ForwardSpec, ...] = ()
    requests: tuple[str, ...] = ()
    on_error: str = "raise"
    autodiscover: bool = True
    #: ``OUTBOX``: the default of each FORWARD entry's ``outbox``.
    outbox: bool = False

    @property
    def uses_outbox(self) -> bool:
        """Whether any event goes through the outbox table (it must exist)."""
        return self.outbox or any(spec.outbox for spec in self.forward)

    def source(self) -> Source:
        """The bus options these settings give, for ``busignal.bus.sources.resolve``.

        The environment and the command line fill in what the settings leave
        out (see ``busignal.bus.sources``); a secret here is never dropped.
        """
        return Source(
            SETTINGS,
            url=self.url,
            namespace=self.namespace,
            secrets=self.secret,
            options=self.options,
        )


def load(settings: object) -> BusignalSettings:
    """Read ``BUSIGNAL`` and ``BUSIGNAL_URL`` from a settings object."""
    raw = getattr(settings, "BUSIGNAL", None) or {}
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(
            f"BUSIGNAL must be a dict, got {type(raw).__name__}: {raw!r}"
        )
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ImproperlyConfigured(
            f"BUSIGNAL has unknown keys {unknown!r}; the known ones are "
            f"{sorted(_KEYS)!r}"
        )
    outbox = _flag("OUTBOX", raw.get("OUTBOX", False))
    return BusignalSettings(
        url=_url(raw.get("URL"), getattr(settings, "BUSIGNAL_URL", None)),
        namespace=_optional_str("NAMESPACE", raw.get("NAMESPACE")),
        secret=_secret(raw.get("SECRET")),
        options=_mapping("OPTIONS", raw.get("OPTIONS")),
        forward=_forward(raw.get("FORWARD"), outbox),
        requests=_requests(raw.get("REQUESTS")),
        on_error=_choice("ON_ERROR", raw.get("ON_ERROR", "raise"), ("raise", "log")),
        autodiscover=bool(raw.get("AUTODISCOVER", True)),
        outbox=outbox,
    )


def _url(in_dict: object, alone: object) -> str | None:
    url = _optional_str("URL", in_dict)
    other = _optional_str("BUSIGNAL_URL", alone)
    if url and other and url != other:
        raise ImproperlyConfigured(
            "BUSIGNAL['URL'] and BUSIGNAL_URL are both set and differ; keep one"
        )
    return url or other


def _optional_str(name: str, value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ImproperlyConfigured(f"BUSIGNAL {name} must be a string, got {value!r}")
    return value


def _secret(value: object) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(s, str) for s in value):
        return tuple(value)
    raise ImproperlyConfigured(
        "BUSIGNAL['SECRET'] must be a string or a list of strings (newest first)"
    )


def _mapping(name: str, value: object) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(f"BUSIGNAL['{name}'] must be a dict, got {value!r}")
    return dict(value)


def _flag(where: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ImproperlyConfigured(f"{where} must be True or False, got {value!r}")
    return value


def _choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ImproperlyConfigured(
            f"BUSIGNAL['{name}'] must be one of {choices!r}, got {value!r}"
        )
    return str(value)


def _names(where: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ImproperlyConfigured(f"{where} must be a list of names, got {value!r}")
    if not all(isinstance(v, str) for v in value):
        raise ImproperlyConfigured(f"{where} must hold only strings, got {value!r}")
    return tuple(value)


def _requests(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    names = _names("BUSIGNAL['REQUESTS']", value)
    for name in names:
        if name not in REQUEST_SIGNALS:
            raise ImproperlyConfigured(
                f"BUSIGNAL['REQUESTS']: {name!r} is not a request signal; "
                f"choose from {REQUEST_SIGNALS!r}"
            )
    return names


def _forward(value: object, outbox: bool) -> tuple[ForwardSpec, ...]:
    specs = _mapping("FORWARD", value)
    return tuple(
        _forward_spec(str(label), spec, outbox) for label, spec in specs.items()
    )


def _forward_spec(label: str, spec: object, outbox: bool = False) -> ForwardSpec:
    where = f"BUSIGNAL['FORWARD'][{label!r}]"
    if label.count(".") != 1:
        raise ImproperlyConfigured(
            f"{where}: a model is named 'app_label.ModelName', got {label!r}"
        )
    if not isinstance(spec, Mapping):
        raise ImproperlyConfigured(
            f"{where} must be a dict like {{'signals': ['post_save'], "
            f"'fields': ['status']}}, got {spec!r}"
        )
    unknown = sorted(set(spec) - _FORWARD_KEYS)
    if unknown:
        raise ImproperlyConfigured(
            f"{where} has unknown keys {unknown!r}; the known ones are "
            f"{sorted(_FORWARD_KEYS)!r}"
        )
    signals = _names(f"{where}['signals']", spec.get("signals"))
    if not signals:
        raise ImproperlyConfigured(f"{where}['signals'] is empty")
    for name in signals:
        if name not in MODEL_SIGNALS:
            raise ImproperlyConfigured(
                f"{where}: {name!r} is not a model signal; choose from "
                f"{MODEL_SIGNALS!r} (request signals go in BUSIGNAL['REQUESTS'])"
            )
    fields = _names(f"{where}['fields']", spec.get("fields", []))
    on_commit = bool(spec.get("on_commit", False))
    via_outbox = _flag(f"{where}['outbox']", spec.get("outbox", outbox))
    if on_commit and via_outbox:
        raise ImproperlyConfigured(
            f"{where} sets on_commit, but its events go through the outbox "
            f"(BUSIGNAL['OUTBOX'] or its own 'outbox'), which already sends "
            f"only what commits: drop 'on_commit', or set 'outbox': False"
        )
    return ForwardSpec(label, signals, fields, on_commit, via_outbox)
