"""The binary wire format between an ECG board and the bridge (see ``docs/protocol.md``).

A frame on the wire is ``COBS(type | seq | payload | crc) 0x00``:

- ``type`` (u8): :data:`HELLO`, :data:`SAMPLES` or :data:`STATUS`;
- ``seq`` (u16): frame counter, +1 per frame, wrapping at 65536;
- ``payload``: the message fields (below);
- ``crc`` (u16): CRC-16-CCITT (poly 0x1021, init 0xFFFF) of ``type | seq | payload``,
  computed with :func:`binascii.crc_hqx`.

All multi-byte fields are little-endian. COBS comes from the ``cobs`` package;
the C firmware (``firmware/src/ecgframe.c``) implements the same format and
both sides are checked against ``firmware/tests/vectors.txt``.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass

import numpy as np
from cobs import cobs

HELLO = 0x01
SAMPLES = 0x02
STATUS = 0x03

PROTOCOL_VERSION = 1
DELIMITER = b"\x00"
#: Largest decoded frame (header + payload + CRC) either side accepts.
MAX_FRAME = 256
#: Largest COBS-encoded frame, delimiter excluded.
MAX_ENCODED = MAX_FRAME + MAX_FRAME // 254 + 1

LEAD_OFF_PLUS = 0x01
LEAD_OFF_MINUS = 0x02
ADC_OVERRUN = 0x04

_HEADER = struct.Struct("<BH")
_CRC = struct.Struct("<H")
_HELLO = struct.Struct("<BBBBIBBfi")
_SAMPLES = struct.Struct("<IBB")
_STATUS = struct.Struct("<IB")


class FrameError(ValueError):
    """A frame that cannot be decoded; ``reason`` says why (``"cobs"``, ``"crc"``, ...)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class Hello:
    """What a board says about itself, sent at start-up and about once a second.

    Attributes
    ----------
    fs : float
        Sample rate in Hz (sent in millihertz).
    adc_bits : int
        ADC resolution in bits.
    gain : float
        ADC counts per millivolt at the electrodes.
    baseline : int
        ADC count of 0 mV.
    leads : tuple of str
        Lead names, in the order samples are interleaved.
    firmware : tuple of int
        Firmware version ``(major, minor, patch)``.
    protocol : int
        Protocol version (:data:`PROTOCOL_VERSION`).
    """

    fs: float
    adc_bits: int
    gain: float
    baseline: int
    leads: tuple[str, ...]
    firmware: tuple[int, int, int] = (0, 0, 0)
    protocol: int = PROTOCOL_VERSION

    def payload(self) -> bytes:
        names = ",".join(self.leads).encode("ascii")
        return (
            _HELLO.pack(
                self.protocol,
                *self.firmware,
                round(self.fs * 1000),
                self.adc_bits,
                len(self.leads),
                self.gain,
                self.baseline,
            )
            + names
        )

    @classmethod
    def parse(cls, payload: bytes) -> Hello:
        if len(payload) < _HELLO.size:
            raise FrameError("length", f"HELLO payload of {len(payload)} bytes, needs >= {_HELLO.size}")
        proto, major, minor, patch, fs_mhz, bits, n_leads, gain, baseline = _HELLO.unpack_from(payload)
        try:
            leads = tuple(payload[_HELLO.size :].decode("ascii").split(","))
        except UnicodeDecodeError as exc:
            raise FrameError("field", f"HELLO lead names are not ASCII: {exc}") from None
        if len(leads) != n_leads or fs_mhz == 0:
            raise FrameError("field", f"HELLO says {n_leads} leads, names {leads}, fs {fs_mhz} mHz")
        return cls(fs_mhz / 1000, bits, gain, baseline, leads, (major, minor, patch), proto)


@dataclass(frozen=True)
class Samples:
    """A block of consecutive samples.

    Attributes
    ----------
    first : int
        Board sample index of the first sample (u32, wraps after 2**32 samples).
    values : ndarray of shape (n_samples, n_leads), int16
        ADC counts.
    """

    first: int
    values: np.ndarray

    def payload(self) -> bytes:
        values = np.asarray(self.values, dtype="<i2")
        if values.ndim != 2 or not 0 <= values.shape[0] <= 255 or not 0 < values.shape[1] <= 255:
            raise ValueError(f"SAMPLES values must have shape (0..255, 1..255), got {values.shape}")
        return _SAMPLES.pack(self.first, values.shape[1], values.shape[0]) + values.tobytes()

    @classmethod
    def parse(cls, payload: bytes) -> Samples:
        if len(payload) < _SAMPLES.size:
            raise FrameError("length", f"SAMPLES payload of {len(payload)} bytes, needs >= {_SAMPLES.size}")
        first, n_leads, count = _SAMPLES.unpack_from(payload)
        expected = _SAMPLES.size + 2 * n_leads * count
        if len(payload) != expected or n_leads == 0:
            raise FrameError("length", f"SAMPLES of {count}x{n_leads} needs {expected} bytes, got {len(payload)}")
        values = np.frombuffer(payload, dtype="<i2", offset=_SAMPLES.size).reshape(count, n_leads)
        return cls(first, values)


@dataclass(frozen=True)
class Status:
    """Electrode and ADC state at a sample index.

    Attributes
    ----------
    index : int
        Board sample index the status applies from.
    flags : int
        Bit set of :data:`LEAD_OFF_PLUS`, :data:`LEAD_OFF_MINUS`, :data:`ADC_OVERRUN`.
    """

    index: int
    flags: int

    @property
    def lead_off(self) -> bool:
        return bool(self.flags & (LEAD_OFF_PLUS | LEAD_OFF_MINUS))

    def payload(self) -> bytes:
        return _STATUS.pack(self.index, self.flags)

    @classmethod
    def parse(cls, payload: bytes) -> Status:
        if len(payload) != _STATUS.size:
            raise FrameError("length", f"STATUS payload of {len(payload)} bytes, needs {_STATUS.size}")
        return cls(*_STATUS.unpack(payload))


Message = Hello | Samples | Status
_TYPES: dict[int, type[Hello] | type[Samples] | type[Status]] = {HELLO: Hello, SAMPLES: Samples, STATUS: Status}
_TYPE_OF: dict[type, int] = {cls: code for code, cls in _TYPES.items()}


def encode_frame(message: Message, seq: int) -> bytes:
    """Encode one message as a delimited frame, ready to write to the wire.

    Parameters
    ----------
    message : Hello, Samples or Status
    seq : int
        Frame counter; only its low 16 bits are sent.

    Returns
    -------
    bytes
        ``COBS(type | seq | payload | crc) 0x00``.
    """
    body = _HEADER.pack(_TYPE_OF[type(message)], seq & 0xFFFF) + message.payload()
    if len(body) + _CRC.size > MAX_FRAME:
        raise ValueError(f"frame of {len(body) + _CRC.size} bytes exceeds MAX_FRAME={MAX_FRAME}")
    return cobs.encode(body + _CRC.pack(binascii.crc_hqx(body, 0xFFFF))) + DELIMITER


def decode_frame(encoded: bytes) -> tuple[int, Message]:
    """Decode one frame without its delimiter.

    Parameters
    ----------
    encoded : bytes
        The COBS bytes between two delimiters.

    Returns
    -------
    seq : int
    message : Hello, Samples or Status

    Raises
    ------
    FrameError
        With ``reason`` ``"cobs"``, ``"crc"``, ``"length"``, ``"type"`` or ``"field"``.
    """
    if len(encoded) > MAX_ENCODED:
        raise FrameError("length", f"{len(encoded)} encoded bytes exceed {MAX_ENCODED}")
    try:
        raw = cobs.decode(encoded)
    except cobs.DecodeError as exc:
        raise FrameError("cobs", str(exc)) from None
    if len(raw) < _HEADER.size + _CRC.size:
        raise FrameError("length", f"frame of {len(raw)} bytes is shorter than header + CRC")
    body, (crc,) = raw[:-2], _CRC.unpack(raw[-2:])
    if binascii.crc_hqx(body, 0xFFFF) != crc:
        raise FrameError("crc", f"CRC mismatch on a {len(raw)}-byte frame")
    kind, seq = _HEADER.unpack_from(body)
    if kind not in _TYPES:
        raise FrameError("type", f"unknown message type 0x{kind:02x}")
    return seq, _TYPES[kind].parse(body[_HEADER.size :])
