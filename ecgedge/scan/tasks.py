"""What a Dask worker runs: one segment of one recording through the offline path (:mod:`ecgedge.analysis.offline`).

A long recording is cut into segments of ``segment_s`` seconds, each a task. A
segment is streamed from ``overlap_s`` seconds before its start (so the filters and
the R-peak detector's levels have settled as they would have in one pass) to
:data:`TAIL_S` seconds after its end (so the beats near its end are complete), and
keeps the beats whose R peak lies inside it. The beats of all segments, in order, are
what one pass over the whole recording gives (the tests check it); the flags are
decided afterwards in one pass by a task that depends on all the segments
(:func:`finish_recording`, :class:`ecgedge.analysis.judge.BeatJudge`), since
a patient's threshold is learnt from the recording's first beats.

The scorer is loaded once per worker process (:func:`worker_scorer`, cached), not
once per task.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgedge.analysis.atrial import ATRIAL_POINTS
from ecgedge.analysis.leads import lead_peaks
from ecgedge.analysis.offline import BLOCK_S, cut_stream, score_beats
from ecgedge.analysis.signal_alarms import asystole_blocks, vf_windows
from ecgedge.analysis.streams import FS_RANGE
from ecgedge.scan.recordings import (
    Header,
    Recording,
    RecordingError,
    read_annotations,
    read_counts,
    read_lead,
)
from ecgedge.scan.results import beat_table, write_beats

#: Seconds streamed past a segment's end: a beat's window and the R-peak detector's look-ahead.
TAIL_S = 10.0


@dataclass(frozen=True)
class Settings:
    """How recordings are scanned (the same for every task of a run).

    Attributes
    ----------
    bundle : str
        Bundle directory, as the workers see it.
    precision, backend : str
        As ``ecgedge bridge --precision/--backend``.
    leads : tuple of str
        Lead names in order of preference (empty: the first lead).
    polarity : str
    calibration_beats : int or None
        As ``ecgedge bridge --calibrate``.
    adapt_s : float or None
        As ``ecgedge bridge --adapt`` (not with ``calibration_beats``): the
        segments then also return each beat's model input, which the patient
        memory reads.
    segment_s, overlap_s : float
        Task length and warm-up before each segment (seconds).
    block_s : float
        Seconds of signal per block fed to the pipeline: 0.1 is what a board
        sends; longer blocks are what the hub processes when it catches up on a
        backlog (one chunk per stream), the same code, much less overhead per
        sample, and the same beats (the tests compare them).
    """

    bundle: str
    precision: str = "fp32"
    backend: str = "onnxruntime"
    leads: tuple[str, ...] = ()
    polarity: str = "positive"
    calibration_beats: int | None = 120
    adapt_s: float | None = None
    segment_s: float = 3600.0
    overlap_s: float = 300.0
    block_s: float = BLOCK_S
    confirm_leads: bool = True


def worker_scorer(settings: Settings):
    """The scorer of this process, loaded on first use (one ONNX Runtime thread: one task per core).

    Cached by the bundle's manifest hash too, so a long-lived cluster reloads a
    bundle replaced at the same path.
    """
    manifest = hashlib.sha256((Path(settings.bundle) / "bundle.json").read_bytes()).hexdigest()
    return cached_scorer(settings.bundle, manifest, settings.backend, settings.precision)


@functools.lru_cache(maxsize=2)
def cached_scorer(bundle: str, manifest_sha256: str, backend: str, precision: str):
    """Load a scorer once per process and arguments (see :func:`worker_scorer`)."""
    from ecgedge.runtime import load_scorer

    return load_scorer(bundle, backend=backend, precision=precision, threads=1)


def plan_segments(header: Header, settings: Settings) -> list[tuple[int, int]]:
    """The [start, stop) sample ranges of a recording's tasks.

    Raises
    ------
    RecordingError
        A sample rate the bridge cannot use, or an empty recording.
    """
    lo, hi = FS_RANGE
    if not lo <= header.fs <= hi:
        raise RecordingError(f"sample rate {header.fs:g} Hz: the bridge's R-peak detector needs {lo:g} to {hi:g} Hz")
    if header.n_samples <= 0:
        raise RecordingError("the recording holds no samples")
    step = max(1, round(settings.segment_s * header.fs))
    return [(start, min(start + step, header.n_samples)) for start in range(0, header.n_samples, step)]


def scan_segment(recording: Recording, header: Header, lead: int, start: int, stop: int, settings: Settings) -> dict:
    """Beats of samples ``start .. stop`` of one lead, scored: the task each worker runs.

    Returns
    -------
    dict
        ``sample`` (int64), ``rr`` and ``rr_after`` (s), ``own_length``, ``noise``, ``atrial``
        (the beats' atrial segments), ``score`` (float64) arrays of the beats whose R peak is in
        the segment, in order, the scorer's ``offset`` (the model's threshold) and its
        ``beat_format`` (as a dict); for the alarms the hub raises from the signal, the VF filter's
        windows that end in the segment (``vf_end``, ``vf_waves``: :func:`~ecgedge.analysis.signal_alarms.vf_windows`),
        the blocks that end in it (``block_end``, ``readable``:
        :func:`~ecgedge.analysis.signal_alarms.asystole_blocks`) and the R peaks of the other leads in it
        (``other_peaks``; none without ``confirm_leads``).
    """
    scorer = worker_scorer(settings)
    first = max(0, start - round(settings.overlap_s * header.fs))
    last = min(header.n_samples, stop + round(TAIL_S * header.fs))
    lead_counts = read_counts(recording, lead, first, last)
    signal = lead_counts.millivolts
    beats = cut_stream(
        signal,
        header.fs,
        scorer.beat_format,
        first=first,
        polarity=settings.polarity,
        name=recording.name,
        block_s=settings.block_s,
    )
    beats = [b for b in beats if start <= b.sample < stop]
    vf_end, vf_waves = vf_windows(signal, header.fs, first)
    block_end, readable = asystole_blocks(lead_counts.counts, header.fs, lead_counts.gain, lead_counts.rails, first)
    return {
        "sample": np.array([b.sample for b in beats], dtype=np.int64),
        "rr": np.array([b.rr for b in beats], dtype=float),
        "rr_after": np.array([b.rr_after for b in beats], dtype=float),
        "own_length": np.array([b.own_length for b in beats], dtype=np.int64),
        "noise": np.array([b.noise for b in beats], dtype=float),
        "atrial": np.array([b.atrial for b in beats], dtype=np.float32).reshape(len(beats), ATRIAL_POINTS),
        "score": score_beats(beats, scorer),
        "offset": float(scorer.offset_),
        "beat_format": scorer.beat_format.to_dict(),
        **({"inputs": np.array([b.model_input for b in beats], dtype=np.float32)} if settings.adapt_s else {}),
        **_ending_in(start, stop, vf_end=vf_end, vf_waves=vf_waves),
        **_ending_in(start, stop, block_end=block_end, readable=readable),
        "other_peaks": _other_peaks(recording, header, lead, (first, last), (start, stop), settings.block_s)
        if settings.confirm_leads
        else np.empty(0, dtype=np.int64),
    }


def _ending_in(start: int, stop: int, **arrays: np.ndarray) -> dict:
    """The rows of ``arrays`` whose first array (window or block ends, exclusive) lies in ``start + 1 .. stop``."""
    ends = next(iter(arrays.values()))
    keep = (ends > start) & (ends <= stop)
    return {name: values[keep] for name, values in arrays.items()}


def _other_peaks(
    recording: Recording, header: Header, lead: int, read: tuple[int, int], keep: tuple[int, int], block_s: float
) -> np.ndarray:
    """The R peaks in ``keep`` of every lead but ``lead``, read over ``read``.

    :func:`~ecgedge.analysis.leads.lead_peaks` in the scan's blocks (``block_s``): the peaks do not
    depend on the blocks (a test compares 0.1 s and 10 s), and 10 s blocks cost half as much.
    """
    block = max(1, round(block_s * header.fs))
    peaks = [
        read[0] + lead_peaks(read_lead(recording, other, *read), header.fs, block)
        for other in range(len(header.leads))
        if other != lead
    ]
    found = np.unique(np.concatenate([np.empty(0, dtype=np.int64), *peaks]))
    return found[(found >= keep[0]) & (found < keep[1])]


def finish_recording(recording: Recording, header: Header, settings: Settings, out: str, *parts: dict) -> dict:
    """Join a recording's segments, decide its flags in one pass, write its beats; return its summary statistics.

    The task that depends on all of a recording's :func:`scan_segment` tasks; ``out``
    must be the output folder as the workers see it.
    """
    columns, stats = beat_table(
        list(parts),
        header.fs,
        header.n_samples / header.fs,
        settings.calibration_beats,
        read_annotations(recording),
        adapt_s=settings.adapt_s,
    )
    write_beats(Path(out), recording.name, columns)
    return stats
