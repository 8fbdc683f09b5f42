"""Virtual ECG boards: a recorded lead sent over a pty, a socket or a serial port, with faults.

:class:`VirtualBoard` turns ADC counts into what a board sends (binary frames
like ``firmware/`` or ASCII lines), optionally damaging bytes and dropping
frames; an endpoint (:class:`PtyEndpoint`, :class:`TcpEndpoint`,
:class:`SerialEndpoint`) carries the bytes; :func:`run_boards` paces any
number of boards in real time (or ``speed`` times faster), unplugging them
on request, and with ``flow_control`` waiting for a reader that falls behind
instead of losing what it cannot take.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import select
import socket
import threading
import time
import tty
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import numpy as np
import serial

from ecgedge.firmware_bridge.protocol import Hello, Samples, Status, encode_frame

#: Seconds the boards wait once every endpoint has a reader: pyserial flushes the input at the end
#: of ``open()``, after the open is visible to a pty's master, and would drop what came in between.
OPEN_SETTLE_S = 0.1
#: Seconds a board with flow control waits for room in its link before it gives the frame up (a reader
#: that stopped for good, not one that is slow).
FLOW_WAIT_S = 30.0


def _write_waiting(send, fileno: int, data: bytes, wait_s: float) -> bool:
    """Send all of ``data`` with ``send`` (non-blocking: returns the bytes taken, or raises
    BlockingIOError), waiting up to ``wait_s`` seconds in all for the link to take it; whether it did."""
    view = memoryview(data)
    deadline = time.monotonic() + wait_s
    while True:
        with contextlib.suppress(BlockingIOError):
            view = view[send(view) :]
        if not view:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        select.select([], [fileno], [], min(left, 0.05))


@dataclass
class BoardStats:
    """What a virtual board did to its stream.

    Attributes
    ----------
    frames : int
        Frames (binary) or blocks of lines (ASCII) produced.
    damaged : int
        Frames with at least one flipped bit.
    splits : int
        Flips that turned a byte into the 0x00 delimiter (the receiver sees
        one more broken frame).
    dropped : int
        Frames left out entirely (``drop_rate``).
    overruns : int
        Writes the endpoint could not take whole (nobody reading, or reading too slowly).
    offline : int
        Writes skipped while unplugged.
    disconnects : int
        Times the board was unplugged.
    late_max : float
        Largest delay (s) of a write behind its schedule.
    """

    frames: int = 0
    damaged: int = 0
    splits: int = 0
    dropped: int = 0
    overruns: int = 0
    offline: int = 0
    disconnects: int = 0
    late_max: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


class VirtualBoard:
    """The byte stream of a board sampling a recorded lead.

    Parameters
    ----------
    adc : array-like of int, shape (n_samples,)
        ADC counts, one lead.
    fs : float
        Sample rate in Hz.
    gain : float
        ADC counts per mV.
    baseline : int
        ADC count of 0 mV.
    lead : str, default="MLII"
    others : array-like of int, shape (n_samples, n_others), optional
        More leads sent beside ``lead`` in each SAMPLES frame (binary only), in the same counts.
    other_leads : tuple of str, default=()
        Their names.
    fmt : {"binary", "ascii"}, default="binary"
    per_frame : int, default=10
        Samples per SAMPLES frame (binary) or per write (ASCII).
    adc_bits : int, default=11
    corrupt_rate : float, default=0
        Probability that a byte of a frame body is hit by a one-bit error
        (the 0x00 delimiters are spared, so each damaged frame costs one frame).
    drop_rate : float, default=0
        Probability that a frame is left out.
    seed : int, default=0
    repeat : int, default=1
        Play the samples this many times back to back, the sample index going on (a board left
        on for days, from one recording).
    """

    def __init__(
        self,
        adc,
        fs: float,
        gain: float,
        baseline: int,
        *,
        lead: str = "MLII",
        others=None,
        other_leads: tuple[str, ...] = (),
        fmt: str = "binary",
        per_frame: int = 10,
        adc_bits: int = 11,
        corrupt_rate: float = 0.0,
        drop_rate: float = 0.0,
        seed: int = 0,
        repeat: int = 1,
    ) -> None:
        if repeat < 1:
            raise ValueError(f"repeat must be >= 1, got {repeat}")
        if fmt not in ("binary", "ascii"):
            raise ValueError(f"format must be 'binary' or 'ascii', got {fmt!r}")
        for name, rate in (("corrupt_rate", corrupt_rate), ("drop_rate", drop_rate)):
            if not 0 <= rate < 1:
                raise ValueError(f"{name} must be in [0, 1), got {rate}")
        self.adc = np.asarray(adc, dtype=np.int16)
        self.others = np.empty((self.adc.size, 0), np.int16) if others is None else np.asarray(others, np.int16)
        if self.others.shape != (self.adc.size, len(other_leads)):
            raise ValueError(f"others of shape {self.others.shape} for {self.adc.size} samples of {other_leads}")
        if other_leads and fmt == "ascii":
            raise ValueError("an ASCII board sends one lead")
        self.fs = float(fs)
        self.hello = Hello(self.fs, adc_bits, float(gain), int(baseline), (lead, *other_leads), (1, 0, 0))
        self.fmt = fmt
        self.per_frame = per_frame
        self.corrupt_rate = corrupt_rate
        self.drop_rate = drop_rate
        self.stats = BoardStats()
        self.repeat = repeat
        self._rng = np.random.default_rng(seed)

    @classmethod
    def from_record(
        cls,
        path: str | Path | None = None,
        *,
        lead: str = "MLII",
        other_leads: bool = False,
        start_s: float = 0.0,
        duration_s: float | None = None,
        **kwargs,
    ) -> VirtualBoard:
        """A board playing a lead of a WFDB record (MIT-BIH 100 by default), and with ``other_leads`` the rest.

        The other leads follow ``lead`` in each frame, rescaled to its gain and baseline.
        Records in format 212 (MIT-BIH's, the bundled one among them) are read with numpy
        alone, so the base install plays them; others need the ``records`` extra (wfdb).
        """
        where = Path(path) if path is not None else None
        adc, fs, gain, baseline, name, leads = _read_lead(where, lead)
        names = tuple(other for other in leads if other != name) if other_leads else ()
        others = []
        for other in names:
            counts, _, other_gain, other_baseline, _, _ = _read_lead(where, other)
            rescaled = np.round((counts - other_baseline) * (gain / other_gain) + baseline)
            others.append(np.clip(rescaled, -(2**15), 2**15 - 1))
        first = int(start_s * fs)
        last = None if duration_s is None else first + int(duration_s * fs)
        adc = adc[first:last]
        if adc.size == 0:
            raise ValueError(f"no samples in [{start_s}, {start_s + (duration_s or 0)}] s of the record")
        more = np.column_stack(others)[first:last] if others else None
        return cls(adc, fs, gain, baseline, lead=name, others=more, other_leads=names, **kwargs)

    def chunks(self) -> Iterator[tuple[int, bytes]]:
        """Yield ``(samples taken so far, bytes to send now)``, frame by frame."""
        seq = 0
        next_hello = 0
        total = self.adc.size * self.repeat
        for first in range(0, total, self.per_frame):
            block = self.adc.take(np.arange(first, min(first + self.per_frame, total)), mode="wrap")
            end = first + block.size
            if self.fmt == "ascii":
                yield end, self._damage(bytearray(b"".join(b"%d\r\n" % v for v in block)))
                continue
            frames = []
            if first >= next_hello:
                frames.append(encode_frame(self.hello, seq))
                seq += 1
                next_hello = first + round(self.fs)
            columns = self.others.take(np.arange(first, end), axis=0, mode="wrap")
            frames.append(encode_frame(Samples(first, np.column_stack((block, columns))), seq))
            seq += 1
            yield end, b"".join(self._damage(bytearray(f[:-1])) + f[-1:] for f in frames if not self._drop())

    def _drop(self) -> bool:
        self.stats.frames += 1
        if self.drop_rate and self._rng.random() < self.drop_rate:
            self.stats.dropped += 1
            return True
        return False

    def _damage(self, body: bytearray) -> bytes:
        hits = self._rng.binomial(len(body), self.corrupt_rate) if self.corrupt_rate else 0
        if hits:
            self.stats.damaged += 1
            for pos in self._rng.integers(0, len(body), size=hits):
                body[pos] ^= 1 << int(self._rng.integers(8))
                self.stats.splits += body[pos] == 0
        return bytes(body)


def _read_lead(path: Path | None, lead: str | int) -> tuple[np.ndarray, float, float, int, str, tuple[str, ...]]:
    """A record's lead: ADC counts, sample rate, gain, baseline, its name, and the names of the record's leads."""
    from ecgedge.datasets._format212 import NotFormat212, read_format212
    from ecgedge.datasets._wfdb import default_record_path

    where = path if path is not None else default_record_path()
    where = where.with_suffix("") if where.suffix in {".hea", ".dat", ".atr"} else where
    try:
        record = read_format212(where, lead)
        return record.adc, record.fs, record.gain, record.baseline, record.lead, record.leads
    except NotFormat212:
        import wfdb  # other formats: wfdb, a host-side extra

        from ecgedge.datasets import load_wfdb_record

        other = load_wfdb_record(where, lead=lead, annotator=None)
        leads = tuple(wfdb.rdheader(str(where)).sig_name)
        return other.to_adc(), other.fs, other.adc_gain, other.baseline, other.lead, leads


class ScriptedBoard:
    """A board that sends given byte strings, one every ``per_frame`` samples, paced like a :class:`VirtualBoard`.

    For fault tests: build the frames with :func:`~ecgedge.firmware_bridge.protocol.encode_frame`
    (hostile but CRC-valid), or any bytes at all.

    Parameters
    ----------
    chunks : iterable of bytes
        What to write, in order (an iterator may be endless: stop :func:`run_boards` with ``stop``).
    fs : float, default=360.0
        The sample rate the pacing assumes.
    per_frame : int, default=10
        Samples each chunk stands for.
    """

    def __init__(self, chunks, fs: float = 360.0, per_frame: int = 10) -> None:
        self._chunks = chunks
        self.fs = float(fs)
        self.per_frame = per_frame
        self.stats = BoardStats()

    def chunks(self) -> Iterator[tuple[int, bytes]]:
        for i, data in enumerate(self._chunks):
            self.stats.frames += 1
            yield (i + 1) * self.per_frame, data


class HostileBoard:
    """Endless, seeded, hostile but mostly CRC-valid traffic, with sane stretches between.

    Each episode is either sane (a usable HELLO, then a few seconds of a
    recorded lead, so a stream that recovers can be seen to) or hostile:
    HELLOs with any sample rate, gain (NaN, infinite, 1e-40, negative),
    baseline, ADC bits, protocol version and lead names; SAMPLES with
    jumped, repeated, reversed or wrapped indices, zero samples, more or
    fewer leads than announced, rail values; random STATUS flags; format
    changes mid-read; raw garbage and runs of 0x00. ``fmt="ascii"`` gives
    lines instead: readings beyond int32, wrong counts, ``!``, binary noise.

    Parameters
    ----------
    adc : ndarray of int
        A recorded lead (ADC counts) for the sane stretches.
    fs : float
        Its sample rate.
    gain, baseline : float, int
        Its scale.
    seed : int, default=0
    fmt : {"binary", "ascii"}, default="binary"
    per_frame : int, default=10

    Attributes
    ----------
    kinds : collections.Counter
        How many chunks of each kind were produced.
    """

    FS = (0.0005, 1.0, 50.0, 99.9, 100.0, 250.0, 360.0, 500.0, 1000.0, 1e4, 1.1e4, 4e6)
    GAINS = (float("nan"), float("inf"), float("-inf"), 0.0, -200.0, 1e-40, 1e-3, 0.1, 200.0, 1e6, 1e30)
    NAMES = ("MLII", "V1", "V5", "I", "", "lead,with", "x" * 40)

    def __init__(
        self, adc, fs: float, gain: float, baseline: int, *, seed: int = 0, fmt: str = "binary", per_frame: int = 10
    ) -> None:
        from collections import Counter

        if fmt not in ("binary", "ascii"):
            raise ValueError(f"format must be 'binary' or 'ascii', got {fmt!r}")
        self.adc = np.asarray(adc, dtype=np.int16)
        self.fs = float(fs)
        self.gain = float(gain)
        self.baseline = int(baseline)
        self.fmt = fmt
        self.per_frame = per_frame
        self.stats = BoardStats()
        self.kinds: Counter = Counter()
        self._rng = np.random.default_rng(seed)
        self._seq = 0
        self._index = 0

    def chunks(self) -> Iterator[tuple[int, bytes]]:
        sent = 0
        while True:
            episode = self._sane() if self._rng.random() < 0.4 else self._hostile()
            for data in episode:
                self.stats.frames += 1
                sent += self.per_frame
                yield sent, data

    def _frame(self, message) -> bytes:
        self._seq = (self._seq + 1) & 0xFFFF
        return encode_frame(message, self._seq)

    def _sane(self):
        """A usable HELLO and 1-4 s of the record, from a random place, indices continuing."""
        self.kinds["sane"] += 1
        n = int(self._rng.uniform(1, 4) * self.fs)
        at = int(self._rng.integers(0, max(1, self.adc.size - n)))
        hello = Hello(self.fs, 11, self.gain, self.baseline, ("MLII",), (1, 0, 0))
        for k, first in enumerate(range(0, n, self.per_frame)):
            block = self.adc[at + first : at + first + self.per_frame]
            if self.fmt == "ascii":
                yield b"".join(b"%d\r\n" % v for v in block)
                continue
            head = self._frame(hello) if k % round(self.fs / self.per_frame) == 0 else b""
            yield head + self._frame(Samples(self._index, block[:, None]))
            self._index = (self._index + block.size) & 0xFFFFFFFF

    def _hostile(self):
        """1-3 s of hostile chunks."""
        for _ in range(int(self._rng.uniform(1, 3) * self.fs / self.per_frame)):
            yield self._ascii_line() if self.fmt == "ascii" else self._binary_chunk()

    def _binary_chunk(self) -> bytes:
        rng = self._rng
        kind = str(rng.choice(["hello", "samples", "samples", "status", "switch", "garbage", "zeros", "jump"]))
        self.kinds[kind] += 1
        if kind == "hello":
            return self._frame(self._random_hello())
        if kind == "status":
            return self._frame(Status(int(rng.integers(0, 2**32)), int(rng.integers(0, 256))))
        if kind == "garbage":
            return rng.integers(0, 256, size=int(rng.integers(1, 600)), dtype=np.uint8).tobytes()
        if kind == "zeros":
            return bytes(int(rng.integers(1, 4096)))
        if kind == "switch":  # samples, then a new format in the same read
            return (
                self._frame(self._random_samples())
                + self._frame(self._random_hello())
                + self._frame(self._random_samples())
            )
        if kind == "jump":  # an empty block at a jumped index, then the stream goes on
            self._index = (self._index + int(rng.integers(-(2**31), 2**31))) & 0xFFFFFFFF
            return self._frame(Samples(self._index, np.zeros((0, 1), np.int16)))
        return self._frame(self._random_samples())

    def _random_hello(self) -> Hello:
        rng = self._rng
        n_leads = int(rng.integers(1, 5))
        leads = tuple(str(rng.choice(self.NAMES)).replace(",", "") for _ in range(n_leads))
        return Hello(
            float(rng.choice(self.FS)) if rng.random() < 0.8 else float(rng.uniform(0.001, 4e6)),
            int(rng.integers(0, 256)),
            float(rng.choice(self.GAINS)),
            int(rng.integers(-(2**31), 2**31)),
            leads,
            (1, 0, 0),
            int(rng.choice([1, 1, 1, 0, 2, 255])),
        )

    def _random_samples(self) -> Samples:
        rng = self._rng
        n_leads = int(rng.integers(1, 4))
        count = int(rng.integers(0, 120 // n_leads + 1))
        style = rng.integers(4)
        if style == 0:
            values = rng.integers(-(2**15), 2**15, size=(count, n_leads))
        elif style == 1:
            values = rng.choice([-(2**15), 2**15 - 1, 0, 2047], size=(count, n_leads))
        else:
            values = np.full((count, n_leads), self.baseline if -(2**15) <= self.baseline < 2**15 else 0)
        step = int(rng.choice([0, count, count, -count, 1, 10**6]))
        self._index = (self._index + step) & 0xFFFFFFFF
        return Samples(self._index, values.astype(np.int16))

    def _ascii_line(self) -> bytes:
        rng = self._rng
        kind = str(rng.choice(["huge", "count", "off", "noise", "ok"]))
        self.kinds[kind] += 1
        if kind == "huge":
            return b"%d\r\n" % int(rng.choice([2**31, -(2**31) - 1, 10**30, 2**63]))
        if kind == "count":
            return b"1,2,3\r\n"
        if kind == "off":
            return b"!\r\n"
        if kind == "noise":
            return rng.integers(0, 256, size=int(rng.integers(1, 400)), dtype=np.uint8).tobytes()
        return b"%d\r\n" % int(rng.integers(-(2**15), 2**15))


class Endpoint(Protocol):
    """What :func:`run_boards` needs of the line a board writes to."""

    def wait_reader(self, timeout: float) -> bool:
        """Whether someone reads the line, waiting up to ``timeout`` s."""
        ...

    def write(self, data: bytes, wait_s: float = 0.0) -> bool:
        """Write ``data``; False when it did not all go out within ``wait_s`` s (nobody reading, or the line full)."""
        ...

    def reconnect(self) -> None:
        """Plug the board back in."""
        ...

    def disconnect(self) -> None:
        """Unplug the board."""
        ...

    def close(self) -> None:
        """Release the line."""
        ...


class PtyEndpoint:
    """A pseudo-terminal; the bridge opens :attr:`path` like a serial port.

    Parameters
    ----------
    link : str or Path, optional
        A symlink kept pointing at the current pty, so the path survives
        :meth:`disconnect` / :meth:`reconnect` (a new pty each time), as
        ``/dev/ttyUSB0`` survives a replug.
    """

    def __init__(self, link: str | Path | None = None) -> None:
        self.link = Path(link) if link is not None else None
        self._master = -1
        self.reconnect()

    @property
    def path(self) -> str:
        return str(self.link) if self.link is not None else self._slave_path

    def reconnect(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo or newline translation before the reader sets the port up
        self._slave_path = os.ttyname(slave)
        os.close(slave)
        os.set_blocking(master, False)
        self._master = master
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".new")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self._slave_path)
            tmp.replace(self.link)

    def wait_reader(self, timeout: float) -> bool:
        """Wait until someone opens the pty (the master stops reporting a hang-up)."""
        poller = select.poll()
        poller.register(self._master, select.POLLHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not poller.poll(0):
                return True
            time.sleep(0.01)
        return False

    def write(self, data: bytes, wait_s: float = 0.0) -> bool:
        """Write ``data``; whether all of it was taken.

        ``wait_s``: seconds to wait for room (flow control); 0: what the pty cannot take now is lost,
        as a board's UART loses what nobody reads.
        """
        master = self._master
        return _write_waiting(lambda view: os.write(master, view), master, data, wait_s)

    def disconnect(self) -> None:
        os.close(self._master)
        self._master = -1

    def close(self) -> None:
        if self._master >= 0:
            self.disconnect()
        if self.link is not None:
            self.link.unlink(missing_ok=True)


class TcpEndpoint:
    """A TCP server on ``host:port`` that the bridge reaches as ``socket://host:port``.

    It serves one client at a time (the latest), as a serial-over-network
    adapter does. Use port 0 for a free port; :attr:`url` tells it.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = socket.create_server((host, port))
        self.url = "socket://{}:{}".format(*self._server.getsockname()[:2])
        self._client: socket.socket | None = None
        self._accepting = True
        self._connected = threading.Event()
        threading.Thread(target=self._accept, name=f"accept {self.url}", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # server closed
            if not self._accepting:
                client.close()  # unplugged: refuse
                continue
            client.setblocking(False)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            old, self._client = self._client, client
            if old is not None:
                old.close()
            self._connected.set()

    def wait_reader(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def write(self, data: bytes, wait_s: float = 0.0) -> bool:
        """Send ``data`` to the client; whether all of it was taken (False: none connected).

        ``wait_s``: seconds to wait for room (flow control); 0: what the socket cannot take now is lost.
        """
        client = self._client
        if client is None:
            return False
        try:
            return _write_waiting(client.send, client.fileno(), data, wait_s)
        except (OSError, ValueError):  # unplugged meanwhile
            if self._client is client:
                self._client = None
            return False

    def disconnect(self) -> None:
        self._accepting = False
        self._connected.clear()
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def reconnect(self) -> None:
        self._accepting = True

    def close(self) -> None:
        self.disconnect()
        self._server.close()


class SerialEndpoint:
    """Any other pyserial URL (a real port of a null-modem pair, ``rfc2217://``...)."""

    def __init__(self, url: str, baudrate: int = 115200) -> None:
        self.url = url
        self.baudrate = baudrate
        self._port: serial.SerialBase
        self.reconnect()

    def reconnect(self) -> None:
        self._port = serial.serial_for_url(self.url, baudrate=self.baudrate, write_timeout=0)

    def wait_reader(self, timeout: float) -> bool:
        return True  # a serial line cannot tell whether anyone listens

    def write(self, data: bytes, wait_s: float = 0.0) -> bool:
        """Write ``data``; whether all of it was taken within ``wait_s`` seconds (0: at once)."""
        port = self._port
        if port is None:
            return False
        if port.write_timeout != wait_s:
            port.write_timeout = wait_s
        try:
            return port.write(data) == len(data)
        except serial.SerialTimeoutException:
            return False

    def disconnect(self) -> None:
        self._port.close()

    def close(self) -> None:
        self.disconnect()


def open_endpoint(port: str | None, *, link: str | Path | None = None) -> PtyEndpoint | TcpEndpoint | SerialEndpoint:
    """The endpoint for ``--pty`` (``port=None``) or ``--port URL``.

    ``socket://host:port`` makes the simulator the TCP server the bridge
    connects to; any other URL is opened with :func:`serial.serial_for_url`.
    """
    if port is None:
        return PtyEndpoint(link)
    if port.startswith("socket://"):
        parts = urlsplit(port)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"socket URL needs host and port, got {port!r}")
        return TcpEndpoint(parts.hostname, parts.port)
    return SerialEndpoint(port)


def run_boards(
    boards: list[tuple[VirtualBoard, Endpoint]],
    *,
    speed: float = 1.0,
    disconnect_every: float | None = None,
    downtime: float = 0.5,
    wait_reader: float = 30.0,
    stop: threading.Event | None = None,
    flow_control: bool = False,
) -> None:
    """Send every board's stream through its endpoint, paced in time.

    Parameters
    ----------
    boards : list of (VirtualBoard, endpoint)
    speed : float, default=1.0
        Times real time; each board's frame is due when its last sample
        would have been taken.
    disconnect_every : float, optional
        Unplug each board every this many wall-clock seconds ...
    downtime : float, default=0.5
        ... for this long; its samples meanwhile are lost.
    wait_reader : float, default=30
        Seconds to wait for every endpoint to have a reader before the clock starts.
    stop : threading.Event, optional
        Set it to stop early.
    flow_control : bool, default=False
        A board waits (up to :data:`FLOW_WAIT_S`) for a reader that falls behind, as one with
        RTS/CTS or USB flow control does, and then catches up with its schedule; by default what
        the link cannot take at once is lost (``overruns``), as from a board without it. For tests
        whose subject is not the reader's speed: a slow machine delays the frames, never loses them.
    """
    if speed <= 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    stop = stop or threading.Event()
    for _, endpoint in boards:
        give_up = time.monotonic() + wait_reader
        while not endpoint.wait_reader(min(0.1, wait_reader)):  # in slices, so that stop (SIGTERM) is honoured
            if stop.is_set():
                return
            if time.monotonic() > give_up:
                raise TimeoutError(f"nobody opened {getattr(endpoint, 'path', endpoint)} within {wait_reader} s")
    if stop.wait(OPEN_SETTLE_S):
        return
    start = time.perf_counter()
    queue = []
    for i, (board, _) in enumerate(boards):
        offset = i / len(boards) * board.per_frame / board.fs / speed  # spread boards over a frame period
        queue.append((start + offset + board.per_frame / board.fs / speed, i, board.chunks(), offset))
    heapq.heapify(queue)
    unplug_at = start + disconnect_every if disconnect_every else None
    plug_at = None
    while queue and not stop.is_set():
        due, i, chunks, offset = heapq.heappop(queue)
        now = time.perf_counter()
        if plug_at is not None and now >= plug_at:
            for _, endpoint in boards:
                endpoint.reconnect()
            plug_at = None
        if disconnect_every and unplug_at is not None and now >= unplug_at:
            for board, endpoint in boards:
                endpoint.disconnect()
                board.stats.disconnects += 1
            plug_at, unplug_at = now + downtime, now + disconnect_every
        if due > now and stop.wait(due - now):
            break
        board, endpoint = boards[i]
        item = next(chunks, None)
        if item is None:
            continue
        samples, data = item
        board.stats.late_max = max(board.stats.late_max, time.perf_counter() - due)
        if plug_at is not None:
            board.stats.offline += 1
        elif data and not endpoint.write(data, FLOW_WAIT_S if flow_control else 0.0):
            board.stats.overruns += 1
        next_due = start + offset + (samples + board.per_frame) / board.fs / speed
        heapq.heappush(queue, (next_due, i, chunks, offset))
