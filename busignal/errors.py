"""Every error busignal raises, under one base class.

::

    BusignalError
    ├── SerializationError     a value cannot be encoded (raised before any I/O)
    │   └── DecodeError        a payload cannot be decoded (the reason is its message)
    ├── ConfigurationError     a bad URL, option or signal setup
    │   └── CodecError         a codec cannot be registered as given
    ├── BusUnavailable         Redis cannot be reached (URL shown, password redacted)
    ├── SignalTimeout          some services did not answer a send in time
    ├── RemoteError            a receiver in another process raised an exception
    │                          whose class this process cannot rebuild
    ├── BadEntry               a stream entry cannot be trusted or read; a worker
    │                          dead-letters it
    ├── AmbiguousId            a plain dead-letter id is in several partitions
    ├── UnknownId              ids that name no dead letter (or scheduled event)
    │                          of the signal
    ├── UnverifiedLetter       a dead letter whose signature cannot be checked or
    │                          is not valid: replay will not re-sign it
    ├── GroupLost              a service's destroyed consumer group cannot be
    │                          recreated where it stood
    ├── EmbeddedUnavailable    no Redis server binary can be found or started
    └── UsageError             a ``busignal`` command cannot run as asked (exit 2)

``SignalTimeout`` and ``RemoteError`` are also what ``send_robust`` returns as
responses, so they carry enough to be read without a traceback. Where the
same mistake raises a builtin exception elsewhere, the leaf is that builtin
too (``TypeError``, ``ValueError``, ``ConnectionError``, ``TimeoutError``), so
``except`` clauses written for it keep working. The leaves are importable
from here and from where they are raised (``busignal.codec.DecodeError``,
``busignal.admin.dead.AmbiguousId``, ...).
"""

from __future__ import annotations

__all__ = [
    "AmbiguousId",
    "BadEntry",
    "BusUnavailable",
    "BusignalError",
    "CodecError",
    "ConfigurationError",
    "DecodeError",
    "EmbeddedUnavailable",
    "GroupLost",
    "RemoteError",
    "SerializationError",
    "SignalTimeout",
    "UnknownId",
    "UnverifiedLetter",
    "UsageError",
]


class BusignalError(Exception):
    """The base of every error busignal raises."""


class SerializationError(BusignalError, TypeError):
    """A value cannot be encoded for the wire, or a payload is too large.

    A ``TypeError`` too, because that is what ``json.dumps`` and msgpack raise
    for the same mistake.
    """


class DecodeError(SerializationError, ValueError):
    """A payload is not a value this process can decode; the message says why.

    Workers dead-letter the entry with that reason. A ``ValueError`` too, as
    ``json.JSONDecodeError`` is.
    """


class ConfigurationError(BusignalError, ValueError):
    """A URL, option or signal cannot be used as given."""


class CodecError(ConfigurationError):
    """``busignal.codec.register`` refused a codec: bad code, class or a clash.

    A ``ValueError`` (through ConfigurationError), as it always was.
    """


class BusUnavailable(BusignalError, ConnectionError):
    """Redis could not be reached; nothing was sent."""


class SignalTimeout(BusignalError, TimeoutError):
    """Some services did not answer a send before its timeout.

    The event is still queued for them and will be handled when a worker of
    each service reads it.
    """

    def __init__(self, signal: str, services: list[str], timeout: float) -> None:
        self.signal = signal
        self.services = list(services)
        self.timeout = timeout
        names = ", ".join(repr(s) for s in self.services)
        super().__init__(
            f"signal {signal!r}: no answer from service(s) {names} within "
            f"{timeout:g}s; the event stays queued for them. Start a "
            f"'busignal worker --service NAME' for each, or raise the timeout "
            f"with signal.using(timeout=...)"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.signal, self.services, self.timeout))


class RemoteError(BusignalError):
    """A receiver raised in another process, with a class not known here.

    ``type_name`` is the remote class's ``module.QualName``, ``message`` its
    ``str()`` and ``remote_traceback`` the formatted traceback from the worker.
    Register the class with ``busignal.register_exception`` to get it back as
    itself instead.
    """

    def __init__(
        self, type_name: str, message: str, remote_traceback: str = ""
    ) -> None:
        self.type_name = type_name
        self.message = message
        self.remote_traceback = remote_traceback
        super().__init__(f"{type_name}: {message}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.type_name, self.message, self.remote_traceback))


class BadEntry(BusignalError):
    """A stream entry that cannot be trusted or read; it goes to the dead letters.

    Raised while a worker reads an entry (bad signature, unknown wire
    version, malformed body); the worker dead-letters the entry with this
    message as the reason and keeps going.
    """


class AmbiguousId(BusignalError, ValueError):
    """A plain dead-letter id found in more than one partition.

    Nothing was replayed or purged; name the letter as ``PARTITION:ID``.
    """


class EmbeddedUnavailable(BusignalError):
    """No Redis server binary could be found or started; the message says why."""


class UsageError(BusignalError):
    """A ``busignal`` command cannot run as asked; the message says why.

    The command prints the message and exits with status 2.
    """


class UnknownId(BusignalError, LookupError):
    """Ids that name no dead letter (or scheduled event) of the signal.

    ``ids`` lists them. Nothing was replayed, purged or cancelled: an
    operator acts on every item asked for, or on none.
    """

    def __init__(
        self,
        signal: str,
        ids: list[str],
        what: str = "dead letter",
        command: str = "dead list",
    ) -> None:
        self.signal, self.ids = signal, ids
        shown = ", ".join(repr(i) for i in ids)
        letters = f"{what} with id" if len(ids) == 1 else f"{what}s with ids"
        super().__init__(
            f"{signal!r} has no {letters} {shown}; "
            f"see its ids with 'busignal {command} {signal}'"
        )


class UnverifiedLetter(BusignalError, ValueError):
    """Dead letters that ``dead replay`` will not re-sign (``ids`` lists them).

    Replay re-signs a signed letter for its service with the current secret
    and a new sent-at, but only a letter whose signature holds under one of
    the configured secrets (its age is not looked at): anything else was
    forged or signed with a secret no longer configured. Nothing was
    replayed.
    """

    def __init__(self, signal: str, ids: list[str], why: str) -> None:
        self.signal, self.ids = signal, ids
        shown = ", ".join(repr(i) for i in ids)
        super().__init__(f"{signal!r}: dead letter(s) {shown}: {why}")


class GroupLost(BusignalError):
    """A service's consumer group is gone and cannot be recreated where it stood.

    Either entries after its last acknowledged id were trimmed while it was
    gone, or nothing recorded where it stood. Recreating it anywhere would
    silently skip or re-run events, so the worker stops and the message
    names the ``busignal service create`` command that decides.
    """
