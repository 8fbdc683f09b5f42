"""The bedside page over HTTP: one tile per board, pushed to the browser as server-sent events.

Served by :mod:`aiohttp` (the ``[view]`` extra) in a thread of its own with its own event loop, so
the hub's thread only ever appends to bounded queues (:mod:`ecgedge.view.feed`). aiohttp because it
is one well-kept package that streams (server-sent events are a response written in pieces) with
no separate ASGI server, and it refuses oversized request lines and headers itself.

Security, for patient data on a ward network:

- read-only: ``GET`` of the page, its three assets, a state snapshot, the event stream and (in a
  review) the kept strips; nothing of the file system beyond the assets shipped in the package;
- every request but the page and its assets needs the access token, sent as
  ``Authorization: Bearer TOKEN`` (never in a URL, so never in a log), compared in constant time
  (:func:`hmac.compare_digest`);
- a Content-Security-Policy that allows the page's own script, style and connections only, and no
  framing; ``no-store`` caching; no referrer;
- at most ``max_viewers`` event streams at once (more get 503), request lines and headers over
  8 KiB refused by aiohttp (400), no request body read;
- the access log names no patient: aiohttp's access log is off; the bridge logs board names only;
- a refused request (a header over the limit, a malformed request line, bytes that are not HTTP)
  makes one line on the ``ecgedge.view.server`` logger, never a traceback, and at most one line
  every :data:`LOG_EVERY_S` seconds (:class:`RequestLog`): no client can flood the bridge's stderr.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ecgedge.view.feed import Viewer

#: The page's files, shipped in the package; nothing else is served.
ASSETS = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
#: Seconds between keep-alive comments on an idle event stream (a proxy or a dead client is noticed).
KEEPALIVE_S = 5.0
#: Kernel send buffer of each event stream (bytes): a viewer that stops reading holds no more than this
#: there, and its frames are then dropped from its bounded queue, whatever the kernel's autotuning allows.
SEND_BUFFER_BYTES = 64 * 1024
#: Seconds between two lines of the server's log: what comes meanwhile is counted in the next line.
LOG_EVERY_S = 10.0
#: Characters of aiohttp's reason for a refusal kept in the line (it may quote the client's bytes).
REASON_CHARS = 100

_log = logging.getLogger(__name__)


class RequestLog(logging.LoggerAdapter):
    """aiohttp's server log, as the page writes it: a line per refused request, no traceback, rate-limited.

    aiohttp logs every request it refuses (a request line or a header over its limits, a malformed
    request line, bytes that are not HTTP) with the parser's traceback on its ``aiohttp.server``
    logger, which Python's last-resort handler prints on stderr: any client could flood the bridge's
    log. Given to aiohttp as its server ``logger``, this writes one line for a refused request
    instead, without a traceback; an error of the page's own code (a 500) keeps its traceback. At
    most one line every ``every_s`` seconds either way: what comes meanwhile is counted, and the
    count said by the next line or by :meth:`flush`. aiohttp's debug messages pass as they are.

    Parameters
    ----------
    logger : logging.Logger
        Where the lines go.
    every_s : float, default=LOG_EVERY_S
        Seconds between two lines.
    clock : callable, default=time.monotonic
        Seconds, for the limit.

    Attributes
    ----------
    refused : int
        Requests refused so far, logged or not.
    held : int
        Lines left out since the last one.
    """

    def __init__(
        self, logger: logging.Logger, every_s: float = LOG_EVERY_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(logger, {})
        self.every_s = every_s
        self.clock = clock
        self.refused = 0
        self.held = 0
        self._last = -math.inf

    def log(self, level: int, msg: object, *args: object, exc_info: Any = None, **kwargs: Any) -> None:
        """What aiohttp's ``logger.debug`` and ``logger.exception`` come to."""
        error = _exception(exc_info)
        text = str(msg) % args if args else str(msg)
        if isinstance(error, HttpProcessingError):  # the client's request, refused with a 4xx
            self.refused += 1
            first_line = (error.message or "").partition("\n")[0].rstrip(": ")
            reason = "".join(c if c.isprintable() else "?" for c in first_line)  # it may quote the client's bytes
            if len(reason) > REASON_CHARS:
                reason = reason[:REASON_CHARS] + "..."
            self._limited(logging.WARNING, f"page: {text}: refused, {error.code} {type(error).__name__}: {reason}")
        elif level < logging.WARNING:
            super().log(level, msg, *args, exc_info=exc_info, **kwargs)
        else:  # the page's own code failed: its traceback is what fixes it
            self._limited(level, f"page: {text}", exc_info=exc_info)

    def _limited(self, level: int, line: str, exc_info: Any = None) -> None:
        now = self.clock()
        if now - self._last < self.every_s:
            self.held += 1
            return
        if self.held:
            line += f" ({self.held} more since the last line, not logged)"
        self._last, self.held = now, 0
        self.logger.log(level, line, exc_info=exc_info)

    def flush(self) -> None:
        """Say how many lines were left out since the last one, if any."""
        if self.held:
            self.logger.warning("page: %d more refused or failed requests since the last line, not logged", self.held)
            self.held = 0


def _exception(exc_info: Any) -> BaseException | None:
    """The exception a logging call's ``exc_info`` names."""
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple):
        return exc_info[1]
    return sys.exc_info()[1] if exc_info else None


def _asset(name: str) -> bytes:
    return (resources.files("ecgedge.view") / "static" / name).read_bytes()


@web.middleware
async def _headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    response.headers.update(
        {
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
        }
    )
    return response


def make_app(feed, token: str, *, max_viewers: int = 16) -> web.Application:
    """The aiohttp application of the page over ``feed``.

    Parameters
    ----------
    feed : LiveFeed or ReviewFeed
        A live bridge's, or a database's (``ecgedge review``: its strips at ``/api/strips/ID``).
    token : str
        The access token (at least 16 characters).
    max_viewers : int, default=16
        Event streams served at once.
    """
    if len(token) < 16:
        raise ValueError("the access token must have at least 16 characters")
    expected = f"Bearer {token}".encode()
    app = web.Application(middlewares=[_headers], client_max_size=1024)
    streaming: set[Viewer] = set()

    def authorised(request: web.Request) -> bool:
        return hmac.compare_digest(request.headers.get("Authorization", "").encode(), expected)

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info.get("name", "index.html")
        if name not in ASSETS:
            raise web.HTTPNotFound()
        return web.Response(body=_asset(name), content_type=ASSETS[name])

    async def state(request: web.Request) -> web.Response:
        if not authorised(request):
            raise web.HTTPUnauthorized(text="a valid access token is needed")
        return web.json_response(feed.snapshot())

    async def strip(request: web.Request) -> web.Response:
        if not authorised(request):
            raise web.HTTPUnauthorized(text="a valid access token is needed")
        number = request.match_info["id"]
        found = feed.strip(int(number)) if number.isdigit() and hasattr(feed, "strip") else None
        if found is None:
            raise web.HTTPNotFound(text="no such strip")
        return web.json_response(found)

    async def events(request: web.Request) -> web.StreamResponse:
        if not authorised(request):
            raise web.HTTPUnauthorized(text="a valid access token is needed")
        if len(streaming) >= max_viewers:
            raise web.HTTPServiceUnavailable(text=f"at most {max_viewers} viewers at once")
        loop, ready = asyncio.get_running_loop(), asyncio.Event()
        viewer = Viewer(wake=lambda: loop.call_soon_threadsafe(ready.set))
        streaming.add(viewer)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        try:
            await response.prepare(request)
            sock = request.transport.get_extra_info("socket") if request.transport else None
            if sock is not None:  # what a stalled viewer holds in the kernel stays small, whatever the autotuning
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            await response.write(_event(feed.subscribe(viewer)))
            while True:
                try:
                    await asyncio.wait_for(ready.wait(), KEEPALIVE_S)
                except asyncio.TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                ready.clear()
                frames = viewer.take()
                if viewer.dropped:
                    frames.append({"type": "dropped", "frames": viewer.dropped})
                await response.write(b"".join(_event(f) for f in frames))
        except ConnectionResetError:  # the browser went away
            pass
        finally:
            feed.unsubscribe(viewer)
            streaming.discard(viewer)
        return response

    app.router.add_get("/", asset)
    app.router.add_get("/static/{name}", asset)
    app.router.add_get("/api/state", state)
    app.router.add_get("/api/events", events)
    app.router.add_get("/api/strips/{id}", strip)
    return app


def _event(frame: dict) -> bytes:
    return b"data: " + json.dumps(frame, separators=(",", ":")).encode() + b"\n\n"


class ViewServer:
    """The page served from a thread of its own; :meth:`close` stops it.

    Parameters
    ----------
    feed : LiveFeed or ReviewFeed
    host : str
    port : int
        0 picks a free port (see :attr:`port`).
    token : str
    max_viewers : int, default=16
    log_every_s : float, default=LOG_EVERY_S
        Seconds between two lines about refused requests (:class:`RequestLog`).

    Attributes
    ----------
    log : RequestLog
        The server's log (``log.refused``: requests refused so far).
    """

    def __init__(
        self, feed, host: str, port: int, token: str, *, max_viewers: int = 16, log_every_s: float = LOG_EVERY_S
    ) -> None:
        self.feed = feed
        self.log = RequestLog(_log, log_every_s)
        self._app = make_app(feed, token, max_viewers=max_viewers)
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(
            self._app, access_log=None, handle_signals=False, shutdown_timeout=1.0, logger=self.log
        )
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, host, port, backlog=128)
        self._loop.run_until_complete(site.start())
        self.host, self.port = self._runner.addresses[0][:2]
        self._thread = threading.Thread(target=self._loop.run_forever, name="ecgedge-view", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def close(self) -> None:
        """Stop serving; safe to call twice."""
        if not self._loop.is_running():
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self.log.flush()
