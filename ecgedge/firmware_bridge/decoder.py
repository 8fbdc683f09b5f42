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

#: Readings an ASCII line may carry: what fits an int32 (anything else is a broken line).
INT32 = (-(2**31), 2**31)


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
    bytes : int
        Bytes read.
    frame_bytes : int
        Bytes of the frames (or lines) delivered, delimiters included.
    """

    frames: int = 0
    corrupt: Counter = field(default_factory=Counter)
    lost: int = 0
    connections: int = 0
    bytes: int = 0
    frame_bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count_corrupt(self, reason: str) -> None:
        with self.lock:
            self.corrupt[reason] += 1

    @property
    def dropped(self) -> int:
        """All frames dropped as corrupt."""
        return sum(self.corrupt.values())

    @property
    def garbage_bytes(self) -> int:
        """Bytes read that were not part of a delivered frame (noise, broken frames, stray delimiters)."""
        return self.bytes - self.frame_bytes

    def as_dict(self) -> dict:
        return {
            "frames": self.frames,
            "dropped": self.dropped,
            "corrupt": dict(self.corrupt),
            "lost": self.lost,
            "connections": self.connections,
            "bytes": self.bytes,
            "garbage_bytes": self.garbage_bytes,
        }


class _Decoder(Packetizer):
    """The parts both decoders share: listener, stats, arrival time, resync.

    :meth:`data_received` splits what arrives at the delimiters in one pass
    (pyserial's ``Packetizer`` copies the rest of its buffer at every
    delimiter, quadratic in a run of delimiters).
    """

    #: Longest run of bytes without a delimiter before it is dropped as garbage.
    MAX_PACKET = MAX_ENCODED
    #: Whether empty packets (back-to-back delimiters) mean nothing.
    SKIP_EMPTY = True

    def __init__(self, listener: Listener, stats: LinkStats) -> None:
        super().__init__()
        self.listener = listener
        self.stats = stats
        self.arrival = 0.0
        self._overlong = False  # the packet being received was already counted as overlong

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
        with self.stats.lock:
            self.stats.bytes += len(data)
        parts = bytes(data).split(self.TERMINATOR)
        if len(parts) > 1:
            head = bytes(self.buffer) + parts[0]
            self.buffer.clear()
            if self._overlong:
                self._overlong = False  # the end of a run already counted
            else:
                self._packet(head)
            middle = parts[1:-1]
            for part in filter(None, middle) if self.SKIP_EMPTY else middle:
                self._packet(part)
        elif self._overlong:
            return
        self.buffer.extend(parts[-1])
        if len(self.buffer) > self.MAX_PACKET:
            self.stats.count_corrupt("overlong")
            self.buffer.clear()
            self._overlong = True

    def _packet(self, packet: bytes) -> None:
        if len(packet) > self.MAX_PACKET:
            self.stats.count_corrupt("overlong")
        elif packet or not self.SKIP_EMPTY:
            self.handle_packet(packet)

    def delivered(self, packet: bytes) -> None:
        """Count a packet that became a frame (or reading)."""
        with self.stats.lock:
            self.stats.frames += 1
            self.stats.frame_bytes += len(packet) + len(self.TERMINATOR)


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

    def handle_packet(self, packet: bytes) -> None:
        try:
            seq, message = decode_frame(packet)
        except FrameError as exc:
            self.stats.count_corrupt(exc.reason)
            return
        self.delivered(packet)
        if self._next_seq is not None:
            with self.stats.lock:
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
    spaces; each must fit an int32), or ``!`` when an electrode is off. The first line after a
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
    SKIP_EMPTY = False  # an empty line still takes a sample period

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

    def handle_packet(self, packet: bytes) -> None:
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
            elif not all(INT32[0] <= v < INT32[1] for v in reading):
                self.stats.count_corrupt("ascii-range")
                self._flush()
            else:
                if not self._block:
                    self._block_first = self.index
                self._block.append(reading)
                self.delivered(packet)
        self.index += 1

    def _flush(self) -> None:
        if self._block:
            values = np.asarray(self._block, dtype=np.int32)
            self._block = []
            self.listener.samples(self._block_first, values, self.arrival)
