"""Annotated beats of a whole WFDB database, with their AAMI class, record, position and rhythm."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from ecgedge.analysis.atrial import ATRIAL_POINTS
from ecgedge.analysis.ec57 import MATCH_S, aami_class, nearest_reference
from ecgedge.datasets._wfdb import annotated_beats, load_wfdb_record


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
        Annotation symbol; ``"-"`` for a beat the bridge found where the
        reference has none (a false detection).
    aami : ndarray of shape (n_beats,), str
        AAMI EC57 class (:func:`~ecgedge.analysis.ec57.aami_class`); ``"-"`` for a false detection.
    rr_before, rr_after : ndarray of shape (n_beats,), float64
        RR intervals (s) to the previous and next beat (NaN for the record's
        last beat).
    own_length : ndarray of shape (n_beats,), int64
        Samples of each model input before the next beat's onset
        (:class:`ecgedge.analysis.beats.Beat`).
    noise : ndarray of shape (n_beats,), float64
        Each beat's noise level (:func:`ecgedge.analysis.noise.beat_noise`).
    atrial : ndarray of shape (n_beats, ATRIAL_POINTS), float32
        Each beat's atrial segment (:func:`ecgedge.analysis.atrial.atrial_segment`).
    rhythm : ndarray of shape (n_beats,), str
        The reference rhythm annotated at each beat (``"(N"``, ``"(AFIB"``, ...; ``""`` where
        the record has none).
    """

    X: np.ndarray
    record: np.ndarray
    sample: np.ndarray
    time: np.ndarray
    symbol: np.ndarray
    aami: np.ndarray
    rr_before: np.ndarray
    rr_after: np.ndarray
    own_length: np.ndarray
    noise: np.ndarray
    atrial: np.ndarray
    rhythm: np.ndarray

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
    directory: str | Path,
    beat_format,
    *,
    records=None,
    lead: str | int = "MLII",
    flip: bool = False,
    positions: str = "annotations",
) -> AnnotatedBeats:
    """Cut every beat of the records in a WFDB directory, as the bridge cuts a stream.

    Each record's lead is band-passed causally in the bridge's ECG band. With
    ``positions="annotations"`` it is cut at its beat annotations
    (:func:`ecgedge.datasets.cut_annotated_beats`; the first beat of a record
    only sizes the next window). With ``positions="bridge"`` the record runs
    through the bridge's own offline path (streaming R peaks included,
    :func:`ecgedge.analysis.offline.cut_stream`) and each beat it finds
    takes the class of the reference beat within 150 ms (ANSI/AAMI EC57,
    :func:`ecgedge.analysis.ec57.nearest_reference`);
    a beat with none is a false detection, class ``"-"``. Records are read one
    at a time and beats kept as float32, so the whole MIT-BIH database takes
    tens of megabytes.

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
    positions : {"annotations", "bridge"}, default="annotations"
        Where beats are cut: at the reference annotations, or where the
        bridge finds them.

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
    if positions not in ("annotations", "bridge"):
        raise ValueError(f"positions must be 'annotations' or 'bridge', got {positions!r}")
    parts = []
    for path in record_paths(directory, records):
        try:
            record = load_wfdb_record(path, lead=lead)
        except ValueError as err:
            raise ValueError(f"record {path.name}: {err}") from err
        beats = (_bridge_beats if positions == "bridge" else _at_annotations)(record, path.name, beat_format, flip)
        if len(beats):
            parts.append(beats)
    if not parts:
        raise ValueError(f"no annotated beats in {directory}")
    return AnnotatedBeats(
        **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(AnnotatedBeats)}
    )


def _at_annotations(record, name: str, beat_format, flip: bool) -> AnnotatedBeats:
    """A record's beats cut at its annotations."""
    beats = annotated_beats(record, beat_format, flip=flip)
    samples = record.beat_samples
    position = np.searchsorted(samples, [b.sample for b in beats]).astype(np.int64)
    rr = np.diff(samples) / record.fs
    return _beats(
        name,
        beats,
        samples[position],
        record.beat_symbols[position],
        record,
        rr_before=rr[position - 1],
        rr_after=np.append(rr, np.nan)[position],
    )


def _bridge_beats(record, name: str, beat_format, flip: bool) -> AnnotatedBeats:
    """A record's beats as the bridge finds and cuts them, each with its matched reference symbol."""
    from ecgedge.analysis.offline import cut_stream

    beats = cut_stream(record.signal, record.fs, beat_format, polarity="negative" if flip else "positive", name=name)
    samples = np.array([b.sample for b in beats], dtype=np.int64)
    symbols = np.full(len(samples), "-", dtype="<U1")
    nearest = nearest_reference(samples, record.beat_samples, round(MATCH_S * record.fs))
    symbols[nearest >= 0] = record.beat_symbols[nearest[nearest >= 0]]
    rr = np.array([b.rr for b in beats], dtype=float)
    return _beats(name, beats, samples, symbols, record, rr_before=rr, rr_after=np.append(rr[1:], np.nan))


def _beats(name, beats, samples, symbols, record, *, rr_before, rr_after) -> AnnotatedBeats:
    aami = aami_class(symbols)
    aami[symbols == "-"] = "-"
    return AnnotatedBeats(
        X=np.array([b.model_input for b in beats], dtype=np.float32).reshape(len(beats), -1),
        record=np.full(len(beats), name),
        sample=np.asarray(samples, dtype=np.int64),
        time=np.asarray(samples) / record.fs,
        symbol=np.asarray(symbols),
        aami=aami,
        rr_before=np.asarray(rr_before, dtype=float),
        rr_after=np.asarray(rr_after, dtype=float),
        own_length=np.array([b.own_length for b in beats], dtype=np.int64),
        noise=np.array([b.noise for b in beats], dtype=float),
        atrial=np.array([b.atrial for b in beats], dtype=np.float32).reshape(len(beats), ATRIAL_POINTS),
        rhythm=record.rhythm_at(samples).astype("<U8"),
    )
