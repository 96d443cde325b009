"""A receiver that raises in a worker is logged at ERROR, with its traceback.

Error trackers that hook into logging (Sentry's integration, for one)
report ERROR and above, so that is where a worker's failures must land,
as Django's ``send_robust`` logs them; the record names the receiver,
signal, message and stream entry.
"""

from __future__ import annotations

import logging

import pytest

from busignal.bus import Bus
from busignal.dispatch.signal import Signal
from busignal.testing import drain, running_worker


def _failing_signal(name: str) -> Signal:
    sig = Signal(name)

    def charge(**kwargs: object) -> None:
        raise ValueError("card expired")

    sig.connect(charge, dispatch_uid="billing.charge", weak=False)
    return sig


def _receiver_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name.startswith("busignal.worker") and r.exc_info
    ]


def test_worker_logs_failing_published_receiver_at_error_with_traceback(
    bus: Bus, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    sig = _failing_signal(name)
    drain(bus, "billing", signals=[name])
    entry_id = sig.publish(sender=None)

    with caplog.at_level(logging.ERROR, logger="busignal.worker"):
        drain(bus, "billing", signals=[name], max_deliveries=1)

    (record,) = _receiver_errors(caplog)
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)
    message = record.getMessage()
    assert "billing.charge" in message
    assert name in message
    assert entry_id in message
    assert record.busignal_receiver == "billing.charge"  # type: ignore[attr-defined]  # extra
    assert record.busignal_entry_id == entry_id  # type: ignore[attr-defined]  # extra


@pytest.mark.parametrize("robust", [True, False])
def test_worker_logs_failing_receiver_at_error_when_a_caller_waits(
    bus: Bus, name: str, caplog: pytest.LogCaptureFixture, robust: bool
) -> None:
    sig = _failing_signal(name)

    with (
        caplog.at_level(logging.ERROR, logger="busignal.worker"),
        running_worker(bus, "billing", signals=[name]),
    ):
        if robust:
            [(_, response)] = sig.send_robust(sender=None)
            assert isinstance(response, ValueError)
        else:
            with pytest.raises(ValueError, match="card expired"):
                sig.send(sender=None)

    (record,) = _receiver_errors(caplog)
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)
    assert "billing.charge" in record.getMessage()


def test_worker_logs_failing_async_receiver_at_error_with_traceback(
    bus: Bus, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    sig = Signal(name)

    async def charge(**kwargs: object) -> None:
        raise ValueError("card expired")

    sig.connect(charge, dispatch_uid="billing.acharge", weak=False)
    drain(bus, "billing", signals=[name])
    sig.publish(sender=None)

    with caplog.at_level(logging.ERROR, logger="busignal.worker"):
        drain(bus, "billing", signals=[name], max_deliveries=1)

    (record,) = _receiver_errors(caplog)
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)
    assert "billing.acharge" in record.getMessage()


def test_worker_without_a_secret_warns_that_entries_are_not_authenticated(
    bus: Bus, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    _failing_signal(name)

    with caplog.at_level(logging.WARNING, logger="busignal.worker"):
        drain(bus, "billing", signals=[name])

    warnings = [r for r in caplog.records if "not authenticated" in r.getMessage()]
    assert [r.levelno for r in warnings] == [logging.WARNING]
