"""The bridge's offline path: a recorded lead through the live pipeline, as a board would send it.

A recording is fed to the same :class:`~ecgedge.firmware_bridge.pipeline.StreamPipeline`
and :class:`~ecgedge.analysis.streams.FilterStage` as a live board (causal
filters, streaming R peaks, beat cutting), in SAMPLES blocks of :data:`BLOCK_S` seconds;
the beats are scored by the bundle's scorer and judged by the hub's own
:class:`~ecgedge.analysis.judge.BeatJudge`. So a recording scanned offline and
the same recording streamed live give the same beats, scores and flags.

The steps are separate so that a long recording can be cut and scored in
segments in parallel (:func:`cut_stream`, :func:`score_beats`), and judged in one
pass in stream order afterwards by one :class:`BeatJudge`, which is cheap.
"""

from __future__ import annotations

import numpy as np

from ecgedge.analysis.beats import Beat
from ecgedge.analysis.judge import BeatJudge
from ecgedge.analysis.scored import ScoredBeat
from ecgedge.analysis.streams import FilterStage
from ecgedge.beatformat import BeatFormat
from ecgedge.firmware_bridge.pipeline import StreamPipeline
from ecgedge.firmware_bridge.protocol import Hello

#: Seconds of signal per SAMPLES block, as a board sends them.
BLOCK_S = 0.1
#: Beats scored per call, as the hub's ``max_batch``.
BATCH = 512


def cut_stream(
    counts: np.ndarray,
    hello: Hello,
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
    counts : ndarray of shape (n_samples,)
        The lead in ADC counts (``mV * hello.gain + hello.baseline``); a float
        array in mV with ``gain=1, baseline=0`` works too.
    hello : Hello
        The board's format: sample rate, gain, baseline, and the lead's name
        as its only lead. Checked as the bridge checks a HELLO.
    beat_format : BeatFormat
        The model's beat format (``scorer.beat_format``).
    first : int, default=0
        Board index of ``counts[0]`` (a segment of a longer recording).
    polarity : {"positive", "negative", "auto"}, default="positive"
    name : str, default="recording"
        Stream name copied into the beats.
    block_s : float, default=BLOCK_S
        Seconds per SAMPLES block.

    Returns
    -------
    list of Beat
        In stream order; ``beat.sample`` counts from ``first``'s origin.

    Raises
    ------
    BoardError
        When the format is unusable (sample rate, gain outside the bridge's
        ranges), as the bridge refuses such a board.
    """
    pipeline = StreamPipeline(name, beat_format, polarity=polarity)
    pipeline.configure(hello)
    filters = FilterStage()
    values = np.asarray(counts).reshape(-1, 1)
    step = max(1, round(block_s * hello.fs))
    beats: list[Beat] = []
    for start in range(0, len(values), step):
        block = values[start : start + step]
        index = first + start
        pipeline.push(index, block, (index + len(block)) / hello.fs)
        cut, failures = filters.run([pipeline])
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
    counts: np.ndarray,
    hello: Hello,
    scorer,
    *,
    calibration_beats: int | None = None,
    adapt_s: float | None = None,
    polarity: str = "positive",
    name: str = "recording",
) -> list[ScoredBeat]:
    """Run a whole recorded lead through the bridge's offline path: beats, scores, verdicts.

    Parameters
    ----------
    counts : ndarray of shape (n_samples,)
        The lead in ADC counts (see :func:`cut_stream`).
    hello : Hello
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
    beats = cut_stream(counts, hello, scorer.beat_format, polarity=polarity, name=name)
    scores = score_beats(beats, scorer)
    judge = BeatJudge(calibration_beats, adapt_s, beat_format=scorer.beat_format)
    return [ScoredBeat(b, s, judge.judge(s, scorer.offset_, b)) for b, s in zip(beats, scores.tolist(), strict=True)]
