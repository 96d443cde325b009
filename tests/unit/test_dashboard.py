"""``busignal dashboard``'s application on ``memory://``: JSON, health, actions.

What a browser does with the page is tested in Chromium
(tests/integration/test_dashboard_browser.py); here are the answers the
page and any script rely on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from busignal import Signal
from busignal.admin.overview import RateMeter
from busignal.bus.bus import Bus
from busignal.cli.app import main
from busignal.dashboard.app import STATIC, create_app
from busignal.testing import drain

from .bus_helpers import unique

TOKEN = "s3cret-token"


@pytest.fixture
def poisoned(bus: Bus, name: str) -> Signal:
    """Signal ``name``: one event handled by 'svc', two dead-lettered by it."""
    sig = Signal(name)

    def charge(amount: int, **kwargs: object) -> int:
        if amount < 0:
            raise ValueError(f"negative amount {amount}")
        return amount

    sig.connect(charge, weak=False)
    drain(bus, "svc", signals=[name])  # the service joins
    sig.publish(None, amount=5)
    sig.publish(None, amount=-1)
    sig.publish(None, amount=-2)
    drain(bus, "svc", signals=[name], max_deliveries=1)
    return sig


def _client(bus: Bus, **options: object) -> Iterator[TestClient]:
    with TestClient(create_app(bus, **options)) as client:  # type: ignore[arg-type]
        yield client


@pytest.fixture
def viewer(bus: Bus) -> Iterator[TestClient]:
    """The dashboard as started without --allow-actions."""
    yield from _client(bus)


@pytest.fixture
def operator(bus: Bus) -> Iterator[TestClient]:
    """The dashboard as started with --allow-actions and token TOKEN."""
    yield from _client(bus, allow_actions=True, token=TOKEN)


def test_overview_shows_services_and_the_newest_dead_letters_with_reasons(
    viewer: TestClient, name: str, poisoned: Signal
) -> None:
    answer = viewer.get("/api/overview")

    assert answer.status_code == 200
    (signal,) = answer.json()["signals"]
    assert signal["name"] == name
    assert signal["length"] == 3
    assert signal["dead"] == 2
    (service,) = signal["services"]
    assert (service["name"], service["pending"], service["lag"]) == ("svc", 0, 0)
    letters = signal["dead_letters"]
    assert "negative amount -2" in letters[0]["reason"]  # newest first
    assert "negative amount -1" in letters[1]["reason"]
    assert all(d["service"] == "svc" for d in letters)


def test_overview_of_an_empty_namespace_has_no_signals(viewer: TestClient) -> None:
    answer = viewer.get("/api/overview")

    assert answer.status_code == 200
    assert answer.json()["signals"] == []
    assert answer.json()["workers"] == []


def test_healthz_is_ok_while_redis_answers(viewer: TestClient) -> None:
    answer = viewer.get("/healthz")

    assert (answer.status_code, answer.text) == (200, "ok\n")


def test_unreachable_redis_is_503_on_health_and_overview(
    unreachable: Bus,
) -> None:
    for client in _client(unreachable):
        health = client.get("/healthz")
        data = client.get("/api/overview")

        assert health.status_code == 503
        assert "Redis unreachable" in health.text
        assert data.status_code == 503
        assert "Redis unreachable" in data.json()["error"]


@pytest.fixture
def unreachable() -> Iterator[Bus]:
    from busignal.cli.embedded import free_port

    bus = Bus(f"redis://127.0.0.1:{free_port()}/0", namespace=unique("ns"))
    yield bus
    bus.close()


def _dead(bus: Bus, name: str) -> int:
    return int(bus.client.xlen(bus.keys.dead(name)))


def test_actions_are_refused_when_the_dashboard_is_read_only(
    viewer: TestClient, bus: Bus, name: str, poisoned: Signal
) -> None:
    answer = viewer.post(
        "/api/dead/purge",
        json={"signal": name, "all": True},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )

    assert answer.status_code == 403
    assert "--allow-actions" in answer.json()["error"]
    assert _dead(bus, name) == 2
    assert viewer.get("/api/settings").json()["actions"] is False


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong", f"Basic {TOKEN}", "Bearer "]
)
def test_an_action_without_the_right_token_is_refused_and_changes_nothing(
    operator: TestClient,
    bus: Bus,
    name: str,
    poisoned: Signal,
    authorization: str | None,
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for action in ("replay", "purge"):
        answer = operator.post(
            f"/api/dead/{action}", json={"signal": name, "all": True}, headers=headers
        )

        assert answer.status_code == 403, answer.text
        assert "token" in answer.json()["error"]
    assert _dead(bus, name) == 2
    assert int(bus.client.xlen(bus.keys.events(name))) == 3


def test_replay_with_the_token_sends_a_letter_back_to_its_service(
    operator: TestClient, bus: Bus, name: str, poisoned: Signal
) -> None:
    newest = operator.get("/api/overview").json()["signals"][0]["dead_letters"][0]

    answer = operator.post(
        "/api/dead/replay",
        json={"signal": name, "ids": [newest["ref"]]},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["count"] == 1
    assert _dead(bus, name) == 1
    assert int(bus.client.xlen(bus.keys.events(name))) == 4


def test_purge_all_with_the_token_deletes_the_signals_dead_letters(
    operator: TestClient, bus: Bus, name: str, poisoned: Signal
) -> None:
    answer = operator.post(
        "/api/dead/purge",
        json={"signal": name, "all": True},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["done"] == f"purged 2 dead letter(s) of {name!r}"
    assert _dead(bus, name) == 0


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ([1, 2], 400, "JSON object"),
        ({"ids": ["1-0"]}, 400, '"signal"'),
        ({"signal": "x"}, 400, '"all": true'),
        ({"signal": "x", "ids": []}, 400, "non-empty"),
        ({"signal": "x", "ids": ["1-0"], "all": True}, 400, "name the letters"),
    ],
)
def test_an_action_request_that_names_no_letters_is_a_clear_400(
    operator: TestClient, body: object, status: int, says: str
) -> None:
    answer = operator.post(
        "/api/dead/purge", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )

    assert answer.status_code == status
    assert says in answer.json()["error"]


def test_an_unknown_letter_is_404_and_nothing_is_changed(
    operator: TestClient, bus: Bus, name: str, poisoned: Signal
) -> None:
    answer = operator.post(
        "/api/dead/purge",
        json={"signal": name, "ids": ["1-1"]},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )

    assert answer.status_code == 404
    assert "nothing was changed" in answer.json()["error"]
    assert _dead(bus, name) == 2


def test_the_page_loads_nothing_from_elsewhere(viewer: TestClient) -> None:
    page = viewer.get("/")

    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/dashboard.js", "/static/dashboard.css"):
        assert asset in page.text
        assert viewer.get(asset).status_code == 200
    for path in STATIC.iterdir():
        assert not re.search(r"(src|href)=\"(https?:)?//", path.read_text()), path


def test_an_app_that_allows_actions_needs_a_token(bus: Bus) -> None:
    with pytest.raises(ValueError, match="token"):
        create_app(bus, allow_actions=True)


def test_rate_is_the_change_of_entries_read_over_time() -> None:
    meter = RateMeter(min_interval=0.5)

    assert meter.observe("sig", "svc", 100, now=10.0) is None  # first look
    assert meter.observe("sig", "svc", 150, now=12.0) == 25.0
    assert meter.observe("sig", "svc", 160, now=12.1) == 25.0  # too soon: kept
    assert meter.observe("sig", "svc", 175, now=13.0) == 25.0
    assert meter.observe("sig", "svc", 3, now=14.0) is None  # group reset
    assert meter.observe("sig", "svc", None, now=15.0) is None  # Redis < 7


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--port", "99999"], "argument --port: '99999' is not a TCP port"),
        (["--port", "http"], "argument --port: 'http' is not a TCP port"),
        (["--refresh", "0"], "argument --refresh: '0' is not a number of seconds"),
    ],
)
def test_bad_dashboard_flags_are_usage_errors(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["dashboard", "--url", "memory://", *args])

    assert exited.value.code == 2
    assert says in capsys.readouterr().err


def test_a_port_already_taken_is_a_clear_error_before_serving(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]

        code = main(["dashboard", "--url", "memory://", "--port", str(port)])

    assert code == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "pick another --port" in err


def test_an_action_body_that_is_not_json_is_a_400(operator: TestClient) -> None:
    answer = operator.post(
        "/api/dead/replay",
        content=b"signal=x",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )

    assert answer.status_code == 400
    assert "not JSON" in answer.json()["error"]
