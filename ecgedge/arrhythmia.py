"""Arrhythmia-analyser evaluation: the bridge's verdicts on annotated records, in AAMI EC57 terms.

Each record's beats (:func:`ecgedge.datasets.load_annotated_beats`, best with
``positions="bridge"``: the beats the bridge itself finds) are judged in stream order by the
hub's own :class:`~ecgedge.analysis.judge.BeatJudge`: the first ``adapt_s`` seconds are
the learning window, every later beat is judged. The judged beats are counted per AAMI class
(:func:`ecgedge.evaluation.aami_report`), per record and gross.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ecgedge.analysis.alarms import AlarmLimits
from ecgedge.analysis.judge import BeatJudge, BeatView, StreamEvent, Verdict
from ecgedge.beatformat import BeatFormat
from ecgedge.datasets import AnnotatedBeats
from ecgedge.evaluation import AF_RHYTHMS, aami_report, af_report


@dataclass(frozen=True)
class Verdicts:
    """The judge's verdicts on beats, one row each (aligned with the beats judged).

    Attributes
    ----------
    mode : ndarray of str
        ``"learning"``, ``"adapted"`` or ``"fixed"``.
    anomaly : ndarray of bool
    normality : ndarray of float
        Higher is more normal: minus the distance to the patient's memory
        when adapted, else the model's score (for ROC curves).
    rhythm : ndarray of str
        ``"sinus"``, ``"af"`` or ``"unknown"`` (:class:`~ecgedge.analysis.rhythm.RhythmAnalyser`).
    quality : ndarray of str
        ``"ok"`` or ``"noisy"`` (:class:`~ecgedge.analysis.noise.NoiseTracker`).
    """

    mode: np.ndarray
    anomaly: np.ndarray
    normality: np.ndarray
    rhythm: np.ndarray
    quality: np.ndarray


def judge_records(
    beats: AnnotatedBeats,
    scores: np.ndarray,
    offset: float,
    *,
    adapt_s: float | None = 300.0,
    calibration_beats: int | None = None,
    beat_format: BeatFormat | None = None,
    alarm_limits: AlarmLimits | None = None,
    observe: Callable[[int, Verdict, list[StreamEvent]], None] | None = None,
) -> Verdicts:
    """Judge each record's beats in order with a new :class:`BeatJudge`, as the bridge judges a stream.

    Parameters
    ----------
    beats : AnnotatedBeats
        Beats of one or more records, each record's in stream order.
    scores : ndarray of shape (n_beats,)
        The model's scores of ``beats.X`` (higher is more normal).
    offset : float
        The model's threshold.
    adapt_s, calibration_beats, beat_format, alarm_limits
        As :class:`BeatJudge`'s (``adapt_s=None`` and no calibration: every
        beat by ``offset``).
    observe : callable, optional
        ``observe(row, verdict, events)`` after each beat: its row in ``beats``, the judge's
        whole :class:`~ecgedge.analysis.judge.Verdict` and the events the beat gave (rhythm
        changes, alarms; :meth:`BeatJudge.take_events`), for figures beyond the verdict arrays
        (:class:`ecgedge.evaluation_alarms.AlarmTrace`).

    Returns
    -------
    Verdicts
    """
    scores = np.asarray(scores, dtype=float)
    if len(scores) != len(beats):
        raise ValueError(f"{len(scores)} scores for {len(beats)} beats")
    mode = np.empty(len(beats), dtype="<U8")
    rhythm = np.empty(len(beats), dtype="<U7")
    quality = np.empty(len(beats), dtype="<U5")
    anomaly = np.zeros(len(beats), dtype=bool)
    normality = scores.copy()
    for name in beats.records:
        judge = BeatJudge(calibration_beats, adapt_s, beat_format=beat_format, alarm_limits=alarm_limits)
        for row in np.flatnonzero(beats.record == name):
            view = BeatView(
                beats.X[row],
                float(beats.rr_before[row]),
                int(beats.sample[row]),
                int(beats.own_length[row]),
                float(beats.noise[row]),
                beats.atrial[row],
                float(beats.rr_after[row]),
            )
            verdict = judge.judge(float(scores[row]), offset, view)
            mode[row], anomaly[row] = verdict.mode, verdict.anomaly
            rhythm[row], quality[row] = verdict.rhythm, verdict.quality
            if verdict.distance is not None:
                normality[row] = -verdict.distance
            events = judge.take_events()
            if observe is not None:
                observe(int(row), verdict, events)
    return Verdicts(mode, anomaly, normality, rhythm, quality)


def arrhythmia_report(beats: AnnotatedBeats, verdicts: Verdicts) -> dict:
    """AAMI statistics of the judged (not learning) beats: per record and gross.

    Returns
    -------
    dict
        ``per_record``: record name to :func:`ecgedge.evaluation.aami_report`
        (plus ``false_detections_flagged``); ``gross``: the same over all
        records, with ``median_record_auc``.
    """
    judged = verdicts.mode != "learning"
    per_record, hours = {}, {}
    for name in beats.records:
        rows = judged & (beats.record == name)
        times = beats.time[beats.record == name]
        hours[name] = (times.max() - times[judged[beats.record == name]].min()) / 3600 if rows.any() else 0.0
        per_record[name] = _report(beats.aami[rows], verdicts.anomaly[rows], verdicts.normality[rows], hours[name])
    gross = _report(beats.aami[judged], verdicts.anomaly[judged], verdicts.normality[judged], sum(hours.values()))
    aucs = [r["auc"] for r in per_record.values() if r["auc"] is not None]
    gross["median_record_auc"] = float(np.median(aucs)) if aucs else None
    return {"per_record": per_record, "gross": gross}


def _report(aami: np.ndarray, flagged: np.ndarray, normality: np.ndarray, hours: float) -> dict:
    report = aami_report(aami, flagged, normality, max(hours, 1e-9))
    report["false_detections_flagged"] = int(np.sum(flagged & (aami == "-")))
    return report


def rhythm_report(beats: AnnotatedBeats, verdicts: Verdicts) -> dict:
    """The rhythm analyser and the signal-quality judge against the reference annotations.

    Every beat counts (the learning window too: the rhythm is read from the first beats on).
    AF is the reference's atrial fibrillation or flutter (``(AFIB``, ``(AFL``), judged by
    :func:`ecgedge.evaluation.af_report`.

    Returns
    -------
    dict
        ``per_record`` and ``gross``: :func:`ecgedge.evaluation.af_report`'s figures plus
        ``af_share_detected`` (share of beats read as AF), ``noisy_share`` (share of beats in
        noisy stretches) and ``beats``.
    """
    reference = np.isin(beats.rhythm, AF_RHYTHMS)
    detected = verdicts.rhythm == "af"

    def figures(rows: np.ndarray) -> dict:
        return {
            **af_report(beats.record[rows], reference[rows], detected[rows]),
            "beats": int(rows.sum()),
            "af_share_detected": float(detected[rows].mean()) if rows.any() else None,
            "noisy_share": float(np.mean(verdicts.quality[rows] == "noisy")) if rows.any() else None,
        }

    per_record = {name: figures(beats.record == name) for name in beats.records}
    return {"per_record": per_record, "gross": figures(np.ones(len(beats), dtype=bool))}


def format_rhythm_report(report: dict) -> str:
    """A Markdown table of :func:`rhythm_report`: the records with AF in the reference or read, then gross."""
    lines = [
        "| record | beats | AF beats (reference) | AF read | AF duration Se | AF duration +P | AF episodes "
        "Se | AF episodes +P | noisy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [(n, r) for n, r in report["per_record"].items() if r["reference_beats"] or r["detected_beats"]]
    for name, r in rows + [("gross", report["gross"])]:
        lines.append(
            f"| {name} | {r['beats']} | {r['reference_beats']} | {_pct(r['af_share_detected'])} "
            f"| {_pct(r['duration_se'])} | {_pct(r['duration_p'])} | {_pct(r['episode_se'])} "
            f"| {_pct(r['episode_p'])} | {_pct(r['noisy_share'])} |"
        )
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def format_report(report: dict, per_record: bool = True) -> str:
    """A Markdown table of :func:`arrhythmia_report`'s figures: one row per record (optional), then gross."""
    lines = [
        "| record | N beats | VEB Se | SVEB Se | F Se | N flagged | false flags / h | flag +P | AUC |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = list(report["per_record"].items()) if per_record else []
    for name, r in rows + [("gross", report["gross"])]:
        auc = "-" if r["auc"] is None else f"{r['auc']:.3f}"
        lines.append(
            f"| {name} | {r['n']['N']} | {_pct(r['se_VEB'])} | {_pct(r['se_SVEB'])} | {_pct(r['se_F'])} "
            f"| {_pct(r['n_flagged_share'])} | {r['false_flags_per_hour']:.0f} | {_pct(r['positive_predictivity'])} "
            f"| {auc} |"
        )
    median = report["gross"].get("median_record_auc")
    if median is not None:
        lines.append(f"\nMedian per-record AUC (abnormal vs N): {median:.3f}")
    return "\n".join(lines)
