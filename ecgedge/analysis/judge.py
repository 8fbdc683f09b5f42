"""The per-beat decision of a stream, within its rhythm and signal quality.

One definition for every path that flags beats: the live :class:`~ecgedge.firmware_bridge.hub.Hub`
and the offline path (:mod:`ecgedge.analysis.offline`, which ``ecgedge scan`` and
``ecgedge evaluate`` run) both keep one :class:`BeatJudge` per stream and feed it the stream's
beats and scores in order. Each layer reads only the layers below it:

1. signal quality (:class:`~ecgedge.analysis.noise.NoiseTracker`): a beat in a noisy stretch
   is never flagged and never learnt;
2. the ventricular complex: is this QRS unlike the patient's normal ones (the shape distance to
   the patient's memory over :data:`QRS_SPAN_S` around R only, blind to the P and T waves,
   which change with the rate and the atrial rhythm, and to timing); within a ventricular run,
   the population model's reading of the beat is heard too (:data:`RUN_UNDER_WAY`);
3. the rhythm (:class:`~ecgedge.analysis.rhythm.RhythmAnalyser`), fed with every beat of
   supraventricular shape, whatever its timing: a rhythm that changes after learning reaches it;
4. timing within that rhythm: a supraventricular beat is premature only when it comes early
   for the patient's rhythm, the RR series was regular before it (in AF or while the intervals
   are irregular, early means nothing) and the rhythm does not go on at that rate (the next
   interval is not early too: an AV block that ends, a rate step, is a rate, not ectopy).

The patient memory is kept across rhythm changes: the atrial rhythm does not change how the
ventricles conduct, so the patient's normal QRS shapes stay the reference, and beats judged
clearly normal join it (so it follows slow changes of the QRS). A sudden, sustained change of the
supraventricular QRS (a bundle branch block that appears, a moved electrode) is learnt once it has
lasted :data:`RELEARN_BEATS` beats led by P waves at a sinus rate, and said with a
``"relearned"`` event; ventricular beats and runs never are.

A restarted stream (a gap too long to fill, the electrodes back on, a board reset: a beat of a new
``segment``) starts its rhythm and heart rate afresh (:meth:`BeatJudge.restart`): the RR intervals
and P waves before the gap are not continuous with those after it, and a monitor shows what it has
not measured since the gap as unknown, never as it was before.

Every verdict carries the heart rate (:class:`~ecgedge.analysis.heart_rate.HeartRateMeter`), and
the arrhythmia alarms are read from the layers below (:class:`~ecgedge.analysis.alarms.ArrhythmiaAlarms`:
ventricular tachycardia from the ventricular beats, extreme rates and pauses from the RR intervals).
Rhythm changes, relearning, noisy stretches and alarms are reported as :class:`StreamEvent` s
(:meth:`BeatJudge.take_events`), which the bridge turns into typed events in every sink.
"""

from __future__ import annotations

import contextlib
from collections import deque
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from ecgedge.analysis.alarms import AlarmLimits, ArrhythmiaAlarms
from ecgedge.analysis.atrial import AtrialActivity
from ecgedge.analysis.fibrillation import RegularRhythm
from ecgedge.analysis.heart_rate import HeartRateMeter
from ecgedge.analysis.noise import NoiseTracker
from ecgedge.analysis.rhythm import RhythmAnalyser
from ecgedge.beatformat import BeatFormat
from ecgedge.calibration import BeatContext, PatientCalibrator, PatientMemory

#: Seconds of a stream the bridge learns its patient from, unless told otherwise (a bedside monitor's 5 minutes).
DEFAULT_ADAPT_S = 300.0
#: Longest RR interval counted into the learning window (s): a gap in the signal is not time spent learning.
MAX_RR_S = 3.0
#: The QRS complex (s before and after R) the shape of a beat is judged on. A ventricular QRS lasts
#: 120-200 ms, a normal one 80-110 ms, and the R peak lies anywhere inside it; 100 ms before R
#: reaches the onset of either without the P wave (it ends a PR segment, 40-120 ms, before the
#: QRS), 140 ms after reaches the end of a wide QRS and stops before the T wave (which starts
#: 150 ms or more after R even at 150 bpm, QT 300 ms).
QRS_SPAN_S = (0.10, 0.14)
#: An RR series is as irregular as AF when its median relative successive difference
#: (:attr:`~ecgedge.analysis.rhythm.RhythmAnalyser.irregularity`) is above this: independent
#: intervals with a coefficient of variation of 0.15, the low end of AF's, give 0.674 * sqrt(2) *
#: 0.15 = 0.14. Then no beat is early for the rhythm: there is no regular rhythm to be early for.
IRREGULAR = 0.14
#: ... over the last this many successive differences: the window of the real-time AF detector of
#: Petrenas et al. (2015), half the rhythm analyser's (which waits longer before it reads AF).
IRREGULAR_BEATS = 8
#: A rhythm that goes on at an interval this long or longer (100 bpm or slower, the upper limit of
#: sinus rhythm at rest) is a new rate; faster, an abrupt run is a supraventricular tachycardia.
SINUS_MAX_RR_S = 0.6
#: Beats in a row of one new QRS complex, led by P waves at a sinus rate, after which the memory learns
#: it: a minute at 60 bpm, long enough to be a sustained change (a bundle branch block that appears,
#: a moved electrode), not a run or a burst of aberrant beats.
RELEARN_BEATS = 60
#: The patient's ectopic complex is the median QRS of the latest this many premature ventricular
#: beats: robust to a few beats of another focus or a noisy one, and it follows a new dominant focus
#: within as many beats.
ECTOPIC_BEATS = 16
#: ... once there are this many (the fewest whose median rejects one odd beat).
MIN_ECTOPIC = 3
#: A flagged beat on time whose QRS lies less than this share of the way from the patient's normal
#: complex to the ectopic one (its projection on the line between them) is a fusion beat: most of
#: its ventricles were depolarised through the conduction system. Half-way, not fit to any record.
FUSION_BLEND = 0.5
#: A ventricular run is under way after this many ventricular beats in a row (a couplet: the focus
#: fired again before any conducted beat). Within a run, a beat that no P wave leads, whose QRS the
#: memory passes but would not learn, and that the population model rejects, is the focus again
#: (:meth:`BeatJudge._run_goes_on`). Two, so the model's verdict can lengthen a run but never make a
#: couplet of a single ventricular beat.
RUN_UNDER_WAY = 2


class BeatView(NamedTuple):
    """What a judge reads of a beat, for paths that keep arrays rather than :class:`Beat` objects."""

    model_input: np.ndarray
    rr: float
    sample: int = 0
    own_length: int = 0
    noise: float = 0.0
    atrial: np.ndarray | None = None
    rr_after: float = float("nan")
    segment: int = 0


class StreamEvent(NamedTuple):
    """A change of a stream's state found while judging its beats.

    Attributes
    ----------
    kind : {"rhythm-change", "noisy", "noise-over", "relearned", "alarm", "alarm-over"}
        ``"relearned"``: the patient memory learnt a new supraventricular QRS complex
        (:meth:`BeatJudge.judge`); ``"alarm"`` / ``"alarm-over"``: an arrhythmia alarm
        (:mod:`ecgedge.analysis.alarms`) raised or ended.
    sample : int
        The R sample of the beat that made it (for ``"noisy"``: the stretch's first beat; for
        ``"relearned"``: the new complex's first beat).
    rhythm : str or None
        The rhythm entered (``"rhythm-change"`` only).
    alarm : str or None
        The alarm's name (``"alarm"``, ``"alarm-over"``): ``"vt"``, ``"brady"``, ``"tachy"``, ``"pause"``.
    detail : str or None
        The alarm's detail, in words.
    """

    kind: str
    sample: int
    rhythm: str | None = None
    alarm: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Verdict:
    """The decision on one beat.

    Attributes
    ----------
    mode : {"fixed", "learning", "adapted"}
        ``"fixed"``: by a score threshold (the bundle's, or the patient's
        learnt by ``--calibrate``); ``"learning"``: the stream's first beats,
        never flagged; ``"adapted"``: by the patient's memory.
    threshold : float or None
        The score threshold of a ``"fixed"`` verdict, else None.
    distance : float or None
        An ``"adapted"`` beat's distance to the patient's normal beats, in
        limits (:meth:`ecgedge.calibration.PatientMemory.distance`).
    anomaly : bool
        Score below the threshold, or distance above 1; never in a noisy stretch.
    rhythm : {"sinus", "af", "unknown"}, default="unknown"
        The stream's rhythm at this beat.
    quality : {"ok", "noisy"}, default="ok"
    reason : {"shape", "timing"} or None, default=None
        Why an adapted beat was flagged: its shape, or its prematurity alone. A beat that goes on with
        a ventricular run is flagged for its shape even within the memory's limit (its ``distance``
        under 1: see :data:`RUN_UNDER_WAY`).
    heart_rate : float or None, default=None
        The stream's heart rate (bpm) after this beat
        (:class:`~ecgedge.analysis.heart_rate.HeartRateMeter`); None when lost.
    learning_left_s : float or None, default=None
        While an adapting stream learns its patient: the seconds of signal it still needs
        (``adapt_s`` less the beats' time so far); else None.
    organised_rhythm : bool, default=False
        A clean beat of an organised rhythm, which fibrillation never is: a regular one slower than
        fibrillation's waves (:class:`~ecgedge.analysis.fibrillation.RegularRhythm`), or a
        ventricular tachycardia (a ventricular beat while the VT alarm is on).
    ventricular : bool, default=False
        A clean beat whose QRS starts in a ventricle: unlike the patient's (or, within a run, rejected
        by the population model: :data:`RUN_UNDER_WAY`), not led by the patient's P wave and not a
        fusion beat (:meth:`BeatJudge.judge`); what the VT alarm, couplets and runs count.
    """

    mode: str
    threshold: float | None
    distance: float | None
    anomaly: bool
    rhythm: str = "unknown"
    quality: str = "ok"
    reason: str | None = None
    heart_rate: float | None = None
    learning_left_s: float | None = None
    organised_rhythm: bool = False
    ventricular: bool = False


class BeatJudge:
    """Judge one stream's beats, in stream order.

    Parameters
    ----------
    calibration_beats : int or None, default=None
        Learn a score threshold from the stream's first this many beats
        (:class:`ecgedge.calibration.PatientCalibrator`), then judge by it.
    adapt_s : float or None, default=None
        Adapt to the patient: learn from the stream's first this many
        seconds of beats (signal time, the sum of their RR intervals, each
        counted up to :data:`MAX_RR_S`, so a recording played faster than
        real time learns as much); the clean beats the model accepts become
        the patient's memory (:class:`ecgedge.calibration.PatientMemory`),
        which judges every later beat. Noisy beats are not learnt but their
        time counts: the learning period is the stream's first ``adapt_s``
        seconds, as ANSI/AAMI EC57 scores an analyser from the fifth minute
        of a record on, whatever its noise (it needs ``min_beats`` clean
        beats, and learns on until it has them). Not with ``calibration_beats``.
    memory : PatientMemory, optional
        A memory to start from (a restarted bridge resumes the patient's);
        default: a new one with default settings.
    rhythm : RhythmAnalyser, optional
        Default: a new one with default settings.
    noise : NoiseTracker, optional
        Default: a new one with default settings.
    beat_format : BeatFormat, optional
        The model's beat format: a new memory judges shapes on its :data:`QRS_SPAN_S` columns
        (:meth:`~ecgedge.beatformat.BeatFormat.columns`); default, or a window in RR
        intervals: the whole window.
    alarm_limits : AlarmLimits, optional
        When the arrhythmia alarms are raised (:class:`~ecgedge.analysis.alarms.AlarmLimits`);
        default: the PhysioNet/CinC Challenge 2015 definitions.

    Without either, every beat is judged by the model's threshold.

    Examples
    --------
    >>> verdict = BeatJudge().judge(-0.5, offset=-0.2)
    >>> verdict.mode, verdict.threshold, verdict.anomaly, verdict.rhythm, verdict.heart_rate
    ('fixed', -0.2, True, 'unknown', None)
    >>> BeatJudge(calibration_beats=2).judge(-0.1, offset=-0.2).mode
    'learning'
    """

    def __init__(
        self,
        calibration_beats: int | None = None,
        adapt_s: float | None = None,
        memory: PatientMemory | None = None,
        rhythm: RhythmAnalyser | None = None,
        noise: NoiseTracker | None = None,
        beat_format: BeatFormat | None = None,
        alarm_limits: AlarmLimits | None = None,
    ) -> None:
        if calibration_beats and adapt_s:
            raise ValueError("a stream is calibrated (calibration_beats) or adapted (adapt_s), not both")
        self.calibrator = PatientCalibrator(calibration_beats) if calibration_beats else None
        self.adapt_s = adapt_s
        if memory is None and adapt_s:
            memory = PatientMemory(columns=beat_format.columns(*QRS_SPAN_S) if beat_format else None)
        self.memory = memory
        self.context = BeatContext()
        self.rhythm = rhythm if rhythm is not None else RhythmAnalyser()
        self.noise = noise if noise is not None else NoiseTracker()
        self.heart_rate = HeartRateMeter()
        self.alarms = ArrhythmiaAlarms(alarm_limits)
        self.regular = RegularRhythm(IRREGULAR_BEATS, IRREGULAR)
        self._events: list[StreamEvent] = []
        self._new_complex: list[tuple[np.ndarray, float, int, np.ndarray | None]] = []  # (shape, rr, sample, atrial)
        self._last_normal = True  # whether the last adapted beat was normal (its interval ends an NN pair)
        self._learnt_s = 0.0
        self._unsaved = 0
        self._saved = False
        self._segment = 0  # the last beat's (0: none yet, or unknown)
        self._on_time = False  # whether the last adapted beat came when the sinus beat was due (not premature)
        self._shape: np.ndarray | None = None  # the last adapted beat's shape
        self._shape_d = 0.0  # ... and its shape distance, in shape limits
        self._ectopic: deque[np.ndarray] = deque(maxlen=ECTOPIC_BEATS)
        self._in_row = 0  # ventricular beats in a row up to the last judged one

    @property
    def learning(self) -> bool:
        """Whether the stream's threshold or memory is still being learnt."""
        if self.memory is not None:
            return not self.memory.ready
        return self.calibrator is not None and not self.calibrator.ready

    def resume(self, memory: PatientMemory) -> None:
        """Judge by a saved patient memory from now on (a restarted bridge needs no relearning)."""
        self.memory, self._saved = memory, True

    def replay(self, scores) -> None:
        """Feed stored learning scores to the calibrator (a restarted bridge resumes its learning)."""
        if self.calibrator is not None:
            self.calibrator.update(scores)

    def state_to_save(self, every: int = 256) -> dict | None:
        """The memory's state when it is new or ``every`` beats have changed it since, else None."""
        if self.memory is None or not self.memory.ready or (self._saved and self._unsaved < every):
            return None
        self._saved, self._unsaved = True, 0
        return self.memory.state()

    def restart(self) -> None:
        """The stream restarted: its rhythm and heart rate start afresh, unknown and lost until read again.

        What was measured of the beats' timing before a gap is not continuous with what follows: the
        rhythm analyser forgets its intervals and P waves (:meth:`RhythmAnalyser.restart`) and the
        heart rate meter its intervals. The patient's memory or threshold, the learning, the noise
        state and the alarms are kept. :meth:`judge` calls it at the first beat of a new segment
        (``beat.segment``); the next verdict's rhythm is then ``"unknown"``, with a
        ``"rhythm-change"`` event if it was known.
        """
        self.rhythm.restart()
        self.heart_rate.restart()

    def take_events(self) -> list[StreamEvent]:
        """The rhythm changes and noisy stretches found since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    def judge(self, score: float, offset: float, beat=None) -> Verdict:
        """Decide one beat (the next in stream order).

        Parameters
        ----------
        score : float
            The model's score (higher is more normal).
        offset : float
            The model's threshold (``scorer.offset_``).
        beat : Beat or BeatView, optional
            Its ``rr``, ``rr_after``, ``sample``, ``own_length``, ``noise``, ``atrial`` and ``segment`` are read
            (without it the beat is taken as clean, of unknown rhythm); to adapt, also its ``model_input`` (a
            window fixed in time around R). A ``segment`` other than the last beat's restarts the stream
            (:meth:`restart`).

        Returns
        -------
        Verdict
        """
        sample = int(getattr(beat, "sample", 0))
        rr = float(beat.rr) if beat is not None else float("nan")
        rhythm_before = self.rhythm.rhythm
        segment = int(getattr(beat, "segment", 0))
        if segment:
            if self._segment and segment != self._segment:
                self.restart()
            self._segment = segment
        was_noisy = self.noise.noisy
        quality = self.noise.add(getattr(beat, "noise", 0.0), sample) if beat is not None else "ok"
        if self.noise.noisy != was_noisy:
            since = self.noise.since  # a noisy stretch's first beat; None once the stretch is over
            self._events.append(
                StreamEvent("noisy" if self.noise.noisy else "noise-over", sample if since is None else since)
            )
        if self.memory is not None:
            if beat is None:
                raise ValueError("an adapting judge needs each beat, not only its score")
            verdict, normal = self._adapted(self.memory, beat, score, offset, quality)
        else:
            verdict = self._by_threshold(score, offset)
            normal = verdict.threshold is None or score >= verdict.threshold
        rhythm = self.rhythm.add(rr, normal=normal, usable=quality == "ok", atrial=getattr(beat, "atrial", None))
        if rhythm != rhythm_before:
            self._events.append(StreamEvent("rhythm-change", sample, rhythm))
        anomaly = verdict.anomaly and quality == "ok"
        heart_rate = self.heart_rate.add(rr, usable=quality == "ok") if beat is not None else None
        organised = beat is not None and self.regular.add(rr, usable=quality == "ok")
        ventricular = False
        if beat is not None and verdict.mode != "learning":
            ventricular = self._ventricular(verdict, beat, score >= offset)
            if ventricular and verdict.mode == "adapted" and verdict.reason != "shape":  # a run going on
                verdict = replace(verdict, anomaly=True, reason="shape")
                anomaly = quality == "ok"
            if ventricular and not self._on_time and self._shape is not None and self.memory is not None:
                self._ectopic.append(self._shape[_qrs(self.memory)])  # a premature ventricular complex
            self._in_row = self._in_row + 1 if ventricular else 0
            for change in self.alarms.add(sample, rr, ventricular, usable=quality == "ok"):
                self._events.append(
                    StreamEvent(
                        "alarm" if change.active else "alarm-over",
                        change.sample,
                        alarm=change.name,
                        detail=change.detail,
                    )
                )
            organised = organised or (ventricular and quality == "ok" and "vt" in self.alarms.active)
        return Verdict(
            verdict.mode,
            verdict.threshold,
            verdict.distance,
            anomaly,
            rhythm,
            quality,
            verdict.reason if anomaly else None,
            heart_rate,
            verdict.learning_left_s,
            organised,
            ventricular and quality == "ok",
        )

    def _ventricular(self, verdict: Verdict, beat, accepted: bool) -> bool:
        """Whether a beat's QRS is ventricular: unlike the patient's (its shape, or its score) and not led by a P wave.

        A QRS that starts in a ventricle follows no P wave at the patient's PR interval. One that
        does, and still looks unlike the patient's, was conducted from the atria: through a bundle
        branch that has not recovered (aberrant conduction), or meeting a ventricular impulse
        halfway (a fusion beat, AAMI F). Neither is a ventricular beat, nor makes a run or a VT.
        A fusion beat comes when the sinus beat is due (not premature for the patient's rhythm), so
        its P wave is looked for in the part of the segment after the last T wave, which at a fast
        rate is all that can be read (:meth:`~ecgedge.analysis.atrial.AtrialActivity.leads`).
        ``accepted``: whether the population model accepted the beat (:meth:`_run_goes_on`).
        """
        unlike = verdict.reason == "shape" if verdict.mode == "adapted" else verdict.anomaly
        unlike = unlike or (not accepted and self._run_goes_on(verdict))
        atrial = self.rhythm.atrial
        segment = getattr(beat, "atrial", None)
        if not unlike or (atrial is not None and atrial.leads(segment, float(beat.rr), on_time=self._on_time)):
            return False
        return not self._fusion(verdict, beat)

    def _run_goes_on(self, verdict: Verdict) -> bool:
        """Whether a run under way takes a beat the memory passes, and the population model rejects, as the focus again.

        A run ends with a beat conducted from the atria: a P wave leads it (checked by the caller)
        and its QRS is the patient's own. The memory's shape limit is set by what it learnt, and a few
        odd beats learnt (fusion beats, aberrant atrial premature ones) widen it, so a QRS of a
        multiform run can fall inside it. Such a QRS is no clearly normal one: the memory would not
        learn it (its shape distance is ``absorb_below`` or more). Then the population model's
        reading of the whole beat (QRS and the T wave after it, which a ventricular beat turns
        against its QRS) decides, after :data:`RUN_UNDER_WAY` ventricular beats in a row, for a
        patient whose learning window it mostly accepted (``accepted_share`` over a half: then its
        rejection means something for this patient; one whose every beat it rejects, a bundle branch
        block, gets no such reading).
        """
        memory = self.memory
        return (
            verdict.mode == "adapted"
            and memory is not None
            and self._in_row >= RUN_UNDER_WAY
            and memory.accepted_share > 0.5
            and self._shape_d >= memory.absorb_below
        )

    def _fusion(self, verdict: Verdict, beat) -> bool:
        """Whether a flagged beat that no P wave leads is a fusion beat, not a ventricular one.

        A fusion beat is the sinus beat meeting a ventricular impulse: it comes when the sinus beat
        is due (not premature), and its ventricles are depolarised partly through the conduction
        system and partly from the focus, so its QRS lies between the patient's normal complex (the
        mean of the memory's beats) and the patient's ectopic one (the median of the latest
        :data:`ECTOPIC_BEATS` premature ventricular complexes). Under :data:`FUSION_BLEND` of the way
        from the normal to the ectopic complex, most of it was conducted; at the normal complex or
        beyond it, away from the ectopic one, none of the ectopic complex is in it (another focus, as
        in multiform ectopy): no blend of the two. Never in AF (no beat is due), nor right after a
        ventricular beat: the sinus impulse that meets the refractory ventricles is blocked and the
        next one conducts only after the pause, so a wide complex right after a ventricular beat is
        taken as the focus again (a run).
        """
        memory, shape = self.memory, self._shape
        if verdict.mode != "adapted" or not self._on_time or memory is None or memory.beats_ is None or shape is None:
            return False
        if self.rhythm.rhythm == "af" or self._in_row or len(self._ectopic) < MIN_ECTOPIC:
            return False
        qrs = _qrs(memory)
        normal = memory.beats_[:, qrs].mean(axis=0)
        line = np.median(np.array(self._ectopic), axis=0) - normal
        along = float(np.dot(shape[qrs] - normal, line))
        return 0.0 < along < FUSION_BLEND * float(np.dot(line, line))

    def _follow(self, memory: PatientMemory, shape: np.ndarray, shape_d: float, beat) -> None:
        """Learn a new QRS complex once it is sustained and supraventricular; say so with a ``"relearned"`` event.

        :data:`RELEARN_BEATS` clean beats in a row unlike the memory, alike among themselves
        (:meth:`~ecgedge.calibration.PatientMemory.spread`: most within the shape limit), at a
        regular rate no faster than :data:`SINUS_MAX_RR_S`, each led by the same P wave
        (:class:`~ecgedge.analysis.atrial.AtrialActivity` reads them organised): the ventricles are
        conducting the sinus beats another way. A ventricular rhythm is never learnt: a run faster
        than 100 bpm is a tachycardia, and a slower one has no P wave bound to its QRS.
        """
        if shape_d <= 1:
            self._new_complex.clear()
            return
        self._new_complex.append(
            (shape, float(beat.rr), int(getattr(beat, "sample", 0)), getattr(beat, "atrial", None))
        )
        if len(self._new_complex) < RELEARN_BEATS:
            return
        shapes, intervals, samples, atrial = zip(*self._new_complex, strict=True)
        self._new_complex.clear()
        rr = np.array(intervals)
        if not (np.all(np.isfinite(rr)) and np.median(rr) >= SINUS_MAX_RR_S):
            return
        if np.median(np.abs(np.diff(rr)) / (0.5 * (rr[1:] + rr[:-1]))) > self.rhythm.threshold:
            return  # irregular: AF with a new complex cannot be told from a ventricular rhythm here
        if np.median(memory.spread(np.array(shapes))) > 1:
            return
        p_waves = AtrialActivity(RELEARN_BEATS)
        for segment, interval in zip(atrial, rr, strict=True):
            p_waves.add(segment, interval)  # a missing segment (None) reads as unreadable
        if not p_waves.organised:
            return
        memory.absorb(np.array(shapes), np.zeros(len(shapes)))
        self._unsaved += len(shapes)
        self._events.append(StreamEvent("relearned", samples[0]))

    def _premature(self, memory: PatientMemory, ratio: float, beat) -> bool:
        """Whether an early supraventricular beat is premature, not part of a rhythm of its own.

        Early means nothing in AF or while the recent RR series is as irregular as AF
        (:data:`IRREGULAR`); and a beat whose next interval is early too, at a rate the sinus node
        keeps (:data:`SINUS_MAX_RR_S` or slower), starts a new rate: an AV block that ends, a
        rate step. An early beat followed by the old rate or a pause is premature, and so is the
        start of a run faster than that (a supraventricular tachycardia).
        """
        irregularity = self.rhythm.recent_irregularity(IRREGULAR_BEATS)
        if self.rhythm.rhythm == "af" or (irregularity is not None and irregularity > IRREGULAR):
            return False
        rr_after = float(getattr(beat, "rr_after", float("nan")))
        if not (np.isfinite(rr_after) and beat.rr > 0):
            return True  # the next interval is unknown (or a pause): early is premature
        _, rhythm_limit = memory.limits()
        goes_on = ratio * rr_after / beat.rr < rhythm_limit and rr_after >= SINUS_MAX_RR_S
        return not goes_on

    def _by_threshold(self, score: float, offset: float) -> Verdict:
        threshold: float | None = offset
        if self.calibrator is not None:
            threshold = self.calibrator.threshold  # None for the calibration beats themselves
            self.calibrator.update([score])
        if threshold is None:
            return Verdict("learning", None, None, False)
        return Verdict("fixed", threshold, None, score < threshold)

    def _adapted(self, memory: PatientMemory, beat, score: float, offset: float, quality: str) -> tuple[Verdict, bool]:
        """Learn the patient from the window's beats, then judge by the patient's memory.

        Returns the verdict (before rhythm and quality) and whether the beat's shape is normal.
        """
        shape, ratio = self.context.add(beat.model_input, beat.rr, keep=not memory.ready)
        own = int(getattr(beat, "own_length", 0)) or shape.size
        if memory.ready:
            shape_d, timing_d = (float(d[0]) for d in memory.distances(shape[None], np.array([ratio]), [own]))
            self._on_time = timing_d <= 1
            self._shape, self._shape_d = shape, shape_d
            if timing_d > 1 and not self._premature(memory, ratio, beat):
                timing_d = 0.0  # early, but not premature: its timing does not count
            normal = shape_d <= 1 and timing_d <= 1
            self.context.keep(beat.rr, normal_to_normal=normal and self._last_normal)
            self._last_normal = normal
            distance = max(shape_d, timing_d)
            if quality == "ok" and own == shape.size:
                memory.absorb(shape[None], np.array([distance]))
                self._unsaved += 1
                self._follow(memory, shape, shape_d, beat)
            reason = "shape" if shape_d > 1 else "timing" if timing_d > 1 else None
            return Verdict("adapted", None, distance, distance > 1, reason=reason), shape_d <= 1
        looks_normal = memory.looks_normal(shape)
        if quality == "ok":
            memory.learn(shape[None], np.array([ratio]), np.array([score >= offset]), np.array([score]))
        if np.isfinite(beat.rr) and beat.rr > 0:
            self._learnt_s += min(beat.rr, MAX_RR_S)
        if self.adapt_s is not None and self._learnt_s >= self.adapt_s:
            with contextlib.suppress(ValueError):  # too few clean beats yet: keep learning
                memory.close()
        left = None if self.adapt_s is None else max(0.0, self.adapt_s - self._learnt_s)
        return Verdict("learning", None, None, False, learning_left_s=left), looks_normal is not False


def _qrs(memory: PatientMemory) -> slice:
    """The columns of a shape the memory compares (the QRS span), all of them when it compares the whole window."""
    return slice(*(memory.columns or (0, None)))
