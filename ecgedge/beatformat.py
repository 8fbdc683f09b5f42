"""How a beat is cut from a continuous ECG, so that streams match training data.

ECG5000 beats (UCR) are whole heartbeats cut around the R peak and resampled
to a fixed length. The bridge cuts live beats the same way, and a deployment
bundle records the format, so the device never guesses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class BeatFormat:
    """Window and length of one beat.

    Parameters
    ----------
    length : int
        Samples per beat after resampling (the model's ``n_features_in_``).
    before_r : float
        Window start before the R peak, as a fraction of the RR interval.
    after_r : float
        Window end after the R peak, as a fraction of the RR interval.
    source_fs : float
        Sample rate (Hz) of the recordings the training beats were cut from.
    """

    length: int
    before_r: float = 0.03
    after_r: float = 0.97
    source_fs: float = 250.0

    def to_dict(self) -> dict:
        """Plain-JSON form, as stored in ``bundle.json`` under ``"beat"``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "BeatFormat":
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: data[k] for k in ("length", "before_r", "after_r", "source_fs") if k in data})
