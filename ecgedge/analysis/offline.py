"""The offline path: a recorded lead (mV) through a stream's analysis, as the bridge runs a live board's.

A recording is cut into blocks of :data:`BLOCK_S` seconds, as a board sends its samples, and fed
to the same :class:`~ecgedge.analysis.streams.FilterStage` and
:class:`~ecgedge.analysis.finder.BeatFinder` as a live board's samples (causal filters,
streaming R peaks, beat cutting); the beats are scored by the bundle's scorer in batches as the
hub scores them, and judged by the hub's own :class:`~ecgedge.analysis.judge.BeatJudge`. So a
recording scanned offline and the same recording streamed live give the same beats, scores and
flags. What only a board has (ADC counts, its HELLO, lost samples, its clock) stays with the
bridge (:class:`~ecgedge.firmware_bridge.pipeline.StreamPipeline`): a recording is contiguous, and
its beats carry no arrival or wall-clock time.

The steps are separate so that a long recording can be cut and scored in segments in parallel
(:func:`cut_stream`, :func:`score_beats`), and judged in one pass in stream order afterwards by
one :class:`BeatJudge`, which is cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ecgedge.analysis.beats import Beat
from ecgedge.analysis.finder import POLARITIES, BeatFinder
from ecgedge.analysis.judge import BeatJudge
from ecgedge.analysis.scored import ScoredBeat
from ecgedge.analysis.streams import FS_RANGE, FilterStage
from ecgedge.beatformat import BeatFormat

#: Seconds of signal per block, as a board sends its SAMPLES.
BLOCK_S = 0.1
#: Beats scored per call, as the hub's ``max_batch``.
BATCH = 512


@dataclass
class _Block:
    """A block of the recording (a :class:`~ecgedge.analysis.streams.SignalChunk`)."""

    start: int
    x: np.ndarray
    restart: bool


class _Recording:
    """A recorded lead as a :class:`~ecgedge.analysis.streams.FilterStage` runs a stream."""

    def __init__(self, name: str, fs: float, finder: BeatFinder) -> None:
        self.name, self.fs, self.finder = name, fs, finder
        self.slot: tuple[float, int] | None = None
        self._pending: list[_Block] = []

    def known_fs(self) -> float:
        return self.fs

    def add(self, block: _Block) -> None:
        self._pending.append(block)

    def take(self) -> list[_Block]:
        blocks, self._pending = self._pending, []
        return blocks

    def process(self, chunk: _Block, y: np.ndarray, qrs: np.ndarray) -> list[Beat]:
        if chunk.restart:
            self.finder.restart(chunk.start)
        return self.finder.process(y, qrs, chunk.start)[1]

    def reset(self) -> None:
        self._pending = []


def cut_stream(
    signal: np.ndarray,
    fs: float,
    beat_format: BeatFormat,
    *,
    first: int = 0,
    polarity: str = "positive",
    name: str = "recording",
    block_s: float = BLOCK_S,
) -> list[Beat]:
    """Cut the beats the bridge cuts from a recorded lead.

    Parameters
    ----------
    signal : ndarray of shape (n_samples,)
        The lead in mV (a board's ADC counts are ``(counts - baseline) / gain``).
    fs : float
        Sample rate (Hz), within :data:`~ecgedge.analysis.streams.FS_RANGE`.
    beat_format : BeatFormat
        The model's beat format (``scorer.beat_format``).
    first : int, default=0
        Sample index of ``signal[0]`` (a segment of a longer recording).
    polarity : {"positive", "negative", "auto"}, default="positive"
        Direction of the lead's R waves (:class:`~ecgedge.analysis.finder.BeatFinder`).
    name : str, default="recording"
        Stream name copied into the beats.
    block_s : float, default=BLOCK_S
        Seconds per block.

    Returns
    -------
    list of Beat
        In stream order; ``beat.sample`` counts from ``first``'s origin.

    Raises
    ------
    ValueError
        A sample rate outside ``FS_RANGE``, or an unknown polarity.
    """
    lo, hi = FS_RANGE
    if not (math.isfinite(fs) and lo <= fs <= hi):
        raise ValueError(f"sample rate {fs} Hz is outside [{lo:g}, {hi:g}] Hz")
    if polarity not in POLARITIES:
        raise ValueError(f"polarity must be one of {sorted(POLARITIES)}, got {polarity!r}")
    stream = _Recording(name, fs, BeatFinder(name, fs, beat_format, polarity=POLARITIES[polarity]))
    filters = FilterStage()
    values = np.asarray(signal, dtype=np.float64).ravel()
    step = max(1, round(block_s * fs))
    beats: list[Beat] = []
    for start in range(0, len(values), step):
        stream.add(_Block(first + start, values[start : start + step], start == 0))
        cut, failures = filters.run([stream])
        if failures:
            raise failures[0][1]
        beats += cut
    return beats


def score_beats(beats: list[Beat], scorer, batch: int = BATCH) -> np.ndarray:
    """Scores (higher = more normal) of beats, in batches as the hub scores them; shape (n,)."""
    parts = [
        np.asarray(scorer.score_samples(np.stack([b.model_input for b in beats[i : i + batch]])), dtype=float)
        for i in range(0, len(beats), batch)
    ]
    return np.concatenate(parts) if parts else np.empty(0)


def run_offline(
    signal: np.ndarray,
    fs: float,
    scorer,
    *,
    calibration_beats: int | None = None,
    adapt_s: float | None = None,
    polarity: str = "positive",
    name: str = "recording",
) -> list[ScoredBeat]:
    """Run a whole recorded lead through the offline path: beats, scores, verdicts.

    Parameters
    ----------
    signal : ndarray of shape (n_samples,)
        The lead in mV (see :func:`cut_stream`).
    fs : float
        Sample rate (Hz).
    scorer : object
        With ``score_samples``, ``offset_`` and ``beat_format``
        (:func:`ecgedge.runtime.load_scorer`).
    calibration_beats : int or None, default=None
        As the hub's (``ecgedge bridge --calibrate``).
    adapt_s : float or None, default=None
        As the hub's (``ecgedge bridge --adapt``).
    polarity : str, default="positive"
    name : str, default="recording"

    Returns
    -------
    list of ScoredBeat
        What the hub reports for the same stream, beat for beat.
    """
    beats = cut_stream(signal, fs, scorer.beat_format, polarity=polarity, name=name)
    scores = score_beats(beats, scorer)
    judge = BeatJudge(calibration_beats, adapt_s, beat_format=scorer.beat_format)
    return [ScoredBeat(b, s, judge.judge(s, scorer.offset_, b)) for b, s in zip(beats, scores.tolist(), strict=True)]
