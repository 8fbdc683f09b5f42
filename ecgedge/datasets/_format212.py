"""Reading the ADC counts of a WFDB record stored in format 212 (MIT-BIH's), with numpy alone.

The board simulator plays a record on the lean bedside install, which has no :mod:`wfdb`; every
MIT-BIH record, the bundled record 100 among them, is one header and one signal file in format
212: pairs of 12-bit two's-complement samples packed in three bytes, the signals interleaved
(PhysioNet's WFDB specification, ``signal(5)``). Anything else is :mod:`wfdb`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


class NotFormat212(ValueError):
    """The record is not one signal file in format 212: read it with :mod:`wfdb`."""


@dataclass(frozen=True)
class Format212Lead:
    """One lead of a format-212 record, as ADC counts.

    Attributes
    ----------
    adc : ndarray of shape (n_samples,), int32
    fs : float
    gain : float
        ADC counts per mV.
    baseline : int
        ADC count of 0 mV.
    lead : str
    leads : tuple of str
        Every lead of the record, in its order.
    """

    adc: np.ndarray
    fs: float
    gain: float
    baseline: int
    lead: str
    leads: tuple[str, ...]


def read_format212(path: str | Path, lead: str | int = 0) -> Format212Lead:
    """One lead of a single-file format-212 WFDB record.

    Parameters
    ----------
    path : str or Path
        The record without extension (``.../mitdb/100``).
    lead : str or int, default=0
        Lead name or index.

    Raises
    ------
    NotFormat212
        When the record is not one format-212 file.
    ValueError
        When it lacks the lead, or its file is shorter than its header says.

    Examples
    --------
    >>> from ecgedge.datasets import default_record_path
    >>> record = read_format212(default_record_path(), "MLII")
    >>> record.fs, record.gain, record.baseline, record.adc[:3].tolist()
    (360.0, 200.0, 1024, [995, 995, 995])
    """
    path = Path(path)
    lines = [
        line.split()
        for line in path.with_suffix(".hea").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    n_signals, fs = int(lines[0][1]), float(lines[0][2].split("/")[0])
    n_samples = int(lines[0][3]) if len(lines[0]) > 3 else None
    signals = lines[1 : 1 + n_signals]
    if len({s[0] for s in signals}) != 1 or any(s[1] != "212" for s in signals):
        raise NotFormat212(f"{path.name}: not a single-file format-212 record ({[s[1] for s in signals]})")
    names = [" ".join(s[8:]) if len(s) > 8 else f"signal {i}" for i, s in enumerate(signals)]
    index = names.index(lead) if isinstance(lead, str) and lead in names else lead
    if not isinstance(index, int) or not 0 <= index < n_signals:
        raise ValueError(f"lead {lead!r} not in record {path.name}; it has {names}")
    raw = np.fromfile(path.with_name(signals[0][0]), dtype=np.uint8)
    raw = raw[: raw.size // 3 * 3].reshape(-1, 3).astype(np.int32)
    pairs = np.empty((raw.shape[0], 2), dtype=np.int32)
    pairs[:, 0] = raw[:, 0] | ((raw[:, 1] & 0x0F) << 8)
    pairs[:, 1] = raw[:, 2] | ((raw[:, 1] & 0xF0) << 4)
    values = np.where(pairs >= 2048, pairs - 4096, pairs).ravel()
    frames = values[: values.size // n_signals * n_signals].reshape(-1, n_signals)
    if n_samples is not None:
        if frames.shape[0] < n_samples:
            raise ValueError(f"{path.name}: {frames.shape[0]} samples in the file, the header says {n_samples}")
        frames = frames[:n_samples]
    gain_field = signals[index][2]
    gain = float(gain_field.split("(")[0].split("/")[0])
    baseline = int(gain_field.split("(")[1].split(")")[0]) if "(" in gain_field else int(signals[index][4])
    return Format212Lead(frames[:, index].copy(), fs, gain or 200.0, baseline, names[index], tuple(names))
