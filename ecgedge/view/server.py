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
- the access log names no patient: aiohttp's access log is off; the bridge logs board names only.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import socket
import threading
from importlib import resources

from aiohttp import web

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


def _asset(name: str) -> bytes:
    return (resources.files("ecgedge.view") / "static" / name).read_bytes()


@web.middleware
async def _headers(request: web.Request, handler):
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
    """

    def __init__(self, feed, host: str, port: int, token: str, *, max_viewers: int = 16) -> None:
        self.feed = feed
        self._app = make_app(feed, token, max_viewers=max_viewers)
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(self._app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, host, port, backlog=128)
        self._loop.run_until_complete(site.start())
        self.host, self.port = site._server.sockets[0].getsockname()[:2]
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
