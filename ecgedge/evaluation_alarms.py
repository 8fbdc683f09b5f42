"""The alarms against annotated records, as ANSI/AAMI EC57 scores an arrhythmia analyser.

The bridge's alarms on a record (the beat alarms its :class:`~ecgedge.analysis.judge.BeatJudge`
raises, collected by :class:`AlarmTrace`; VF / flutter and asystole replayed from the signal by
:mod:`ecgedge.analysis.signal_alarms`) against the record's reference annotations:

- **ventricular couplets and runs** (3 or more): consecutive ventricular beats as the judge calls
  them (flagged by shape) against consecutive V / E beats of the reference; a reference couplet or
  run is found when a detected couplet or run overlaps it, a detected one is true when it overlaps a
  reference couplet or run (EC57's overlap rule for episodes, applied to runs);
- **VT episodes**: the reference's ``(VT`` episodes that meet the alarm's definition (at least
  ``vt_beats`` reference beats over ``vt_bpm``), each found when a ``vt`` alarm is raised within
  :data:`WITHIN_S` of its onset (or is already on); a ``vt`` alarm is true when it overlaps a
  ``(VT`` episode or a reference run of 3 or more ventricular beats;
- **VF / flutter episodes**: the reference's ``(VF`` / ``(VFL`` episodes of :data:`EPISODE_S` or
  more, each found when a ``vf`` alarm overlaps it; an alarm is true within :data:`WITHIN_S` of any
  ``(VF`` / ``(VFL`` episode;
- **extreme brady- and tachycardia, pauses**: the definitions
  (:class:`~ecgedge.analysis.alarms.ArrhythmiaAlarms`) applied to the reference beats give the
  reference alarms; **asystole**: a gap between reference beats longer than the limit, outside
  VF / flutter; an alarm is false with no reference alarm of its kind within :data:`WITHIN_S`;
- **false alarms per hour** of each kind: the beat alarms over the judged time (after the learning
  window), VF and asystole, which the hub raises from the signal from the first second, over the
  whole record;
- **time from onset to alarm**: from the reference episode's onset to the moment the alarm is
  raised (a VT alarm at the run's ``vt_beats``-th beat, a VF alarm at the end of its first 4 s
  window);
- **the heart-rate meter**: its rate on each judged beat against the same meter
  (:class:`~ecgedge.analysis.heart_rate.HeartRateMeter`) on the reference beats, where both are
  valid.

:func:`score_record` gives one record's figures, :func:`alarm_summary` the totals and
:func:`format_alarm_report` the tables ``ecgedge evaluate --wfdb`` prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from ecgedge.analysis.alarms import PRIORITY, AlarmLimits, ArrhythmiaAlarms
from ecgedge.analysis.ec57 import MATCH_S
from ecgedge.analysis.fibrillation import WINDOW_S, organised
from ecgedge.analysis.heart_rate import HeartRateMeter
from ecgedge.analysis.judge import BeatJudge, StreamEvent, Verdict
from ecgedge.analysis.leads import lead_peaks, longest_silence_s
from ecgedge.analysis.offline import BLOCK_S
from ecgedge.analysis.signal_alarms import Alarm, asystole_alarms, vf_alarms
from ecgedge.analysis.signal_quality import adc_rails
from ecgedge.datasets import WfdbRecord

#: Seconds within which an alarm answers a reference episode (IEC 60601-2-27's alarm delay).
WITHIN_S = 10.0
#: The shortest VF / flutter episode scored: the alarm's definition (a fibrillatory or flutter waveform for 4 s).
EPISODE_S = WINDOW_S
#: Reference rhythms that are ventricular fibrillation or flutter, and ventricular tachycardia.
VF_RHYTHMS = ("(VF", "(VFL")
VT_RHYTHM = "(VT"
#: Every alarm kind, in the order of the tables.
KINDS = ("vf", "vt", "brady", "tachy", "pause", "asystole")
#: Alarms the hub raises from the signal (scored over the whole record); the others from judged beats.
SIGNAL_KINDS = ("vf", "asystole")
#: A heart rate this close to the reference's (bpm) counts as right.
RATE_WITHIN_BPM = 5.0


class Reference(NamedTuple):
    """What the alarm figures read of a record: its reference annotations, sample rate and length.

    ``Reference(*annotations, fs, n_samples)`` from :func:`ecgedge.datasets.read_annotations`;
    :meth:`of` from a loaded record.
    """

    beat_samples: np.ndarray
    beat_symbols: np.ndarray
    rhythm_samples: np.ndarray
    rhythms: np.ndarray
    fs: float
    n_samples: int

    @classmethod
    def of(cls, record: WfdbRecord) -> Reference:
        """A loaded record's reference."""
        annotations = (record.beat_samples, record.beat_symbols, record.rhythm_samples, record.rhythms)
        return cls(*annotations, fs=record.fs, n_samples=record.signal.size)


class AlarmTrace:
    """What the judge says of each beat that the alarm figures need, collected while it judges.

    Pass it as ``observe`` to :func:`ecgedge.arrhythmia.judge_records`, or call :meth:`judge` on a
    stream's beats.

    Parameters
    ----------
    record : ndarray of shape (n_beats,), str
        Each beat's record.
    sample : ndarray of shape (n_beats,), int
        Each beat's R sample.
    scores : ndarray of shape (n_beats,)
        The model's scores.
    offset : float
        The model's threshold.

    Attributes
    ----------
    ventricular, usable, organised : ndarray of bool
        Judged, clean and ventricular (:attr:`~ecgedge.analysis.judge.Verdict.ventricular`, the call of
        the VT alarm); judged and clean; one of the patient's normal beats
        (:func:`ecgedge.analysis.fibrillation.organised`).
    heart_rate : ndarray of float
        The meter's rate after each beat (NaN when lost).
    """

    def __init__(self, record: np.ndarray, sample: np.ndarray, scores: np.ndarray, offset: float) -> None:
        n = len(sample)
        self.record, self.sample = np.asarray(record), np.asarray(sample, dtype=np.int64)
        self.scores, self.offset = np.asarray(scores, dtype=float), float(offset)
        self.ventricular, self.usable, self.organised = (np.zeros(n, dtype=bool) for _ in range(3))
        self.heart_rate = np.full(n, np.nan)
        self._alarms: dict[str, dict[str, list[Alarm]]] = {}
        self._open: dict[tuple[str, str], tuple[int, int]] = {}  # (record, alarm) -> (start, raised)

    def __call__(self, row: int, verdict: Verdict, events: list[StreamEvent]) -> None:
        """Take one beat's verdict and the events it gave (the ``observe`` of ``judge_records``)."""
        usable = verdict.mode != "learning" and verdict.quality == "ok"
        self.usable[row] = usable
        self.ventricular[row] = verdict.ventricular  # clean and judged (never while learning)
        self.organised[row] = organised(verdict, self.scores[row], self.offset)
        self.heart_rate[row] = np.nan if verdict.heart_rate is None else verdict.heart_rate
        name, here = str(self.record[row]), int(self.sample[row])
        for event in events:
            if event.alarm is None:
                continue
            key = (name, event.alarm)
            if event.kind == "alarm":
                self._open[key] = (event.sample, here)
            elif event.kind == "alarm-over" and key in self._open:
                start, raised = self._open.pop(key)
                self._alarms.setdefault(name, {}).setdefault(event.alarm, []).append((start, event.sample, raised))

    def judge(self, beats, offset: float, adapt_s: float | None, beat_format=None, limits=None) -> None:
        """Judge one stream's beats (:class:`~ecgedge.analysis.beats.Beat` objects, in order) as the bridge does."""
        judge = BeatJudge(adapt_s=adapt_s, beat_format=beat_format, alarm_limits=limits)
        for row, beat in enumerate(beats):
            self(row, judge.judge(float(self.scores[row]), offset, beat), judge.take_events())

    def beat_alarms(self, name: str, end: int) -> dict[str, list[Alarm]]:
        """A record's beat alarms, kind -> ``[(start, end, raised)]``; one still on ends at ``end``."""
        found = {kind: list(alarms) for kind, alarms in self._alarms.get(name, {}).items()}
        for (record, kind), (start, raised) in self._open.items():
            if record == name:
                found.setdefault(kind, []).append((start, end, raised))
        return found

    def confirmed_alarms(self, name: str, end: int, peaks: np.ndarray, fs: float, pause_s: float) -> dict:
        """:meth:`beat_alarms` less each pause that R peaks of any lead (``peaks``) split, as the hub withholds it.

        See :func:`~ecgedge.analysis.leads.longest_silence_s`.
        """
        found = self.beat_alarms(name, end)
        found["pause"] = [a for a in found.get("pause", []) if longest_silence_s(a[0], a[1], peaks, fs) > pause_s]
        return found


def runs_of(flags: np.ndarray, samples: np.ndarray) -> list[tuple[int, int, int]]:
    """(first sample, last sample, length) of every run of consecutive True.

    Examples
    --------
    >>> runs_of(np.array([1, 1, 0, 1], bool), np.array([10, 20, 30, 40]))
    [(10, 20, 2), (40, 40, 1)]
    """
    flags = np.asarray(flags, dtype=bool)
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(samples[a]), int(samples[b - 1]), int(b - a)) for a, b in zip(starts, stops, strict=True)]


def overlaps(a: tuple, others: list[tuple], slack: int) -> bool:
    """Whether the span ``a`` (first, last, ...) meets any of ``others`` within ``slack`` samples."""
    return any(a[0] <= b[1] + slack and b[0] <= a[1] + slack for b in others)


def reference_alarms(record: Reference, limits: AlarmLimits) -> dict[str, list[Alarm]]:
    """The alarms the definitions give on the reference beats: kind -> ``[(start, end, raised)]``.

    VT, extreme rates and pauses from :class:`~ecgedge.analysis.alarms.ArrhythmiaAlarms` on the
    reference beats (V and E ventricular); asystole, every gap between reference beats longer than
    the limit that lies outside the VF / flutter episodes (which have no beats either).
    """
    samples, fs = record.beat_samples, record.fs
    rr = np.diff(samples, prepend=np.nan) / fs
    alarms = ArrhythmiaAlarms(limits)
    found: dict[str, list] = {k: [] for k in KINDS}
    open_: dict[str, tuple[int, int]] = {}
    for sample, r, v in zip(
        samples.tolist(), rr.tolist(), np.isin(record.beat_symbols, ["V", "E"]).tolist(), strict=True
    ):
        for change in alarms.add(sample, r, v):
            if change.active:
                open_[change.name] = (change.sample, sample)
            elif change.name in open_:
                start, raised = open_.pop(change.name)
                found[change.name].append((start, change.sample, raised))
    fibrillation = [(a, b) for a, b, _ in rhythm_episodes(record, VF_RHYTHMS)]
    found["asystole"] = [
        (int(a), int(b), int(a + limits.asystole_s * fs))
        for a, b in zip(samples[:-1], samples[1:], strict=True)
        if b - a > limits.asystole_s * fs and not overlaps((a, b), fibrillation, 0)
    ]
    return found


def rhythm_episodes(record: Reference, rhythms: tuple[str, ...]) -> list[tuple[int, int, int]]:
    """``(first sample, end sample, reference beats)`` of each episode of the reference rhythms named."""
    bounds = np.append(record.rhythm_samples, record.n_samples)
    return [
        (int(a), int(b), int(np.sum((record.beat_samples >= a) & (record.beat_samples < b))))
        for a, b, rhythm in zip(bounds[:-1], bounds[1:], record.rhythms, strict=True)
        if rhythm in rhythms
    ]


def vt_episodes(record: Reference, limits: AlarmLimits) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The reference's ``(VT`` episodes: all of them, and those that meet the VT alarm's definition."""
    every, meeting = [], []
    for a, b, n in rhythm_episodes(record, (VT_RHYTHM,)):
        every.append((a, b))
        r = record.beat_samples[(record.beat_samples >= a) & (record.beat_samples < b)]
        if n >= limits.vt_beats and 60.0 * record.fs / np.mean(np.diff(r)) > limits.vt_bpm:
            meeting.append((a, b))
    return every, meeting


def reference_rate(samples: np.ndarray, fs: float) -> np.ndarray:
    """The heart-rate meter's reading after each reference beat (NaN where lost)."""
    meter = HeartRateMeter()
    rr = np.diff(samples, prepend=np.nan) / fs
    return np.array([np.nan if (h := meter.add(r)) is None else h for r in rr.tolist()])


def score_record(
    record: WfdbRecord,
    trace: AlarmTrace,
    name: str,
    *,
    learning_s: float,
    limits: AlarmLimits | None = None,
    signal: np.ndarray | None = None,
    other_leads: Sequence[np.ndarray] = (),
) -> dict:
    """One record's alarm figures (see the module's docstring).

    Parameters
    ----------
    record : WfdbRecord
        The record's lead, reference beats and rhythms.
    trace : AlarmTrace
        The judge's verdicts on the beats the bridge found in it.
    name : str
        The record's name in ``trace``.
    learning_s : float
        Seconds of the record the patient was learnt from (beat alarms are scored after them).
    limits : AlarmLimits, optional
    signal : ndarray, optional
        The lead the beats were found in (mV), when not ``record.signal`` (noise added).
    other_leads : sequence of ndarray, optional
        The record's other leads (mV) as a board would send them beside the beat lead: their R
        peaks (:func:`~ecgedge.analysis.leads.lead_peaks`) withhold an asystole, and a pause they
        split (:func:`~ecgedge.analysis.leads.longest_silence_s`), as the bridge's
        :class:`~ecgedge.analysis.leads.LeadWatch` does.

    Returns
    -------
    dict
        ``hours`` (judged), ``hours_signal`` (the whole record); ``couplet`` and ``run``
        (``reference``, ``found``, ``detected``, ``true``); ``vt`` and ``vf`` (``reference``,
        ``found``, ``delays_s``, ``alarms``, ``false``, ``false_at_s``: when each false one was
        raised); each other kind (``reference``, ``alarms``, ``false``, ``false_at_s``);
        ``heart_rate`` (``beats``, ``abs_error_sum``, ``within_5``).
    """
    limits, fs = limits or AlarmLimits(), record.fs
    signal = record.signal if signal is None else np.asarray(signal, dtype=float)
    rows = trace.record == name
    samples = trace.sample[rows]
    counts = np.round(signal * record.adc_gain + record.baseline).astype(np.int64)
    block = max(1, round(BLOCK_S * fs))
    peaks = np.unique(np.concatenate([samples, *(lead_peaks(lead, fs, block) for lead in other_leads)]))
    return score_alarms(
        Reference.of(record),
        trace,
        name,
        learning_s=learning_s,
        limits=limits,
        vf=vf_alarms(signal, fs, samples[trace.organised[rows]]),
        asystole=asystole_alarms(
            counts, fs, record.adc_gain, adc_rails(record.adc_bits, record.baseline), peaks, limits.asystole_s
        ),
        peaks=peaks,
    )


def score_alarms(
    record: Reference,
    trace: AlarmTrace,
    name: str,
    *,
    learning_s: float,
    limits: AlarmLimits,
    vf: list[Alarm],
    asystole: list[Alarm],
    peaks: np.ndarray,
) -> dict:
    """One recording's alarm figures from the alarms raised on it (:func:`score_record` for a loaded record).

    Parameters
    ----------
    record : Reference
    trace : AlarmTrace
        The judge's verdicts and beat alarms.
    name : str
        The recording's name in ``trace``.
    learning_s : float
    limits : AlarmLimits
    vf, asystole : list of (start, end, raised)
        The alarms raised from the signal (:mod:`ecgedge.analysis.signal_alarms`).
    peaks : ndarray of int
        Every R peak found in any lead, sorted: a pause they split is withheld.

    Returns
    -------
    dict
        As :func:`score_record`.
    """
    fs = record.fs
    rows = trace.record == name
    samples = trace.sample[rows]
    after = learning_s * fs
    raised = trace.confirmed_alarms(name, record.n_samples, peaks, fs, limits.pause_s)
    detected = {k: [a for a in v if a[2] > after] for k, v in raised.items()}
    detected["vf"], detected["asystole"] = vf, asystole
    reference = reference_alarms(record, limits)
    reference = {k: [a for a in v if k in SIGNAL_KINDS or a[0] > after] for k, v in reference.items()}
    slack, within = round(MATCH_S * fs), round(WITHIN_S * fs)
    out: dict[str, Any] = {
        "hours": max(0.0, record.n_samples - after) / fs / 3600,
        "hours_signal": record.n_samples / fs / 3600,
    }
    out.update(_runs(record, trace, rows, after, slack))
    vt_any, vt_ref = vt_episodes(record, limits)
    vt_ref = [e for e in vt_ref if e[0] > after]
    vt = detected.get("vt", [])
    ref_runs = [(a, b) for a, b, n in runs_of(np.isin(record.beat_symbols, ["V", "E"]), record.beat_samples) if n >= 3]
    out["vt"] = {
        "reference": len(vt_ref),
        **_onsets(vt_ref, vt, fs, slack),
        "alarms": len(vt),
        **_false(vt, vt_any + ref_runs, slack, fs),
    }
    vf_any = [(a, b) for a, b, _ in rhythm_episodes(record, VF_RHYTHMS)]
    vf_ref = [(a, b) for a, b in vf_any if b - a >= EPISODE_S * fs]
    out["vf"] = {
        "reference": len(vf_ref),
        **_onsets(vf_ref, detected["vf"], fs, 0, overlap=True),
        "alarms": len(detected["vf"]),
        **_false(detected["vf"], vf_any, within, fs),
    }
    for kind in ("brady", "tachy", "pause", "asystole"):
        found = detected.get(kind, [])
        out[kind] = {
            "reference": len(reference[kind]),
            "alarms": len(found),
            **_false(found, reference[kind], within, fs),
        }
    out["heart_rate"] = _rate_error(record, trace.heart_rate[rows], samples, after)
    return out


def _false(alarms: list[Alarm], reference: list[tuple], slack: int, fs: float) -> dict:
    """How many alarms meet no reference span within ``slack`` samples, and when each of them was raised (s)."""
    false = [a for a in alarms if not overlaps(a, reference, slack)]
    return {"false": len(false), "false_at_s": [round(a[2] / fs, 1) for a in false]}


def _runs(record: Reference, trace: AlarmTrace, rows: np.ndarray, after: float, slack: int) -> dict:
    """Couplets and runs of ventricular beats against the reference's, after learning."""
    ref = [r for r in runs_of(np.isin(record.beat_symbols, ["V", "E"]), record.beat_samples) if r[0] > after]
    clean = trace.usable[rows]  # beats in noise are left out of the sequence, as the alarms leave them out
    det = [r for r in runs_of(trace.ventricular[rows][clean], trace.sample[rows][clean]) if r[0] > after]
    ref_multi, det_multi = [r for r in ref if r[2] >= 2], [r for r in det if r[2] >= 2]
    out = {}
    for name, (lo, hi) in (("couplet", (2, 2)), ("run", (3, 10**9))):
        mine_ref = [r for r in ref if lo <= r[2] <= hi]
        mine_det = [r for r in det if lo <= r[2] <= hi]
        out[name] = {
            "reference": len(mine_ref),
            "found": sum(overlaps(r, det_multi, slack) for r in mine_ref),
            "detected": len(mine_det),
            "true": sum(overlaps(d, ref_multi, slack) for d in mine_det),
        }
    return out


def _onsets(episodes: list[tuple[int, int]], alarms: list[Alarm], fs: float, slack: int, overlap: bool = False) -> dict:
    """Episodes found (an alarm raised within WITHIN_S of the onset, or on at it; or overlapping) and the delays."""
    delays = []
    for onset, end in episodes:
        if overlap:
            raised = [r for a, b, r in alarms if a <= end and onset <= b]
        else:
            raised = [r for a, b, r in alarms if onset - slack <= r <= onset + WITHIN_S * fs or a <= onset <= b]
        if raised:
            delays.append(max(0.0, (min(raised) - onset) / fs))
    return {"found": len(delays), "delays_s": delays}


def _rate_error(record: Reference, rate: np.ndarray, samples: np.ndarray, after: float) -> dict:
    reference = reference_rate(record.beat_samples, record.fs)
    if not record.beat_samples.size:
        return {"beats": 0, "abs_error_sum": 0.0, "within_5": 0}
    nearest = np.clip(np.searchsorted(record.beat_samples, samples), 0, record.beat_samples.size - 1)
    both = np.isfinite(rate) & np.isfinite(reference[nearest]) & (record.beat_samples[nearest] > after)
    error = np.abs(rate[both] - reference[nearest][both])
    return {
        "beats": int(both.sum()),
        "abs_error_sum": float(error.sum()),
        "within_5": int(np.sum(error <= RATE_WITHIN_BPM)),
    }


def alarm_summary(per_record: dict[str, dict]) -> dict:
    """Totals over records: Se / +P of runs and episodes, false alarms per hour of each kind, delays, heart rate.

    Returns
    -------
    dict
        ``hours``, ``hours_signal``; ``couplet``, ``run``, ``vt``, ``vf`` with ``se`` and ``p``
        (None without any); per kind ``false_per_hour``; ``false_high_per_hour`` (the
        high-priority kinds' rates summed); ``vt_delays_s``, ``vf_delays_s``; ``heart_rate``
        (``mae_bpm``, ``within_5``, ``beats``).
    """
    records = list(per_record.values())

    def total(kind: str, key: str) -> int:
        return sum(p[kind][key] for p in records)

    def ratio(a: int, b: int) -> float | None:
        return a / b if b else None

    hours = sum(p["hours"] for p in records)
    hours_signal = sum(p["hours_signal"] for p in records)
    out: dict = {"records": len(records), "hours": hours, "hours_signal": hours_signal}
    for name in ("couplet", "run"):
        out[name] = {k: total(name, k) for k in ("reference", "found", "detected", "true")}
        out[name] |= {
            "se": ratio(out[name]["found"], out[name]["reference"]),
            "p": ratio(out[name]["true"], out[name]["detected"]),
        }
    for kind in KINDS:
        out[kind] = {**out.get(kind, {}), **{k: total(kind, k) for k in ("reference", "alarms", "false")}}
        out[kind]["false_per_hour"] = out[kind]["false"] / (hours_signal if kind in SIGNAL_KINDS else hours or 1.0)
    for kind in ("vt", "vf"):
        out[kind]["found"] = total(kind, "found")
        out[kind]["se"] = ratio(out[kind]["found"], out[kind]["reference"])
        out[kind]["p"] = ratio(out[kind]["alarms"] - out[kind]["false"], out[kind]["alarms"])
        out[f"{kind}_delays_s"] = [d for p in records for d in p[kind]["delays_s"]]
    out["false_high_per_hour"] = sum(out[k]["false_per_hour"] for k in KINDS if PRIORITY[k] == "high")
    rate = [p["heart_rate"] for p in records]
    beats = sum(h["beats"] for h in rate)
    out["heart_rate"] = {
        "beats": beats,
        "mae_bpm": sum(h["abs_error_sum"] for h in rate) / beats if beats else None,
        "within_5": sum(h["within_5"] for h in rate) / beats if beats else None,
    }
    return out


def format_alarm_report(per_record: dict[str, dict], noise: dict | None = None) -> str:
    """Markdown tables of the alarm figures: runs and episodes, false alarms by kind, records with any.

    Parameters
    ----------
    per_record : dict
        Record name -> :func:`score_record`.
    noise : dict, optional
        :func:`alarm_summary` of the same records with noise added: a column of its false alarms per hour.
    """
    s = alarm_summary(per_record)
    lines = [
        "| | reference | Se | detected | +P |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| ventricular {name}s | {s[name]['reference']} | {_pct(s[name]['se'])} | {s[name]['detected']} "
            f"| {_pct(s[name]['p'])} |"
            for name in ("couplet", "run")
        ),
        f"| VT episodes (`(VT`, {_vt_words()}), alarm within {WITHIN_S:g} s | {s['vt']['reference']} "
        f"| {_pct(s['vt']['se'])} | {s['vt']['alarms']} | {_pct(s['vt']['p'])} |",
        f"| VF / flutter episodes of {EPISODE_S:g} s or more (`(VF`, `(VFL`) | {s['vf']['reference']} "
        f"| {_pct(s['vf']['se'])} | {s['vf']['alarms']} | {_pct(s['vf']['p'])} |",
        "",
        f"Time from onset to alarm: VT {_delays(s['vt_delays_s'])}; VF / flutter {_delays(s['vf_delays_s'])}.",
        f"False detections: {s['couplet']['detected'] - s['couplet']['true']} couplets and "
        f"{s['run']['detected'] - s['run']['true']} runs overlap no reference couplet or run. As EC57 counts, each "
        "piece of a reference run detected in pieces is a true detection: +P rises as runs break up.",
        "",
        "| alarm | priority | reference | alarms | false | false / h |" + (" false / h, noise |" if noise else ""),
        "|---|---|---:|---:|---:|---:|" + ("---:|" if noise else ""),
    ]
    for kind in KINDS:
        k = s[kind]
        lines.append(
            f"| {kind} | {PRIORITY[kind]} | {k['reference']} | {k['alarms']} | {k['false']} "
            f"| {k['false_per_hour']:.2f} |" + (f" {noise[kind]['false_per_hour']:.2f} |" if noise else "")
        )
    hr = s["heart_rate"]
    lines += [
        "",
        f"False high-priority alarms: {s['false_high_per_hour']:.2f} an hour"
        + (f" ({noise['false_high_per_hour']:.2f} with noise)." if noise else ".")
        + f" Beat alarms over {s['hours']:.1f} h judged, VF and asystole over {s['hours_signal']:.1f} h of signal.",
        "Heart rate against the same meter on the reference beats: "
        + (
            f"mean absolute error {hr['mae_bpm']:.2f} bpm, {_pct(hr['within_5'])} of beats within "
            f"{RATE_WITHIN_BPM:g} bpm ({hr['beats']} beats)."
            if hr["beats"]
            else "no beat where both are valid."
        ),
        "",
        "| record | couplets | runs | VT | vf | brady | tachy | pause | asystole |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, p in per_record.items():
        if not any(p[k]["reference"] or p[k]["alarms"] for k in KINDS) and not any(
            p[k]["reference"] or p[k]["detected"] for k in ("couplet", "run")
        ):
            continue
        cells = [
            f"{p[k]['reference']} / {p[k]['found']} / {p[k]['detected']} / {p[k]['true']}" for k in ("couplet", "run")
        ]
        cells += [f"{p[k]['reference']} / {p[k]['found']} / {p[k]['alarms']} / {p[k]['false']}" for k in ("vt", "vf")]
        cells += [
            f"{p[k]['reference']} / {p[k]['alarms']} / {p[k]['false']}" for k in ("brady", "tachy", "pause", "asystole")
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(
        "\n(couplets, runs: reference / found / detected / true; VT, vf: reference / found / alarms / false; "
        "the others: reference / alarms / false. Records with none left out.)"
    )
    return "\n".join(lines)


def _vt_words() -> str:
    lim = AlarmLimits()
    return f"{lim.vt_beats}+ beats over {lim.vt_bpm:g} bpm"


def _delays(delays: list[float]) -> str:
    return f"median {np.median(delays):.1f} s, max {max(delays):.1f} s" if delays else "none found"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"
