"""Byte stream -> board events, as :mod:`serial.threaded` protocols.

:class:`FrameDecoder` (binary frames, a :class:`serial.threaded.Packetizer`)
and :class:`AsciiDecoder` (one reading per line) turn what a
:class:`~ecgedge.firmware_bridge.source.SerialSource` reads into calls on a :class:`Listener`:
``hello``, ``samples`` and ``status``. Corrupt input is counted in
:class:`LinkStats` and dropped; decoding resumes at the next delimiter.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol as TypingProtocol

import numpy as np
from serial.threaded import Packetizer

from ecgedge.firmware_bridge.protocol import (
    LEAD_OFF_MINUS,
    LEAD_OFF_PLUS,
    MAX_ENCODED,
    FrameError,
    Hello,
    Samples,
    Status,
    decode_frame,
)


class Listener(TypingProtocol):
    """What a decoder reports to. ``t`` is :func:`time.perf_counter` at arrival."""

    def hello(self, hello: Hello) -> None: ...

    def samples(self, first: int, values: np.ndarray, t: float) -> None: ...

    def status(self, status: Status) -> None: ...


@dataclass
class LinkStats:
    """Counters of one link, shared by the decoders of its successive connections.

    Attributes
    ----------
    frames : int
        Frames (or lines) decoded and delivered.
    corrupt : Counter
        Frames (or lines) dropped, by reason (``"crc"``, ``"cobs"``, ``"length"``, ...).
    lost : int
        Frames missing according to the sequence numbers, within a connection.
    connections : int
        Times the link was (re)opened.
    """

    frames: int = 0
    corrupt: Counter = field(default_factory=Counter)
    lost: int = 0
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count_corrupt(self, reason: str) -> None:
        with self.lock:
            self.corrupt[reason] += 1

    @property
    def dropped(self) -> int:
        """All frames dropped as corrupt."""
        return sum(self.corrupt.values())

    def as_dict(self) -> dict:
        return {
            "frames": self.frames,
            "dropped": self.dropped,
            "corrupt": dict(self.corrupt),
            "lost": self.lost,
            "connections": self.connections,
        }


class _Decoder(Packetizer):
    """The parts both decoders share: listener, stats, arrival time, resync."""

    #: Longest run of bytes without a delimiter before it is dropped as garbage.
    MAX_PACKET = MAX_ENCODED

    def __init__(self, listener: Listener, stats: LinkStats) -> None:
        super().__init__()
        self.listener = listener
        self.stats = stats
        self.arrival = 0.0
        self._overlong = False

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        with self.stats.lock:
            self.stats.connections += 1

    def connection_lost(self, exc: BaseException | None) -> None:
        # A lost port is the source's business (it reconnects), not an error to raise here.
        self.transport = None
        self.buffer.clear()

    def data_received(self, data: bytes) -> None:
        self.arrival = time.perf_counter()
        if self._overlong:  # skip the rest of a run already counted as one overlong packet
            cut = data.find(self.TERMINATOR)
            if cut < 0:
                return
            data, self._overlong = data[cut + len(self.TERMINATOR) :], False
        super().data_received(data)
        if len(self.buffer) > self.MAX_PACKET:
            self.stats.count_corrupt("overlong")
            self.buffer.clear()
            self._overlong = True


class FrameDecoder(_Decoder):
    """Decode COBS/CRC frames (see :mod:`ecgedge.firmware_bridge.protocol`).

    Parameters
    ----------
    listener : Listener
        Receives the decoded messages.
    stats : LinkStats
        Counters to update; pass the same object across reconnections.
    """

    TERMINATOR = b"\x00"

    def __init__(self, listener: Listener, stats: LinkStats) -> None:
        super().__init__(listener, stats)
        self._next_seq: int | None = None

    def handle_packet(self, packet: bytearray) -> None:
        if not packet:
            return  # back-to-back delimiters: boards may send one to flush a line
        try:
            seq, message = decode_frame(bytes(packet))
        except FrameError as exc:
            self.stats.count_corrupt(exc.reason)
            return
        with self.stats.lock:
            self.stats.frames += 1
            if self._next_seq is not None:
                self.stats.lost += (seq - self._next_seq) & 0xFFFF
        self._next_seq = (seq + 1) & 0xFFFF
        if isinstance(message, Samples):
            self.listener.samples(message.first, message.values, self.arrival)
        elif isinstance(message, Hello):
            self.listener.hello(message)
        else:
            self.listener.status(message)


class AsciiDecoder(_Decoder):
    """Decode one reading per line, as Arduino AD8232 sketches print them.

    A line holds one integer ADC count per lead (separated by commas or
    spaces), or ``!`` when an electrode is off. The first line after a
    (re)connection is dropped because it may be cut. The sample index is the
    line count, so every line (also a bad one) takes one sample period.

    Parameters
    ----------
    listener : Listener
        Receives ``samples`` blocks and ``status`` changes.
    stats : LinkStats
        Counters to update; pass the same object across reconnections.
    n_leads : int, default=1
        Readings per line.
    start : int, default=0
        Sample index of the first line (after a reconnection: where the
        board's clock is estimated to be).
    """

    TERMINATOR = b"\n"
    MAX_PACKET = 256

    def __init__(self, listener: Listener, stats: LinkStats, n_leads: int = 1, start: int = 0) -> None:
        super().__init__(listener, stats)
        self.n_leads = n_leads
        self.index = start
        self._skip_first = True
        self._block: list[list[int]] = []
        self._block_first = start
        self._lead_off = False

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._flush()

    def handle_packet(self, packet: bytearray) -> None:
        if self._skip_first:
            self._skip_first = False
            return
        text = packet.strip()
        lead_off = text == b"!"
        if lead_off != self._lead_off:
            self._flush()
            self._lead_off = lead_off
            self.listener.status(Status(self.index, LEAD_OFF_PLUS | LEAD_OFF_MINUS if lead_off else 0))
        if not lead_off:
            values = text.replace(b",", b" ").split()
            try:
                reading = [int(v) for v in values]
            except ValueError:
                reading = []
            if len(reading) != self.n_leads:
                self.stats.count_corrupt("ascii")
                self._flush()
            else:
                if not self._block:
                    self._block_first = self.index
                self._block.append(reading)
                with self.stats.lock:
                    self.stats.frames += 1
        self.index += 1

    def _flush(self) -> None:
        if self._block:
            values = np.asarray(self._block, dtype=np.int32)
            self._block = []
            self.listener.samples(self._block_first, values, self.arrival)
