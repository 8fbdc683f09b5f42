"""Reading PhysioNet WFDB records (MIT-BIH and friends) with :mod:`wfdb`."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np

# Annotation symbols that mark a beat (PhysioNet's list, as in wfdb.processing).
BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")


@dataclass(frozen=True)
class WfdbRecord:
    """One lead of a WFDB record with its reference beats.

    Attributes
    ----------
    signal : ndarray of shape (n_samples,)
        The lead in physical units (mV), float64.
    fs : float
        Sample rate in Hz.
    lead : str
        Name of the lead.
    beat_samples : ndarray of shape (n_beats,)
        Sample index of every reference beat annotation (empty when the record
        has no annotations).
    beat_symbols : ndarray of shape (n_beats,)
        The annotation symbol of each beat (``"N"``, ``"V"``, ...).
    adc_gain : float
        ADC units per mV.
    baseline : int
        ADC value of 0 mV.
    rhythm_samples : ndarray of shape (n_changes,)
        Where the reference rhythm changes (rhythm annotations, ``+``).
    rhythms : ndarray of shape (n_changes,), str
        The rhythm entered there, as annotated (``"(N"``, ``"(AFIB"``, ``"(AFL"``, ...).
    adc_bits : int, default=0
        The ADC's resolution (bits) from the header; 0 when unknown.
    """

    signal: np.ndarray
    fs: float
    lead: str
    beat_samples: np.ndarray
    beat_symbols: np.ndarray
    adc_gain: float
    baseline: int
    rhythm_samples: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    rhythms: np.ndarray = field(default_factory=lambda: np.empty(0, dtype="<U8"))
    adc_bits: int = 0

    def rhythm_at(self, samples) -> np.ndarray:
        """The annotated rhythm at each sample (``""`` before the first rhythm annotation)."""
        index = np.searchsorted(self.rhythm_samples, np.asarray(samples), side="right") - 1
        return np.where(index >= 0, np.append(self.rhythms, "")[index], "")

    def to_adc(self) -> np.ndarray:
        """Return the lead as integer ADC counts, as a board would send them."""
        return np.round(self.signal * self.adc_gain + self.baseline).astype(np.int32)


def default_record_path() -> Path:
    """Path (without extension) of the bundled MIT-BIH record 100."""
    return Path(str(resources.files("ecgedge.datasets") / "data" / "mitdb" / "100"))


def load_wfdb_record(
    path: str | Path | None = None, *, lead: str | int = 0, annotator: str | None = "atr"
) -> WfdbRecord:
    """Read one lead of a WFDB record and its beat annotations.

    Parameters
    ----------
    path : str or Path, optional
        Record path without extension; defaults to the bundled MIT-BIH record 100
        (Moody & Mark 2001, PhysioNet).
    lead : str or int, default=0
        Lead name (``"MLII"``) or index.
    annotator : str or None, default="atr"
        Annotation file extension; ``None`` or a missing file gives no beats.

    Returns
    -------
    WfdbRecord
    """
    import wfdb

    path = Path(path) if path is not None else default_record_path()
    path = path.with_suffix("") if path.suffix in {".hea", ".dat", ".atr"} else path
    if not path.with_suffix(".hea").exists():
        raise FileNotFoundError(f"no WFDB header at {path.with_suffix('.hea')}")
    record = wfdb.rdrecord(str(path))
    if isinstance(lead, str):
        if lead not in record.sig_name:
            raise ValueError(f"lead {lead!r} not in record; it has {record.sig_name}")
        channel = record.sig_name.index(lead)
    else:
        if not 0 <= lead < record.n_sig:
            raise ValueError(f"lead index {lead} out of range 0..{record.n_sig - 1}")
        channel = lead
    annotations = read_annotations(path, annotator) if annotator else None
    if annotations is None:
        annotations = Annotations(np.empty(0, np.int64), np.empty(0, "<U1"), np.empty(0, np.int64), np.empty(0, "<U8"))
    return WfdbRecord(
        signal=np.asarray(record.p_signal[:, channel], dtype=np.float64),
        fs=float(record.fs),
        lead=record.sig_name[channel],
        beat_samples=annotations.beat_samples,
        beat_symbols=annotations.beat_symbols,
        adc_gain=float(record.adc_gain[channel]),
        baseline=int(record.baseline[channel]),
        rhythm_samples=annotations.rhythm_samples,
        rhythms=annotations.rhythms,
        adc_bits=int(record.adc_res[channel] or 0),
    )


class Annotations(NamedTuple):
    """A WFDB record's reference annotations: its beats and its rhythm changes."""

    beat_samples: np.ndarray
    beat_symbols: np.ndarray
    rhythm_samples: np.ndarray
    rhythms: np.ndarray


def read_annotations(path: str | Path, annotator: str = "atr") -> Annotations | None:
    """The reference beats (beat symbols only) and rhythm changes (``+`` with a ``(`` note) of a record.

    Parameters
    ----------
    path : str or Path
        Record path without extension.
    annotator : str, default="atr"

    Returns
    -------
    Annotations or None
        None when the record has no such annotation file.
    """
    import wfdb

    path = Path(path)
    if not path.with_suffix(f".{annotator}").exists():
        return None
    ann = wfdb.rdann(str(path), annotator)
    symbols, samples = np.asarray(ann.symbol, dtype=str), np.asarray(ann.sample, dtype=np.int64)
    is_beat = np.isin(symbols, sorted(BEAT_SYMBOLS))
    notes = np.array([(note or "").strip("\x00 ") for note in ann.aux_note], dtype=str)
    is_rhythm = (symbols == "+") & np.char.startswith(notes, "(")
    return Annotations(samples[is_beat], symbols[is_beat], samples[is_rhythm], notes[is_rhythm])


def load_other_leads(path: str | Path, lead: str) -> list[np.ndarray]:
    """The leads of a WFDB record other than ``lead`` (mV), in the record's order: what a board sends beside it.

    Examples
    --------
    >>> [signal.shape for signal in load_other_leads(default_record_path(), "MLII")]
    [(650000,)]
    """
    import wfdb

    path = Path(path)
    path = path.with_suffix("") if path.suffix in {".hea", ".dat", ".atr"} else path
    names = wfdb.rdheader(str(path)).sig_name
    return [load_wfdb_record(path, lead=i, annotator=None).signal for i, name in enumerate(names) if name != lead]


def cut_annotated_beats(
    record: WfdbRecord | str | Path, beat_format, *, lead: str | int = 0, flip: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """A record's annotated beats as model inputs, cut the way the bridge cuts a live stream.

    The lead is band-passed causally in the bridge's ECG band and cut with
    :func:`ecgedge.analysis.beats.cut_recording` at every annotation
    (the first one only sizes the next window).

    Parameters
    ----------
    record : WfdbRecord or str or Path
        A record with beat annotations, or the path of one (read with
        :func:`load_wfdb_record`).
    beat_format : BeatFormat
        Window and length of the beats.
    lead : str or int, default=0
        With a path: the lead to read.
    flip : bool, default=False
        Negate the beats (R waves pointing the other way than the model's).

    Returns
    -------
    X : ndarray of shape (n_beats, beat_format.length), float32
    symbols : ndarray of shape (n_beats,)
        Each beat's annotation symbol (``"N"``, ``"A"``, ``"V"``, ...).
    """
    if isinstance(record, (str, Path)):
        record = load_wfdb_record(record, lead=lead)
    if not isinstance(record, WfdbRecord):
        raise TypeError(f"record must be a WfdbRecord or the path of one, got {type(record).__name__}")
    beats = annotated_beats(record, beat_format, flip=flip)
    symbol_at = dict(zip(record.beat_samples.tolist(), record.beat_symbols, strict=True))
    return np.array([b.model_input for b in beats]), np.array([symbol_at[b.sample] for b in beats])


def annotated_beats(record: WfdbRecord, beat_format, *, flip: bool = False) -> list:
    """A record's annotated beats as :class:`~ecgedge.analysis.beats.Beat` objects.

    The lead is band-passed causally in the bridge's ECG band and cut with
    :func:`ecgedge.analysis.beats.cut_recording` at every annotation
    (the first one only sizes the next window).
    """
    from scipy.signal import sosfilt

    from ecgedge.analysis.beats import cut_recording
    from ecgedge.analysis.filters import ECG_BAND, bandpass_sos

    signal = sosfilt(bandpass_sos(*ECG_BAND, record.fs), record.signal)
    return cut_recording(signal, record.beat_samples, record.fs, beat_format, flip=flip)
