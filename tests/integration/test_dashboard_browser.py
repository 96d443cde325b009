"""``busignal dashboard`` in a real headless Chromium, over a running bus.

The dashboard is the real CLI in a subprocess, on a real redis-server,
with a real ``busignal worker``; the browser is the system's Chromium
(Debian's ``chromium`` package, which scripts/test.sh installs) driven by
Playwright, which never downloads a browser of its own here.

With ``BUSIGNAL_DASHBOARD_SCREENSHOT=PATH`` the rendering test also saves
its screenshot there (how docs/dashboard.png is made).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from busignal.bus.bus import Bus

from .servers import APPS, RedisServer, WorkerProcess, free_port, wait_for

sys.path.insert(0, str(APPS))

from signals_shared import order_paid

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "dashboard-test-token"
WAIT_MS = 15_000


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        "no Chromium on this machine: install Debian's 'chromium' package "
        "(scripts/test.sh does it where apt-get is available)"
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=_chromium(), args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 760})
    opened = context.new_page()
    opened.on("dialog", lambda dialog: dialog.accept())  # confirm() of purge
    yield opened
    context.close()


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


@pytest.fixture
def start_dashboard(
    tmp_path: Path,
) -> Iterator[Callable[..., str]]:
    """Start ``busignal dashboard --url URL [ARGS]``; returns its base URL."""
    started: list[subprocess.Popen[bytes]] = []
    logs: list[BinaryIO] = []

    def start(url: str, *args: str) -> str:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("BUSIGNAL_")}
        env["BUSIGNAL_DASHBOARD_TOKEN"] = TOKEN
        log = (tmp_path / f"dashboard-{port}.log").open("wb")
        logs.append(log)
        process = subprocess.Popen(
            [sys.executable, "-m", "busignal", "dashboard", "--url", url,
             "--port", str(port), "--refresh", "0.3", *args],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        started.append(process)
        base = f"http://127.0.0.1:{port}"
        wait_for(
            lambda: _get(base + "/api/settings") == 200 or process.poll() is not None,
            what="the dashboard to listen",
        )
        assert process.poll() is None, (tmp_path / f"dashboard-{port}.log").read_text()
        return base

    yield start
    for process in started:
        process.terminate()
        process.wait(10)
    for log in logs:
        log.close()


@pytest.fixture
def billing(worker_factory: Callable[..., WorkerProcess]) -> WorkerProcess:
    # one delivery: a failing event is a dead letter at once
    return worker_factory("billing", "billing", extra=("--max-deliveries", "1"))


def test_the_page_shows_the_running_bus_and_updates_as_events_flow(
    page: Page,
    bus: Bus,
    redis_server: RedisServer,
    billing: WorkerProcess,
    start_dashboard: Callable[..., str],
    tmp_path: Path,
) -> None:
    assert order_paid.send_robust(None, amount=5)
    base = start_dashboard(redis_server.url)

    page.goto(base + "/")

    card = page.locator('article[data-signal="order_paid"]')
    service = card.locator('tr[data-service="billing"]')
    expect(service).to_be_visible(timeout=WAIT_MS)
    expect(card.locator(".length")).to_have_text("1")
    expect(service.locator("td.live")).to_have_text("1")
    expect(page.locator("#live-workers tr.live")).to_have_count(1)
    expect(page.locator("#live-workers")).to_contain_text("billing")
    expect(page.locator("#status")).to_contain_text("updated")

    for n in range(20):
        order_paid.publish(None, amount=n)
    order_paid.publish(None, amount=-7)

    expect(card.locator(".length")).to_have_text("22", timeout=WAIT_MS)
    expect(service.locator("td.pending")).to_have_text("0", timeout=WAIT_MS)
    expect(card.locator("tr[data-letter]")).to_have_count(1, timeout=WAIT_MS)
    expect(card.locator("td.reason")).to_contain_text("negative amount -7")
    rate = service.locator("td.rate")
    expect(rate).not_to_have_text("\u2013", timeout=WAIT_MS)

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG")
    if os.environ.get("BUSIGNAL_DASHBOARD_SCREENSHOT"):
        shutil.copy(shot, os.environ["BUSIGNAL_DASHBOARD_SCREENSHOT"])


def test_a_read_only_dashboard_shows_no_action_buttons(
    page: Page,
    bus: Bus,
    redis_server: RedisServer,
    billing: WorkerProcess,
    start_dashboard: Callable[..., str],
) -> None:
    order_paid.publish(None, amount=-1)
    dead = bus.keys.dead("order_paid")
    wait_for(lambda: redis_server.client().xlen(dead) == 1, what="a dead letter")
    base = start_dashboard(redis_server.url)

    page.goto(base + "/")

    expect(page.locator("td.reason")).to_contain_text("negative amount -1")
    expect(page.locator("button")).to_have_count(0)
    expect(page.locator("#token-box")).to_be_hidden()


def test_an_action_without_the_token_is_refused_and_with_it_runs(
    page: Page,
    bus: Bus,
    redis_server: RedisServer,
    billing: WorkerProcess,
    start_dashboard: Callable[..., str],
) -> None:
    order_paid.publish(None, amount=-1)
    dead = bus.keys.dead("order_paid")
    wait_for(lambda: redis_server.client().xlen(dead) == 1, what="a dead letter")
    base = start_dashboard(redis_server.url, "--allow-actions")
    page.goto(base + "/")
    letter = page.locator("tr[data-letter]")
    expect(letter).to_have_count(1, timeout=WAIT_MS)

    page.locator("#token").fill("")
    letter.locator("button.purge").click()

    expect(page.locator("#message")).to_contain_text("purge refused", timeout=WAIT_MS)
    expect(page.locator("#message")).to_contain_text("token")
    assert redis_server.client().xlen(dead) == 1

    page.locator("#token").fill("not-the-token")
    page.locator("button.purge", has_text="purge all").click()
    expect(page.locator("#message")).to_contain_text("wrong token", timeout=WAIT_MS)
    assert redis_server.client().xlen(dead) == 1

    page.goto(base + f"/#token={TOKEN}")  # the link the dashboard prints
    expect(letter).to_have_count(1, timeout=WAIT_MS)
    letter.locator("button.replay").click()

    expect(page.locator("#message")).to_contain_text(
        "replayed 1 dead letter(s) of 'order_paid'", timeout=WAIT_MS
    )
    # the worker runs it again and, still failing, dead-letters it anew
    wait_for(
        lambda: redis_server.client().xlen(bus.keys.events("order_paid")) == 2,
        what="the replayed event",
    )
    assert "#token" not in page.url


def test_the_page_says_when_redis_is_unreachable_and_recovers(
    page: Page,
    redis_server: RedisServer,
    start_dashboard: Callable[..., str],
) -> None:
    base = start_dashboard(redis_server.url)
    page.goto(base + "/")
    expect(page.locator("#status")).to_contain_text("updated", timeout=WAIT_MS)

    redis_server.stop()

    problem = page.locator("#problem")
    expect(problem).to_contain_text("Redis unreachable", timeout=WAIT_MS)
    expect(problem).to_contain_text("Retrying every")
    assert _get(base + "/healthz") == 503

    redis_server.start()

    expect(problem).to_be_hidden(timeout=WAIT_MS)
    expect(page.locator("#signals")).to_contain_text("no signal has been sent")
    assert _get(base + "/healthz") == 200
