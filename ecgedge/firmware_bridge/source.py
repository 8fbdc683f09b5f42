"""A serial link that survives unplug / replug: pyserial URL + one shared poller + backoff."""

from __future__ import annotations

import os
import selectors
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

import serial
from serial.threaded import Protocol, ReaderThread

from ecgedge._closing import Closing

#: Reconnection times a source keeps (a board replugged for weeks must not grow a list).
RECONNECTS_KEPT = 1000


class _PortPoller:
    """One thread that reads every open port with a file descriptor.

    Ports register with :meth:`watch`; when one is readable the poller reads
    what is there (``os.read``, no pyserial ``select()``, so descriptors past
    1024 work) and hands it to the port's protocol. On end of file, a read
    error or a protocol error it drops the port and calls its ``on_lost``.
    """

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, fd: int, protocol: Protocol, on_lost: Callable[[BaseException | None], None]) -> None:
        """Read ``fd`` into ``protocol.data_received`` until it fails or :meth:`forget`."""
        with self._lock:
            self._selector.register(fd, selectors.EVENT_READ, (protocol, on_lost))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="serial poller", daemon=True)
                self._thread.start()

    def forget(self, fd: int) -> None:
        """Stop reading ``fd``; once this returns, its protocol is not called again."""
        with self._lock:
            if fd in self._selector.get_map():
                self._selector.unregister(fd)

    def _run(self) -> None:
        while True:
            ready = self._selector.select(1.0)
            with self._lock:
                ports = self._selector.get_map()
                for key, _ in ready:
                    if ports.get(key.fd) is not key:
                        continue  # forgotten (and perhaps the descriptor reused) meanwhile
                    protocol, on_lost = key.data
                    try:
                        data = os.read(key.fd, 65536)
                        if data:
                            protocol.data_received(data)
                            continue
                        error = None
                    except BlockingIOError:
                        continue
                    except Exception as exc:  # noqa: BLE001 - any failure ends this connection
                        error = exc
                    self._selector.unregister(key.fd)
                    on_lost(error)


_POLLER = _PortPoller()


def backoff(first: float, most: float) -> Iterator[float]:
    """The waits (s) between attempts to open a port: ``first``, doubling up to ``most``, then ``most`` for ever.

    So a port that comes back is tried again within ``most`` seconds, however long it was gone.

    Examples
    --------
    >>> from itertools import islice
    >>> list(islice(backoff(0.05, 0.5), 6))
    [0.05, 0.1, 0.2, 0.4, 0.5, 0.5]
    """
    delay = first
    while True:
        yield delay
        delay = min(2 * delay, most)


class PortError(OSError):
    """A port that cannot be opened; the message names it and says why."""


def _never_a_port(url: str) -> str | None:
    """Why ``url`` can never be a serial port (a regular file, a directory), or None."""
    if "://" in url:
        return None
    try:
        mode = os.stat(url).st_mode
    except OSError:
        return None  # missing now: a board may be plugged in later
    if stat.S_ISDIR(mode):
        return "it is a directory, not a serial device"
    if stat.S_ISREG(mode):
        return "it is a regular file, not a serial device"
    return None


class SerialSource(Closing):
    """Keep any pyserial URL open and feed what it reads to a protocol.

    Ports with a file descriptor (ttys, ptys, ``socket://``) are read by one
    poller thread shared by all sources of the process; others (``loop://``)
    by a :class:`serial.threaded.ReaderThread` of their own. When the port
    fails (cable pulled, board reset, socket closed) the source reopens it,
    waiting ``min_backoff`` seconds first and doubling up to ``max_backoff``
    while it keeps failing (:func:`backoff`). Each connection gets a fresh protocol from
    ``protocol_factory``.

    Parameters
    ----------
    url : str
        Anything :func:`serial.serial_for_url` opens: ``/dev/ttyUSB0``, a pty
        path, ``socket://127.0.0.1:7000``, ``loop://``.
    protocol_factory : callable
        Returns a new :class:`serial.threaded.Protocol` per connection.
    baudrate : int, default=115200
        Ignored by transports without one (pty, socket).
    min_backoff, max_backoff : float, default=0.05, 0.5
        Reconnection delays in seconds.
    on_state : callable, optional
        ``on_state(connected: bool, why: str)``, called from the source's
        thread when the link comes up and when it goes down (not on every
        failed attempt to reopen it).

    Raises
    ------
    ValueError
        When pyserial does not know the URL's scheme.

    Attributes
    ----------
    reconnects : deque of float
        Seconds from each loss of the link to the port open again (the last :data:`RECONNECTS_KEPT`).
    last_error : str or None
        Why the link was last lost or could not be opened.
    """

    def __init__(
        self,
        url: str,
        protocol_factory: Callable[[], Protocol],
        *,
        baudrate: int = 115200,
        min_backoff: float = 0.05,
        max_backoff: float = 0.5,
        on_state: Callable[[bool, str], None] | None = None,
    ) -> None:
        if not 0 < min_backoff <= max_backoff:
            raise ValueError(f"need 0 < min_backoff <= max_backoff, got {min_backoff}, {max_backoff}")
        try:
            serial.serial_for_url(url, do_not_open=True)
        except ValueError as exc:
            raise ValueError(f"cannot use port URL {url!r}: {exc}") from None
        self.url = url
        self.protocol_factory = protocol_factory
        self.baudrate = baudrate
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.on_state = on_state
        self.reconnects: deque[float] = deque(maxlen=RECONNECTS_KEPT)
        self.last_error: str | None = None
        self._first: serial.SerialBase | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()  # set when the polled port is lost or on stop()
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"source {url}", daemon=True)

    def open(self) -> serial.SerialBase:
        """Open the port once."""
        return serial.serial_for_url(self.url, baudrate=self.baudrate)

    def open_first(self, timeout: float) -> None:
        """Open the port now, retrying for up to ``timeout`` seconds; :meth:`start` then serves it.

        Raises
        ------
        PortError
            At once for a path that can never be a port (a regular file, a
            directory); else when it did not open within ``timeout`` (missing,
            permission denied, connection refused), with pyserial's reason.
        """
        why = _never_a_port(self.url)
        if why is not None:
            raise PortError(f"cannot open port {self.url}: {why}")
        deadline = time.monotonic() + timeout
        delays = backoff(self.min_backoff, self.max_backoff)
        while True:
            try:
                self._first = self.open()
                return
            except (serial.SerialException, OSError) as exc:
                self.last_error = str(exc)
            delay = next(delays)
            if time.monotonic() + delay > deadline:
                raise PortError(f"cannot open port {self.url} (tried for {timeout:g} s): {self.last_error}")
            time.sleep(delay)

    def start(self) -> SerialSource:
        """Start connecting in the background; returns ``self``."""
        self._thread.start()
        return self

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Block until the port is open (True) or ``timeout`` passes (False)."""
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def stop(self) -> None:
        """Close the port and stop reconnecting."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(5.0)
        elif self._first is not None:
            self._first.close()

    def close(self) -> None:
        """Close the port and stop reconnecting (:meth:`stop`)."""
        self.stop()

    def _tell(self, connected: bool, why: str) -> None:
        if self.on_state is not None:
            self.on_state(connected, why)

    def _run(self) -> None:
        delays = backoff(self.min_backoff, self.max_backoff)
        lost_at: float | None = None
        while not self._stop.is_set():
            port, self._first = self._first, None
            try:
                port = port or self.open()
            except (serial.SerialException, OSError) as exc:
                self.last_error = str(exc)
                self._stop.wait(next(delays))
                continue
            if lost_at is not None:
                self.reconnects.append(time.perf_counter() - lost_at)
            delays = backoff(self.min_backoff, self.max_backoff)  # the next loss starts again from the shortest
            self._tell(True, "reconnected" if lost_at is not None else "connected")
            try:
                fd = port.fileno()
            except AttributeError:  # loop:// and other transports without a descriptor
                self._serve_threaded(port)
            else:
                self._serve_polled(port, fd)
            lost_at = time.perf_counter()
            if not self._stop.is_set():
                self._tell(False, self.last_error or "link lost")

    def _serve_polled(self, port: serial.SerialBase, fd: int) -> None:
        protocol = self.protocol_factory()
        protocol.connection_made(port)
        lost: list[BaseException | None] = []

        def on_lost(error: BaseException | None) -> None:
            lost.append(error)
            self._wake.set()

        self._wake.clear()
        _POLLER.watch(fd, protocol, on_lost)
        self._connected.set()
        try:
            if not self._stop.is_set():
                self._wake.wait()
        finally:
            _POLLER.forget(fd)
            self._connected.clear()
            protocol.connection_lost(lost[0] if lost else None)
            port.close()
            if not self._stop.is_set():
                self.last_error = f"link lost: {lost[0]}" if lost and lost[0] is not None else "link lost (end of file)"

    def _serve_threaded(self, port: serial.SerialBase) -> None:
        reader = ReaderThread(port, self.protocol_factory)
        reader.start()
        self._connected.set()
        try:
            while reader.is_alive() and not self._stop.is_set():
                reader.join(0.05)
        finally:
            self._connected.clear()
            if reader.is_alive():
                reader.stop()
            port.close()
            if not self._stop.is_set():
                self.last_error = "link lost"
