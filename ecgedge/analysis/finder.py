"""One stream's filtered samples in, its beats out: R peaks, the lead's polarity, and cutting.

The first half of the analysis of a stream; :class:`~ecgedge.analysis.judge.BeatJudge` is the
second (a beat and the model's score in, its verdict within rhythm and signal quality out). The
model's score comes between the two from whichever scorer the caller holds, so that the bridge can
score the beats of all its streams in one call.
"""

from __future__ import annotations

import numpy as np

from ecgedge.analysis.beats import Beat, BeatCutter
from ecgedge.analysis.rpeaks import StreamingRPeakDetector
from ecgedge.beatformat import BeatFormat

#: A lead's R-wave direction by name, as :class:`BeatFinder` takes it (0: decided from the first R peaks).
POLARITIES = {"positive": 1, "negative": -1, "auto": 0}


class BeatFinder:
    """Find and cut one stream's beats, chunk by chunk.

    Parameters
    ----------
    stream : str
        Stream name, copied into every beat.
    fs : float
        Sample rate in Hz.
    beat_format : BeatFormat
        How the model's training beats were cut.
    polarity : {1, -1, 0}, default=1
        Direction of the R waves in this lead; 0 decides from the first ``auto_beats`` R peaks
        (the sign of the median ECG value at them); beats whose window has left the buffer by
        then are not cut.
    auto_beats : int, default=5

    Attributes
    ----------
    detector : StreamingRPeakDetector
    cutter : BeatCutter
    """

    def __init__(
        self, stream: str, fs: float, beat_format: BeatFormat, *, polarity: int = 1, auto_beats: int = 5
    ) -> None:
        self.beat_format = beat_format
        self.auto_beats = auto_beats
        self.detector = StreamingRPeakDetector(fs, polarity=polarity)
        self.cutter = BeatCutter(stream, fs, beat_format, flip=polarity == -beat_format.r_polarity)
        self._votes: list[float] = []

    def restart(self, start: int) -> None:
        """Forget the signal (a gap, lead-off); the next chunk starts at board index ``start``."""
        self.detector.restart(start)
        self.cutter.restart(start)

    def process(self, y: np.ndarray, qrs: np.ndarray, start: int) -> tuple[list[int], list[Beat]]:
        """Take the next filtered chunk (``y`` in the ECG band, ``qrs`` by the detector's QRS band).

        Returns
        -------
        peaks : list of int
            The R peaks the chunk confirmed.
        beats : list of Beat
            The beats it completed (none while the polarity is still being decided), each marked
            ``warmup`` when it waited for the R-peak detector to learn its levels.
        """
        self.cutter.add_signal(y, start)
        peaks = self.detector.process(y, qrs, start)
        for r in peaks:
            if self.detector.polarity == 0:
                self._vote(self.cutter.value_at(r))
            self.cutter.add_peak(r)
        if self.detector.polarity == 0:
            return peaks, []
        beats = self.cutter.cut(self.detector.decided_until)
        for beat in beats:
            beat.warmup = beat.last_sample < self.detector.warmup_end
        return peaks, beats

    def _vote(self, amplitude: float) -> None:
        self._votes.append(amplitude)
        if len(self._votes) >= self.auto_beats:
            sign = 1 if np.median(self._votes) > 0 else -1
            self.detector.polarity = sign
            self.cutter.flip = sign == -self.beat_format.r_polarity
