"""One board's link: its port, its decoder, and the typed messages it puts on the hub's queue.

A :class:`BoardLink` owns a reconnecting :class:`~ecgedge.firmware_bridge.source.SerialSource`;
the source's reader thread decodes frames (or lines) and the link turns each into a message
(:class:`BoardHello`, :class:`BoardSamples`, :class:`BoardStatus`, :class:`LinkState`) on a
bounded queue, waiting while it is full. Messages name their stream, not the link, so the
:class:`~ecgedge.firmware_bridge.core.BridgeCore` that consumes them needs no port at all.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ecgedge.firmware_bridge.decoder import AsciiDecoder, FrameDecoder, LinkStats
from ecgedge.firmware_bridge.protocol import Hello, Status
from ecgedge.firmware_bridge.settings import BoardSpec
from ecgedge.firmware_bridge.source import SerialSource


@dataclass(frozen=True)
class BoardHello:
    """A board announced its format."""

    stream: str
    hello: Hello


@dataclass(frozen=True)
class BoardSamples:
    """A block of samples (ADC counts, shape (n, leads)) read at ``arrival`` (:func:`time.perf_counter`)."""

    stream: str
    first: int
    values: np.ndarray
    arrival: float


@dataclass(frozen=True)
class BoardStatus:
    """A board reported its electrodes / ADC state."""

    stream: str
    status: Status


@dataclass(frozen=True)
class LinkState:
    """The port opened (``connected``) or was lost, at UNIX time ``at``, for the reason given."""

    stream: str
    connected: bool
    why: str
    at: float


Message = BoardHello | BoardSamples | BoardStatus | LinkState


class BoardLink:
    """One board: its port and decoder counters.

    Decoder threads call :meth:`hello`, :meth:`samples` and :meth:`status` (the
    :class:`~ecgedge.firmware_bridge.decoder.Listener` interface) and the source reports the
    port's state; the link turns each into a typed message on ``messages``, waiting while the
    queue is full (backpressure).

    Parameters
    ----------
    messages : queue.Queue
        The hub's bounded queue.
    spec : BoardSpec
    fs : callable
        ``fs() -> float or None``: the stream's sample rate, for the time an ASCII link was down.
    """

    def __init__(self, messages: queue.Queue, spec: BoardSpec, fs: Callable[[], float | None]) -> None:
        self.spec = spec
        self.stats = LinkStats()
        self.source = SerialSource(spec.url, self._protocol, baudrate=spec.baudrate, on_state=self._state)
        self.closing = False  # set when the hub stops: a full queue then drops instead of waiting
        self.progress_at = 0.0  # perf_counter of the last frame seen by the hub's watchdog
        self.progress_frames = 0
        self._messages = messages
        self._fs = fs
        self._last: tuple[int, float] | None = None  # (next index, arrival) of the latest block

    @property
    def name(self) -> str:
        return self.spec.name

    def _protocol(self) -> FrameDecoder | AsciiDecoder:
        if self.spec.fmt == "binary":
            return FrameDecoder(self, self.stats)
        start = 0
        if self._last is not None:  # ASCII has no indices: count the time the link was down
            end, arrival = self._last
            start = end + round((time.perf_counter() - arrival) * (self._fs() or 0))
        return AsciiDecoder(self, self.stats, start=start)

    def _put(self, message: Message) -> None:
        """Queue a message, waiting while the queue is full, unless the hub is stopping."""
        while not self.closing:
            try:
                self._messages.put(message, timeout=0.1)
                return
            except queue.Full:
                continue

    def hello(self, hello: Hello) -> None:
        self._put(BoardHello(self.name, hello))

    def samples(self, first: int, values: np.ndarray, t: float) -> None:
        self._last = (first + len(values), t)
        self._put(BoardSamples(self.name, first, values, t))

    def status(self, status: Status) -> None:
        self._put(BoardStatus(self.name, status))

    def _state(self, connected: bool, why: str) -> None:
        self._put(LinkState(self.name, connected, why, time.time()))
