"""How a beat is cut from a continuous ECG, so that streams match training data.

ECG5000 beats (UCR) are whole heartbeats cut around the R peak and resampled
to a fixed length: the window scales with the RR interval. Across patients a
window fixed in time is better, since it keeps the QRS width that marks a
ventricular beat. The bridge cuts live beats the way the format says, and a
deployment bundle records the format, so the device never guesses.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

#: Units of a window's ``before_r`` / ``after_r``: fractions of the RR interval, or seconds.
WINDOW_UNITS = ("rr", "s")


@dataclass(frozen=True)
class BeatFormat:
    """Window and length of one beat.

    Parameters
    ----------
    length : int
        Samples per beat after resampling (the model's ``n_features_in_``).
    before_r : float
        Window start before the R peak, in ``window_unit``.
    after_r : float
        Window end after the R peak, in ``window_unit``.
    source_fs : float
        Sample rate (Hz) of the recordings the training beats were cut from.
    r_polarity : {-1, 1}
        Sign of the R wave in the training beats. ECG5000's lead shows the
        QRS as a sharp negative spike, so -1; a stream whose R waves point up
        (MIT-BIH MLII, most limb leads) is negated before scoring. Per-beat
        z-normalisation in the model removes offset and scale, not sign.
    window_unit : {"rr", "s"}, default="rr"
        ``"rr"``: ``before_r`` and ``after_r`` are fractions of the RR
        interval before the beat (ECG5000's whole-heartbeat windows);
        ``"s"``: seconds, a window fixed in time whatever the heart rate.

    Notes
    -----
    ``before_r=0.025`` puts the R peak at sample 0.025 * 139 = 3.5 of 140:
    in ECG5000's normal training beats the deepest sample of the QRS lies at
    3.44 on average (mostly 3 to 5). ``after_r=0.97`` makes the window about
    one RR interval, as in ECG5000. On MIT-BIH record 100 the earlier 0.02
    (sample 2.8) raised per-patient false alarms from 3.4 % to 6.0 %
    (``benchmarks/alignment.py``).
    """

    length: int
    before_r: float = 0.025
    after_r: float = 0.97
    source_fs: float = 250.0
    r_polarity: int = -1
    window_unit: str = "rr"

    def __post_init__(self) -> None:
        if self.r_polarity not in (-1, 1):
            raise ValueError(f"r_polarity must be -1 or 1, got {self.r_polarity!r}")
        if self.window_unit not in WINDOW_UNITS:
            raise ValueError(f"window_unit must be one of {WINDOW_UNITS}, got {self.window_unit!r}")

    def window(self, rr: float, fs: float) -> tuple[float, float]:
        """Samples the window spans before and after the R peak.

        Parameters
        ----------
        rr : float
            The RR interval before the beat, in samples.
        fs : float
            Sample rate (Hz) of the signal being cut.

        Returns
        -------
        before, after : float
            Samples before and after the R peak.
        """
        scale = rr if self.window_unit == "rr" else fs
        return self.before_r * scale, self.after_r * scale

    def columns(self, before_s: float, after_s: float) -> tuple[int, int] | None:
        """The model-input columns that span ``before_s`` before the R peak to ``after_s`` after it.

        Parameters
        ----------
        before_s, after_s : float
            Seconds before and after R.

        Returns
        -------
        (start, stop) or None
            Column indices (``stop`` exclusive), within the window; None for a window in RR
            intervals, whose columns mean another time at every heart rate.

        Examples
        --------
        >>> BeatFormat(length=59, before_r=0.25, after_r=0.40, window_unit="s").columns(0.1, 0.14)
        (13, 36)
        """
        if self.window_unit != "s":
            return None
        step = (self.before_r + self.after_r) / (self.length - 1)
        r = self.before_r / step
        return max(0, math.floor(r - before_s / step)), min(self.length, math.ceil(r + after_s / step) + 1)

    def to_dict(self) -> dict:
        """Plain-JSON form, as stored in ``bundle.json`` under ``"beat"``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> BeatFormat:
        """Inverse of :meth:`to_dict`."""
        keys = ("length", "before_r", "after_r", "source_fs", "r_polarity", "window_unit")
        return cls(**{k: data[k] for k in keys if k in data})
