"""The dashboard's web application (Starlette): one page, its JSON, its health.

Routes:

* ``GET /``: the page; its script polls ``/api/overview`` every
  ``refresh`` seconds and keeps polling while Redis is unreachable.
* ``GET /api/overview``: :func:`busignal.admin.overview.overview` as JSON;
  503 with ``{"error": ...}`` when Redis cannot be reached.
* ``GET /healthz``: ``ok`` (200) when Redis answers PING, else 503, for
  load balancers and container health checks.
* ``POST /api/dead/replay`` and ``POST /api/dead/purge``: body
  ``{"signal": NAME, "ids": [...]}`` or ``{"signal": NAME, "all": true}``.
  Refused (403) unless the app was made with ``allow_actions`` and the
  request carries ``Authorization: Bearer TOKEN``: a page that only looks
  cannot change anything, and a page of another site cannot send that
  header, so it cannot make a browser act on the operator's behalf.

Redis is read with the bus's sync client in Starlette's thread pool, so a
slow Redis never blocks the event loop.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from busignal.admin import dead
from busignal.admin.overview import RateMeter, overview
from busignal.bus.bus import Bus
from busignal.errors import AmbiguousId, BusUnavailable, UnknownId

__all__ = ["STATIC", "create_app"]

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("busignal.dashboard")

# the page loads nothing from elsewhere, and no other site may frame it
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_NO_STORE = {"Cache-Control": "no-store"}


_Endpoint = Callable[[Request], Awaitable[Response]]
_Action = Callable[[Bus, str, "list[str] | None"], Any]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=_NO_STORE)


def _target(body: object) -> tuple[str, list[str] | None] | str:
    """The signal and the ids (None: every letter) a request body names.

    A string instead: what is wrong with the body (a 400).
    """
    if not isinstance(body, dict):
        return 'send a JSON object: {"signal": NAME, "ids": [ID, ...]}'
    signal = body.get("signal")
    if not isinstance(signal, str) or not signal:
        return '"signal" must be a signal name'
    ids, every = body.get("ids"), body.get("all")
    if every is True and ids is None:
        return signal, None
    if (
        every is None
        and isinstance(ids, list)
        and ids
        and all(isinstance(i, str) and i for i in ids)
    ):
        return signal, ids
    return 'name the letters: "ids": [ID, ...] (non-empty), or "all": true'


class _Dashboard:
    """The endpoints, over one bus and one rate meter."""

    def __init__(
        self, bus: Bus, allow_actions: bool, token: str | None, refresh: float
    ) -> None:
        self.bus = bus
        self.allow_actions = allow_actions
        self.token = token
        self.refresh = refresh
        self.meter = RateMeter()

    async def page(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={**_HEADERS, **_NO_STORE})

    async def settings(self, request: Request) -> Response:
        return JSONResponse(
            {"refresh": self.refresh, "actions": self.allow_actions},
            headers=_NO_STORE,
        )

    async def overview(self, request: Request) -> Response:
        try:
            data = await run_in_threadpool(overview, self.bus, self.meter)
        except BusUnavailable as exc:
            return _error(503, f"Redis unreachable: {exc}")
        return JSONResponse(data, headers=_NO_STORE)

    async def healthz(self, request: Request) -> Response:
        try:
            await run_in_threadpool(_ping, self.bus)
        except BusUnavailable as exc:
            return PlainTextResponse(f"Redis unreachable: {exc}\n", status_code=503)
        return PlainTextResponse("ok\n")

    def action(self, run: _Action, done: str) -> _Endpoint:
        """An endpoint that runs ``run`` on the letters a request names."""

        async def endpoint(request: Request) -> Response:
            refused = _refusal(request, self.allow_actions, self.token)
            if refused is not None:
                log.warning("dashboard: %s refused: %s", request.url.path, refused)
                return _error(403, refused)
            try:
                target = _target(await request.json())
            except ValueError as exc:
                return _error(400, f"the body is not JSON: {exc}")
            if isinstance(target, str):
                return _error(400, target)
            signal, ids = target
            try:
                result = await run_in_threadpool(run, self.bus, signal, ids)
            except UnknownId as exc:
                return _error(404, f"{exc}; nothing was changed")
            except AmbiguousId as exc:
                return _error(409, str(exc))
            except BusUnavailable as exc:
                return _error(503, f"Redis unreachable: {exc}")
            count = len(result) if isinstance(result, list) else int(result)
            what = f"{done} {count} dead letter(s) of {signal!r}"
            log.info("dashboard: %s", what)
            return JSONResponse({"done": what, "count": count}, headers=_NO_STORE)

        return endpoint


async def _security_headers(request: Request, call_next: _Endpoint) -> Response:
    response = await call_next(request)
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def create_app(
    bus: Bus,
    *,
    allow_actions: bool = False,
    token: str | None = None,
    refresh: float = 2.0,
) -> Starlette:
    """The dashboard over ``bus``; actions only with ``allow_actions`` and ``token``."""
    if allow_actions and not token:
        raise ValueError("allow_actions needs a token that action requests must carry")
    board = _Dashboard(bus, allow_actions, token, refresh)
    post = ["POST"]
    return Starlette(
        routes=[
            Route("/", board.page),
            Route("/api/settings", board.settings),
            Route("/api/overview", board.overview),
            Route("/healthz", board.healthz),
            Route(
                "/api/dead/replay", board.action(dead.replay, "replayed"), methods=post
            ),
            Route("/api/dead/purge", board.action(dead.purge, "purged"), methods=post),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=_security_headers)],
    )


def _ping(bus: Bus) -> None:
    with bus.transport.errors():
        bus.client.ping()


def _refusal(request: Request, allow_actions: bool, token: str | None) -> str | None:
    """Why an action request is refused, or None when it may run."""
    if not allow_actions or token is None:
        return "actions are disabled: start the dashboard with --allow-actions"
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return "an action needs the dashboard's token: Authorization: Bearer TOKEN"
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return "wrong token: use the one the dashboard printed at start"
    return None
