"""The bridge's settings, typed and checked once: how beats are judged, the limits, and each board.

:class:`BridgeSettings` holds every setting of a :class:`~ecgedge.firmware_bridge.hub.Hub` or a
:class:`~ecgedge.firmware_bridge.workers.WorkerPool` with its default, :class:`BoardSpec` one
board. Both are frozen, compare by value and pickle, so a worker process gets them as they are.
``ecgedge bridge`` builds them from its options, and its option defaults are these.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from ecgedge.analysis.alarms import AlarmLimits
from ecgedge.analysis.finder import POLARITIES
from ecgedge.analysis.judge import DEFAULT_ADAPT_S
from ecgedge.firmware_bridge.pipeline import BoardError, check_hello
from ecgedge.firmware_bridge.protocol import Hello

FORMATS = ("binary", "ascii")


@dataclass(frozen=True)
class Judging:
    """How each stream's beats are judged: by the bundle's threshold, a calibrated one, or the patient's memory.

    Build it with :meth:`fixed`, :meth:`calibrate` or :meth:`adapt`.

    Attributes
    ----------
    mode : {"fixed", "calibrate", "adapt"}
    amount : float
        Beats to calibrate on (``calibrate``) or seconds to adapt over (``adapt``); 0 for ``fixed``.
    """

    mode: Literal["fixed", "calibrate", "adapt"] = "adapt"
    amount: float = DEFAULT_ADAPT_S

    def __post_init__(self) -> None:
        if self.mode == "fixed":
            if self.amount != 0:
                raise ValueError(f"a fixed threshold takes no amount, got {self.amount}")
        elif self.mode == "calibrate":
            if self.amount != int(self.amount) or self.amount < 2:
                raise ValueError(f"calibrating needs a whole number of beats >= 2, got {self.amount}")
        elif self.mode == "adapt":
            if not (math.isfinite(self.amount) and self.amount > 0):
                raise ValueError(f"adapting needs a finite number of seconds > 0, got {self.amount}")
        else:
            raise ValueError(f"judging mode must be 'fixed', 'calibrate' or 'adapt', got {self.mode!r}")

    @classmethod
    def fixed(cls) -> Judging:
        """Every beat judged by the bundle's own threshold."""
        return cls("fixed", 0)

    @classmethod
    def calibrate(cls, beats: int) -> Judging:
        """Each stream's threshold learnt from its first ``beats`` beats (logged, not flagged)."""
        return cls("calibrate", beats)

    @classmethod
    def adapt(cls, seconds: float = DEFAULT_ADAPT_S) -> Judging:
        """Each stream adapts to its patient over its first ``seconds`` of beats, then follows it."""
        return cls("adapt", seconds)

    @property
    def calibration_beats(self) -> int | None:
        """Beats calibrated on, or None."""
        return int(self.amount) if self.mode == "calibrate" else None

    @property
    def adapt_s(self) -> float | None:
        """Seconds adapted over, or None."""
        return self.amount if self.mode == "adapt" else None


def _positive(**values: float) -> None:
    for name, value in values.items():
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value}")


@dataclass(frozen=True)
class BridgeSettings:
    """Every setting of the bridge, with its default.

    Parameters
    ----------
    judging : Judging, default=Judging.adapt(300)
        How beats are judged (see :class:`Judging`).
    alarm_limits : AlarmLimits, default=AlarmLimits()
        The arrhythmia alarms' limits for every board that has none of its own (:class:`BoardSpec`).
    no_beats_s : float, default=10.0
        Seconds of signal without an R peak that raise ``no-beats``.
    confirm_leads : bool, default=True
        Call asystole only when no lead of the board shows an R peak
        (:class:`~ecgedge.analysis.leads.LeadWatch`); False: the beat lead alone.
    no_data_s : float, default=5.0
        Seconds connected without a valid frame that raise ``no-data``.
    max_lag_s : float, default=5.0
        Overload: blocks queued longer than this are shed.
    beat_deadline_s : float, default=10.0
        Beats cut later than this after their last sample are not scored.
    max_queue : int, default=50000
        Messages the hub's queue holds before the readers wait.
    max_batch : int, default=512
        Largest number of beats scored in one call.
    open_timeout : float, default=2.0
        Seconds to try opening each port at start before giving up.
    """

    judging: Judging = field(default_factory=Judging)
    alarm_limits: AlarmLimits = field(default_factory=AlarmLimits)
    no_beats_s: float = 10.0
    confirm_leads: bool = True
    no_data_s: float = 5.0
    max_lag_s: float = 5.0
    beat_deadline_s: float = 10.0
    max_queue: int = 50_000
    max_batch: int = 512
    open_timeout: float = 2.0

    def __post_init__(self) -> None:
        _positive(
            no_beats_s=self.no_beats_s,
            no_data_s=self.no_data_s,
            max_lag_s=self.max_lag_s,
            beat_deadline_s=self.beat_deadline_s,
        )
        if self.max_queue < 1 or self.max_batch < 1:
            raise ValueError(f"max_queue and max_batch must be >= 1, got {self.max_queue}, {self.max_batch}")
        if not (math.isfinite(self.open_timeout) and self.open_timeout >= 0):
            raise ValueError(f"open_timeout must be a finite number >= 0, got {self.open_timeout}")


@dataclass(frozen=True)
class BoardSpec:
    """One board: where it is, how it speaks, and its stream's name and alarm limits.

    Parameters
    ----------
    url : str
        A pyserial URL or device path (``/dev/ttyUSB0``, ``socket://host:port``, a pty).
    name : str, optional
        Stream name (default: the URL).
    fmt : {"binary", "ascii"}, default="binary"
    fs, gain, baseline : optional
        ASCII only (binary boards say so in their HELLO): sample rate (Hz, required), ADC counts
        per mV, ADC count of 0 mV.
    lead : str, optional
        Which lead of a multi-lead binary board.
    polarity : {"positive", "negative", "auto"}, default="positive"
        R-wave direction of the lead.
    baudrate : int, default=115200
    alarm_limits : AlarmLimits, optional
        This board's alarm limits (a child's rates are not an adult's); default: the bridge's.

    Raises
    ------
    ValueError
        An ASCII board without a usable sample rate or format, a binary board given one, an
        unknown format or polarity.
    """

    url: str
    name: str = ""
    fmt: str = "binary"
    fs: float | None = None
    gain: float = 200.0
    baseline: int = 512
    lead: str | None = None
    polarity: str = "positive"
    baudrate: int = 115200
    alarm_limits: AlarmLimits | None = None

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.url)
        if self.fmt not in FORMATS:
            raise ValueError(f"board {self.url}: format must be one of {FORMATS}, got {self.fmt!r}")
        if self.polarity not in POLARITIES:
            raise ValueError(f"board {self.url}: polarity must be one of {sorted(POLARITIES)}, got {self.polarity!r}")
        if self.fmt == "binary":
            if self.fs is not None:
                raise ValueError(f"binary board {self.url}: the sample rate comes from its HELLO; drop fs={self.fs}")
            return
        if self.fs is None or not self.fs > 0:
            raise ValueError(f"ASCII board {self.url}: the sample rate (--fs) is required, got {self.fs}")
        try:
            check_hello(self.ascii_hello())
        except BoardError as exc:
            raise ValueError(f"ASCII board {self.url}: {exc}") from None

    @property
    def port(self) -> str:
        """The port itself (a device path resolved through symlinks), to refuse one port given twice."""
        return self.url if "://" in self.url else os.path.realpath(self.url)

    def ascii_hello(self) -> Hello:
        """The HELLO an ASCII board would send, from its settings."""
        return Hello(self.fs or 0.0, 0, self.gain, self.baseline, (self.lead or "ECG",))

    def limits(self, settings: BridgeSettings) -> AlarmLimits:
        """This board's alarm limits, or the bridge's."""
        return self.alarm_limits or settings.alarm_limits


def check_unique(boards: Iterable[BoardSpec], new: BoardSpec) -> None:
    """Refuse a board whose name or port one of ``boards`` already has.

    Raises
    ------
    ValueError
        Naming both boards.
    """
    for board in boards:
        if board.name == new.name:
            raise ValueError(f"two boards named {new.name!r}; give each a distinct name")
        if board.port == new.port:
            raise ValueError(
                f"port {new.url} is given twice (boards {board.name!r} and {new.name!r}); one port carries one board"
            )
