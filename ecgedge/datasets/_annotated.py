"""Annotated beats of a whole WFDB database, with their AAMI class, record, position and rhythm."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from ecgedge.datasets._wfdb import annotated_beats, load_wfdb_record

#: ANSI/AAMI EC57 beat classes and the MIT-BIH annotation symbols each one gathers.
AAMI_CLASSES = {"N": "NLRej", "SVEB": "AaJS", "VEB": "VE", "F": "F", "Q": "/fQ"}
_CLASS_OF = {symbol: name for name, symbols in AAMI_CLASSES.items() for symbol in symbols}


def aami_class(symbols) -> np.ndarray:
    """The AAMI EC57 class (``"N"``, ``"SVEB"``, ``"VEB"``, ``"F"``, ``"Q"``) of each beat symbol.

    Beat symbols outside the five classes (``B``, ``r``, ``n``, ``?``) count
    as ``"Q"`` (unclassifiable).

    Parameters
    ----------
    symbols : array-like of str

    Returns
    -------
    ndarray of str, same shape
    """
    symbols = np.asarray(symbols)
    return np.array([_CLASS_OF.get(s, "Q") for s in symbols.ravel()], dtype="<U4").reshape(symbols.shape)


@dataclass(frozen=True)
class AnnotatedBeats:
    """Beats of many records, one row each, as the bridge cuts them.

    Attributes
    ----------
    X : ndarray of shape (n_beats, beat_format.length), float32
        Model inputs.
    record : ndarray of shape (n_beats,), str
        Record name of each beat.
    sample : ndarray of shape (n_beats,), int64
        Annotated R position (sample index in its record).
    time : ndarray of shape (n_beats,), float64
        That position in seconds from the record's start.
    symbol : ndarray of shape (n_beats,), str
        Annotation symbol.
    aami : ndarray of shape (n_beats,), str
        AAMI EC57 class (:func:`aami_class`).
    rr_before, rr_after : ndarray of shape (n_beats,), float64
        RR intervals (s) to the previous and next annotated beat (NaN for
        the record's last beat).
    """

    X: np.ndarray
    record: np.ndarray
    sample: np.ndarray
    time: np.ndarray
    symbol: np.ndarray
    aami: np.ndarray
    rr_before: np.ndarray
    rr_after: np.ndarray

    def __len__(self) -> int:
        return len(self.sample)

    def __getitem__(self, rows) -> AnnotatedBeats:
        """The beats at ``rows`` (a mask, indices or a slice)."""
        return AnnotatedBeats(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    @property
    def records(self) -> list[str]:
        """Record names in order of first appearance."""
        return list(dict.fromkeys(self.record.tolist()))


def record_paths(directory: str | Path, records=None) -> list[Path]:
    """Paths (without extension) of the WFDB records in ``directory``, or of the named ones.

    Raises
    ------
    FileNotFoundError
        When the directory holds no header, or a named record has none.
    """
    directory = Path(directory)
    if records is None:
        paths = sorted(p.with_suffix("") for p in directory.glob("*.hea"))
        if not paths:
            raise FileNotFoundError(f"no WFDB records (.hea files) in {directory}")
        return paths
    paths = [directory / str(name) for name in records]
    missing = [p.name for p in paths if not p.with_suffix(".hea").is_file()]
    if missing:
        raise FileNotFoundError(f"no WFDB header for record(s) {', '.join(missing)} in {directory}")
    return paths


def load_annotated_beats(
    directory: str | Path, beat_format, *, records=None, lead: str | int = "MLII", flip: bool = False
) -> AnnotatedBeats:
    """Cut every annotated beat of the records in a WFDB directory, as the bridge cuts a stream.

    Each record's lead is band-passed causally in the bridge's ECG band and
    cut at its beat annotations
    (:func:`ecgedge.datasets.cut_annotated_beats`); the first beat of a record
    only sizes the next window. Records are read one at a time and beats kept
    as float32, so the whole MIT-BIH database takes tens of megabytes.

    Parameters
    ----------
    directory : str or Path
        A directory of WFDB records with reference annotations (``.atr``),
        such as PhysioNet's ``mitdb``.
    beat_format : BeatFormat
        How beats are cut.
    records : iterable of str, optional
        Record names to read (default: every record in the directory).
    lead : str or int, default="MLII"
        Lead name or index.
    flip : bool, default=False
        Negate the model inputs (R waves pointing the other way than the model's).

    Returns
    -------
    AnnotatedBeats

    Raises
    ------
    FileNotFoundError
        When the directory or a named record is missing.
    ValueError
        When a record lacks the lead (the message names the record).
    """
    parts = []
    for path in record_paths(directory, records):
        try:
            record = load_wfdb_record(path, lead=lead)
        except ValueError as err:
            raise ValueError(f"record {path.name}: {err}") from err
        beats = annotated_beats(record, beat_format, flip=flip)
        if not beats:
            continue
        samples = record.beat_samples
        position = np.searchsorted(samples, [b.sample for b in beats])
        rr = np.diff(samples) / record.fs
        symbols = record.beat_symbols[position]
        parts.append(AnnotatedBeats(
            X=np.array([b.model_input for b in beats], dtype=np.float32),
            record=np.full(len(beats), path.name),
            sample=samples[position].astype(np.int64),
            time=samples[position] / record.fs,
            symbol=symbols,
            aami=aami_class(symbols),
            rr_before=rr[position - 1],
            rr_after=np.append(rr, np.nan)[position],
        ))
    if not parts:
        raise ValueError(f"no annotated beats in {directory}")
    return AnnotatedBeats(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(AnnotatedBeats)})
