"""Which URL, namespace and secrets a process's bus uses, and where each came from.

Three sources can say: the command line (``--url``, ``--namespace``), the
Django settings (``BUSIGNAL`` or ``BUSIGNAL_URL``) and the environment
(``BUSIGNAL_URL``, ``BUSIGNAL_NAMESPACE``, ``BUSIGNAL_SECRET`` or
``BUSIGNAL_SECRET_FILE``). Each option
is taken from the most specific source that gives it, one option at a
time: ``--namespace`` replaces only the namespace, and the settings' secret
still applies when ``--url`` is given.

Secrets are the one option that is never overridden: when two sources give
different secrets, ``resolve`` refuses. Taking either one silently would
make the worker accept entries signed with a key its operator meant to
retire, or refuse the senders that use the other; rotation is done by
listing both keys, newest first, in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from busignal.bus import Bus, BusConfig
from busignal.errors import ConfigurationError
from busignal.wire.signing import parse_secrets

__all__ = [
    "ENVIRONMENT",
    "Resolved",
    "Source",
    "environment",
    "read_secret_file",
    "resolve",
]

#: The name ``environment()`` gives its source, as messages and logs show it.
ENVIRONMENT = "environment"
#: Options that have a source field of their own, never an ``options`` key.
_OWN = frozenset({"url", "namespace", "secret", "secrets"})


@dataclass(frozen=True, slots=True)
class Source:
    """What one source says about the bus; None or empty where it is silent.

    ``name`` is how messages name the source (``"command line"``,
    ``"Django settings"``); ``options`` are more ``Bus`` keyword arguments
    (the settings' ``OPTIONS``).
    """

    name: str
    url: str | None = None
    namespace: str | None = None
    secrets: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Resolved:
    """The bus configuration and, per option, the name of its source.

    ``origins`` maps ``"url"``, ``"namespace"`` and ``"secrets"`` to a
    source name, or to ``"default"`` (namespace) and ``"none"`` (secrets).
    """

    config: BusConfig
    origins: Mapping[str, str]

    def options(self) -> dict[str, Any]:
        """Keyword arguments for ``Bus(config.url, ...)`` and ``configure``."""
        options = {
            f.name: getattr(self.config, f.name)
            for f in fields(self.config)
            if f.name not in _OWN
        }
        options["namespace"] = self.config.namespace
        options["secret"] = self.config.secrets or None
        return options

    def bus(self) -> Bus:
        """A new bus with this configuration (no I/O until it is used)."""
        return Bus(self.config.url, **self.options())

    def describe(self) -> str:
        """One line for a start-up log: each option and where it came from.

        The URL is shown without its password. Where the secret came from
        is said; its absence is not: the worker warns of it at start
        (``busignal.worker.once.warn_if_unsigned``), however it is started,
        and one warning says it once.
        """
        from busignal.transport.clients import redact

        config, origins = self.config, self.origins
        signing = (
            f", secret from {origins['secrets']}: only signed entries run"
            if config.secrets
            else ""
        )
        namespace = origins["namespace"]
        namespace = namespace if namespace == "default" else f"from {namespace}"
        return (
            f"{redact(config.url)} (from {origins['url']}), namespace "
            f"{config.namespace!r} ({namespace}){signing}"
        )


def environment(environ: Mapping[str, str]) -> Source:
    """What ``BUSIGNAL_URL``, ``BUSIGNAL_NAMESPACE`` and the secret variables say.

    Blank values say nothing. ``BUSIGNAL_SECRET`` is a comma-separated list,
    newest first (so a secret cannot contain a comma there);
    ``BUSIGNAL_SECRET_FILE`` names a file with one secret per line, newest
    first, for secrets kept out of the environment (a mounted Kubernetes or
    Docker secret) or containing commas. Setting both is refused.
    """
    secrets = tuple(parse_secrets(environ.get("BUSIGNAL_SECRET", "")))
    path = environ.get("BUSIGNAL_SECRET_FILE", "").strip()
    if path:
        if secrets:
            raise ConfigurationError(
                "both BUSIGNAL_SECRET and BUSIGNAL_SECRET_FILE are set; set one "
                "(to rotate keys, list both secrets in it, newest first)"
            )
        secrets = read_secret_file(path)
    return Source(
        ENVIRONMENT,
        url=environ.get("BUSIGNAL_URL", "").strip() or None,
        namespace=environ.get("BUSIGNAL_NAMESPACE", "").strip() or None,
        secrets=secrets,
    )


def read_secret_file(path: str) -> tuple[str, ...]:
    """The secrets in a file, one a line, newest first; blank lines skipped.

    Each line is taken whole (commas included), without surrounding
    whitespace. A file that cannot be read, or holds no secret, is a
    ConfigurationError naming it: a worker must not start unsigned because
    a mount went missing.
    """
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"cannot read BUSIGNAL_SECRET_FILE {path!r} ({exc}); point it at a "
            f"readable UTF-8 file with one secret per line"
        ) from exc
    secrets = tuple(line.strip() for line in lines if line.strip())
    if not secrets:
        raise ConfigurationError(
            f"BUSIGNAL_SECRET_FILE {path!r} holds no secret; write one per line, "
            f"newest first, or unset the variable"
        )
    return secrets


def resolve(
    flags: Source | None, settings: Source | None, environ: Mapping[str, str]
) -> Resolved | None:
    """The bus the sources describe, each option from the most specific one.

    Order: ``flags`` (the command line), then ``settings`` (Django), then
    ``environ``. None when no source gives a URL. Raises
    ConfigurationError when two sources give different secrets, or when
    ``options`` are not ``Bus`` options.
    """
    sources = [s for s in (flags, settings, environment(environ)) if s is not None]
    url = _first(sources, "url")
    if url is None:
        return None
    namespace = _first(sources, "namespace")
    secrets = _secrets(sources)
    options: dict[str, Any] = {}
    for source in reversed(sources):
        options.update(_checked_options(source))
    origins = {
        "url": url.name,
        "namespace": namespace.name if namespace else "default",
        "secrets": secrets.name if secrets else "none",
    }
    config = BusConfig(
        url=str(url.url),
        namespace=str(namespace.namespace) if namespace else "busignal",
        secrets=secrets.secrets if secrets else (),
        **options,
    )
    return Resolved(config, origins)


def _first(sources: list[Source], option: str) -> Source | None:
    """The first source that gives ``option`` (a non-empty string)."""
    return next((s for s in sources if getattr(s, option)), None)


def _secrets(sources: list[Source]) -> Source | None:
    """The source of the secrets; ConfigurationError if two sources differ."""
    giving = [s for s in sources if s.secrets]
    for other in giving[1:]:
        if other.secrets != giving[0].secrets:
            raise ConfigurationError(
                f"the secret in the {giving[0].name} differs from the one in the "
                f"{other.name}; busignal will not pick one, since a worker would "
                f"then accept or refuse entries the other was meant to guard. "
                f"Set the secret in one place (to rotate keys, list both there, "
                f"newest first)"
            )
    return giving[0] if giving else None


def _checked_options(source: Source) -> Mapping[str, Any]:
    """``source.options``; ConfigurationError naming any that is no Bus option."""
    own = sorted(_OWN & set(source.options))
    if own:
        raise ConfigurationError(
            f"the options in the {source.name} set {own!r}; give the URL, "
            f"namespace and secret as settings of their own, not as options"
        )
    known = {f.name for f in fields(BusConfig)} - _OWN
    unknown = sorted(set(source.options) - known)
    if unknown:
        raise ConfigurationError(
            f"the options in the {source.name} name unknown bus options "
            f"{unknown!r}; the known ones are {sorted(known)!r}"
        )
    return source.options
