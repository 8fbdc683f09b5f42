"""The analysis of one ECG stream: the clinical logic, with no I/O.

Everything that decides what a stream's samples mean lives here, and the bridge
(:mod:`ecgedge.firmware_bridge`), ``ecgedge scan`` and ``ecgedge evaluate`` all run it, as two
calls per stream with the model's score between them (so the bridge scores the beats of all its
boards at once):

- :class:`~ecgedge.analysis.finder.BeatFinder`: filtered samples in, beats out;
- :class:`~ecgedge.analysis.judge.BeatJudge`: a beat and its score in, its verdict out, with the
  stream's rhythm and signal quality, and the rhythm changes and noisy stretches as events;
  a beat, its score and its verdict are a :class:`~ecgedge.analysis.scored.ScoredBeat`.

:mod:`.streams` says what a stream's samples must be (sample rates, the gap that is bridged) and
filters many streams at once; :mod:`.offline` runs a recorded lead in mV through it all as the bridge
runs a board; :mod:`.ec57` holds the terms a reference is compared in (AAMI classes, the 150 ms
match, episodes).

The modules under them: :mod:`.filters` (causal band-pass filters with state, the ECG band), :mod:`.rpeaks`
(streaming R-peak detection), :mod:`.beats` (cutting beats as the model's were cut, up to the next
beat's onset), :mod:`.noise` (a beat's noise level, noisy stretches), :mod:`.rhythm` (sinus, AF or
unknown from the RR series), :mod:`.atrial` (whether P waves lead the beats), :mod:`.signal_quality`
(flat lines and ADC rails), :mod:`.heart_rate` (the heart rate a monitor shows), :mod:`.alarms`
(ventricular tachycardia, extreme rates, pauses). Numpy and scipy only: nothing here imports torch or scikit-learn, or
opens a port or a file.
"""

from ecgedge.analysis.finder import BeatFinder
from ecgedge.analysis.judge import BeatJudge, BeatView, StreamEvent, Verdict

__all__ = ["BeatFinder", "BeatJudge", "BeatView", "StreamEvent", "Verdict"]
