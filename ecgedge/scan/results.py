"""What a scan leaves in its output folder, and what a re-run reads back.

``OUT/beats/recording=NAME/part-0.parquet``
    One row per beat: ``sample``, ``time`` (s from the recording's start), ``rr`` (s),
    ``score``, ``threshold`` (null while learning), ``flag``, ``learning``, ``mode``,
    ``distance``, ``rhythm`` (``sinus``, ``af`` or ``unknown``), ``quality`` (``ok`` or
    ``noisy``: never flagged), and where the
    recording has reference annotations ``label`` (the matched reference beat's symbol)
    and ``aami`` (its ANSI/AAMI EC57 class), else null; a Hive-partitioned dataset
    (``pyarrow.dataset.dataset(OUT / "beats", partitioning="hive")``).
``OUT/summary/NAME.json``
    The recording's summary row, written after its beats: status ``done`` or ``failed``
    with the error, the content hash and settings it was scanned with (what resuming
    compares), beats, flags per hour, learning status, noisy beats, the arrhythmia alarms raised
    (``vf_alarms``, ``asystole_alarms``, ``vt_alarms``, ``brady_alarms``, ``tachy_alarms``,
    ``pause_alarms``; ``ventricular_couplets``, ``ventricular_runs`` counted), AF burden and AF
    episodes (:func:`rhythm_summary`), and against annotations the QRS
    detection sensitivity / positive predictivity (150 ms, :func:`wfdb.processing.compare_annotations`),
    beats and flags per AAMI class, and ``alarm_scores``: the alarms scored as ``ecgedge evaluate
    --wfdb`` scores them (:func:`ecgedge.evaluation_alarms.score_alarms`: couplets, runs, VT and VF
    episodes, false alarms of each kind, the heart rate's error; JSON only).
``OUT/summary.parquet``, ``OUT/summary.csv``
    The rows of every recording of the last run, one table.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from ecgedge.analysis.alarms import AlarmLimits
from ecgedge.analysis.ec57 import AAMI_CLASSES, MATCH_S, aami_class, episodes, nearest_reference
from ecgedge.analysis.fibrillation import WINDOW_S
from ecgedge.analysis.judge import BeatJudge, BeatView, Verdict
from ecgedge.analysis.signal_alarms import Alarm, asystole_episodes, vf_episodes
from ecgedge.beatformat import BeatFormat
from ecgedge.datasets import Annotations
from ecgedge.evaluation_alarms import AlarmTrace, Reference, score_alarms
from ecgedge.scan.recordings import RecordingError

#: The per-beat arrays of a segment's result (:func:`ecgedge.scan.tasks.scan_segment`).
_PER_BEAT = ("sample", "score", "rr", "own_length", "noise", "atrial", "rr_after")


def beat_table(
    parts: list[dict],
    fs: float,
    duration_s: float,
    calibration_beats: int | None,
    annotations: Annotations | None,
    adapt_s: float | None = None,
) -> tuple[dict, dict]:
    """Join a recording's segment results and decide its flags in one pass.

    Parameters
    ----------
    parts : list of dict
        :func:`ecgedge.scan.tasks.scan_segment` results, in segment order.
    fs : float
    duration_s : float
        The recording's length (for flags per hour).
    calibration_beats : int or None
    annotations : Annotations or None
        The recording's reference beats and rhythms (:func:`ecgedge.datasets.read_annotations`).
    adapt_s : float or None, default=None
        Adapt to the patient (the parts then carry ``inputs``).

    Returns
    -------
    columns : dict of str to ndarray
        The beat table's columns.
    stats : dict
        The summary's beat statistics.

    Raises
    ------
    RecordingError
        When the recording has too few beats to learn the patient's threshold.
    """
    beats = {key: np.concatenate([p[key] for p in parts]) for key in _PER_BEAT + (("inputs",) if adapt_s else ())}
    n = beats["sample"].size
    if calibration_beats and n <= calibration_beats:
        raise RecordingError(
            f"too short: {n} beats found; the learning window needs {calibration_beats} beats before any beat is judged"
        )
    judge = BeatJudge(calibration_beats, adapt_s, beat_format=BeatFormat.from_dict(parts[0]["beat_format"]))
    other_peaks = np.concatenate([p["other_peaks"] for p in parts])
    trace = AlarmTrace(np.full(n, ""), beats["sample"], beats["score"], parts[0]["offset"])
    verdicts, events = _judge_all(judge, beats, parts[0]["offset"], fs, trace)
    n_samples = round(duration_s * fs)
    peaks = np.union1d(beats["sample"], other_peaks)  # an R peak in any lead ends a silence (or splits a pause)
    vf, asystole = _signal_alarms(parts, trace, peaks, fs, n_samples, judge.alarms.limits)
    raised = trace.confirmed_alarms("", n_samples, peaks, fs, judge.alarms.limits.pause_s)
    events |= {f"{kind}_alarms": len(raised.get(kind, [])) for kind in ("vt", "brady", "tachy", "pause")}
    events |= {"vf_alarms": len(vf), "asystole_alarms": len(asystole)}
    columns = _columns(beats, verdicts, fs)
    learning, flag = columns["learning"], columns["flag"]
    if adapt_s and learning.all():
        raise RecordingError(f"too short: {n} beats found, all within the {adapt_s:g} s learning window")
    learnt = (
        f"adapted to the patient over the first {adapt_s:g} s"
        if adapt_s
        else f"learnt from the first {calibration_beats} beats"
        if calibration_beats
        else "off: the bundle's threshold"
    )
    stats = {
        "beats": int(n),
        "learning": learnt,
        "learning_beats": int(learning.sum()),
        "patient_threshold": float(columns["threshold"][~learning][0])
        if calibration_beats and (~learning).any()
        else None,
        "flagged": int(flag.sum()),
        "flags_per_hour": float(flag.sum() / (duration_s / 3600)),
        "noisy_beats": int(np.sum(columns["quality"] == "noisy")),
        **events,
        **rhythm_summary(columns["time"], columns["rr"], columns["rhythm"]),
    }
    columns["label"] = columns["aami"] = np.full(n, None, dtype=object)
    if annotations is not None:
        stats.update(_against_reference(columns, annotations, fs))
        judged = columns["time"][~learning]
        stats["alarm_scores"] = score_alarms(
            Reference(*annotations, fs=fs, n_samples=n_samples),
            trace,
            "",
            learning_s=adapt_s or (float(judged[0]) if learning.any() else 0.0),
            limits=judge.alarms.limits,
            vf=vf,
            asystole=asystole,
            peaks=peaks,
        )
    return columns, stats


def _judge_all(
    judge: BeatJudge, beats: dict, offset: float, fs: float, trace: AlarmTrace
) -> tuple[list[Verdict], dict]:
    """Every beat's verdict, in order, and the summary's relearning and ventricular-run counts.

    ``trace`` takes each verdict and the judge's events, its alarms among them.
    """
    sample = beats["sample"]
    inputs = beats.get("inputs", np.empty((sample.size, 0)))
    # one row per beat in every column (scan_segment): a mismatch is a bug
    views = zip(
        inputs,
        beats["rr"].tolist(),
        sample.tolist(),
        beats["own_length"].tolist(),
        beats["noise"].tolist(),
        beats["atrial"],
        beats["rr_after"].tolist(),
        strict=True,
    )
    verdicts: list[Verdict] = []
    relearned: list[float] = []
    for row, (s, beat) in enumerate(zip(beats["score"].tolist(), (BeatView(*view) for view in views), strict=True)):
        verdicts.append(judge.judge(s, offset, beat))
        events = judge.take_events()
        trace(row, verdicts[-1], events)
        relearned += [event.sample / fs for event in events if event.kind == "relearned"]
    return verdicts, {
        "relearned": len(relearned),
        "relearned_at_s": relearned,
        "ventricular_couplets": judge.alarms.counts["couplet"],
        "ventricular_runs": judge.alarms.counts["run"],
    }


def _signal_alarms(
    parts: list[dict], trace: AlarmTrace, peaks: np.ndarray, fs: float, n_samples: int, limits: AlarmLimits
) -> tuple[list[Alarm], list[Alarm]]:
    """The ``vf`` and ``asystole`` alarms the hub raises from the signal.

    The segments' VF windows and readable blocks (:func:`ecgedge.scan.tasks.scan_segment`) joined
    with the beats as the hub joins them (:func:`~ecgedge.analysis.signal_alarms.vf_episodes`,
    :func:`~ecgedge.analysis.signal_alarms.asystole_episodes`): a VF window holding a beat judged normal
    (``trace.organised``) is no VF, and an R peak in any lead (``peaks``) ends a silence.
    """

    def joined(key: str) -> np.ndarray:
        return np.concatenate([p[key] for p in parts])

    normal = trace.sample[trace.organised]
    vf = vf_episodes(joined("vf_end"), joined("vf_waves"), round(WINDOW_S * fs), normal, n_samples)
    asystole = asystole_episodes(joined("block_end"), joined("readable"), peaks, fs, limits.asystole_s)
    return vf, asystole


def _columns(beats: dict, verdicts: list[Verdict], fs: float) -> dict:
    """The beat table's columns before the reference's."""
    mode = np.array([v.mode for v in verdicts], dtype=object)

    def number(values) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in values], dtype=float)

    return {
        "sample": beats["sample"],
        "time": beats["sample"] / fs,
        "rr": beats["rr"],
        "score": beats["score"],
        "threshold": number(v.threshold for v in verdicts),
        "flag": np.array([v.anomaly for v in verdicts], dtype=bool),
        "learning": mode == "learning",
        "mode": mode,
        "distance": number(v.distance for v in verdicts),
        "rhythm": np.array([v.rhythm for v in verdicts], dtype=object),
        "quality": np.array([v.quality for v in verdicts], dtype=object),
        "heart_rate": number(v.heart_rate for v in verdicts),
    }


def _against_reference(columns: dict, annotations: Annotations, fs: float) -> dict:
    """Fill the ``label`` and ``aami`` columns; return the QRS Se / +P and the judged beats and flags per AAMI class."""
    reference, symbols = annotations.beat_samples, annotations.beat_symbols
    label, stats = _match(columns["sample"], reference, symbols, round(MATCH_S * fs))
    matched = np.array([s is not None for s in label], dtype=bool)
    aami = np.full(label.size, None, dtype=object)
    aami[matched] = aami_class(label[matched].astype(str))
    columns["label"], columns["aami"] = label, aami
    judged, flag = ~columns["learning"], columns["flag"]
    for cls in AAMI_CLASSES:
        mine = judged & (aami == cls)
        stats[f"{cls}_beats"], stats[f"{cls}_flagged"] = int(mine.sum()), int(flag[mine].sum())
    return stats


def rhythm_summary(time: np.ndarray, rr: np.ndarray, rhythm: np.ndarray) -> dict:
    """AF burden (share of the time of beats whose rhythm is read) and AF episodes of one recording.

    Parameters
    ----------
    time : ndarray of shape (n_beats,)
        R times (s).
    rr : ndarray of shape (n_beats,)
        Each beat's RR interval (s): the time it stands for.
    rhythm : ndarray of shape (n_beats,), str

    Returns
    -------
    dict
        ``af_burden`` (None when no beat's rhythm is known), ``af_episode_count`` and
        ``af_episodes`` (a list of ``[onset_s, offset_s]``: the first and last beat of each
        run read as AF, :func:`ecgedge.analysis.ec57.episodes`).

    Examples
    --------
    >>> rhythm_summary(np.arange(6.0), np.ones(6), np.array(["unknown", "sinus", "af", "af", "sinus", "sinus"]))
    {'af_burden': 0.4, 'af_episode_count': 1, 'af_episodes': [[2.0, 3.0]]}
    """
    rhythm = np.asarray(rhythm).astype(str)
    weight = np.nan_to_num(np.asarray(rr, dtype=float))
    known = rhythm != "unknown"
    in_af = rhythm == "af"
    burden = float(weight[in_af].sum() / weight[known].sum()) if weight[known].sum() > 0 else None
    found = [[float(time[a]), float(time[b])] for a, b in episodes(in_af)]
    return {"af_burden": burden, "af_episode_count": len(found), "af_episodes": found}


def _match(sample: np.ndarray, ref: np.ndarray, symbols: np.ndarray, window: int) -> tuple[np.ndarray, dict]:
    """Each detected beat's reference symbol (None if no reference beat within ``window``), and QRS Se / +P."""
    from wfdb.processing import compare_annotations

    label = np.full(sample.size, None, dtype=object)
    nearest = nearest_reference(sample, ref, window)
    label[nearest >= 0] = symbols[nearest[nearest >= 0]]
    stats: dict[str, float | None] = {"ref_beats": int(ref.size), "qrs_se": None, "qrs_ppv": None}
    if ref.size and sample.size:
        cmp = compare_annotations(ref, sample, window)
        cmp.compare()
        stats["qrs_se"], stats["qrs_ppv"] = float(cmp.sensitivity), float(cmp.positive_predictivity)
    return label, stats


def write_beats(out: Path, name: str, columns: dict) -> Path:
    """Write (replace) a recording's partition of the beat dataset."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = out / "beats" / f"recording={name}"
    folder.mkdir(parents=True, exist_ok=True)
    schema = pa.schema(
        [
            ("sample", pa.int64()),
            ("time", pa.float64()),
            ("rr", pa.float64()),
            ("score", pa.float64()),
            ("threshold", pa.float64()),
            ("flag", pa.bool_()),
            ("learning", pa.bool_()),
            ("mode", pa.string()),
            ("distance", pa.float64()),
            ("rhythm", pa.string()),
            ("quality", pa.string()),
            ("heart_rate", pa.float64()),
            ("label", pa.string()),
            ("aami", pa.string()),
        ]
    )
    # from_pandas: NaN (no threshold while learning or adapted, no distance unless adapted) is written as null
    table = pa.table(
        {
            k: pa.array(v.tolist() if v.dtype == object else v, type=schema.field(k).type, from_pandas=True)
            for k, v in columns.items()
        },
        schema=schema,
    )
    path = folder / "part-0.parquet"
    tmp = folder / ".part-0.parquet.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def forget_beats(out: Path, name: str) -> None:
    """Remove a recording's beats (it failed this time, so the old ones no longer stand)."""
    path = out / "beats" / f"recording={name}" / "part-0.parquet"
    path.unlink(missing_ok=True)


def row_path(out: Path, name: str) -> Path:
    return out / "summary" / f"{name}.json"


def write_row(out: Path, row: dict) -> None:
    """Write (atomically) a recording's summary row."""
    path = row_path(out, row["recording"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(row, indent=1, default=_plain))
    os.replace(tmp, path)


def read_row(out: Path, name: str) -> dict | None:
    """The summary row of an earlier run, or None (none, or unreadable)."""
    try:
        return json.loads(row_path(out, name).read_text())
    except (OSError, ValueError):
        return None


def write_summary(out: Path, rows: list[dict]) -> Path:
    """``summary.parquet`` and ``summary.csv`` of this run's recordings.

    The settings, the lists (AF episodes, relearning times) and the alarm scores stay in the JSON rows only.
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    json_only = ("settings", "stamp", "af_episodes", "relearned_at_s", "alarm_scores")
    keys = list(dict.fromkeys(k for row in rows for k in row if k not in json_only))
    table = pa.table({k: [row.get(k) for row in rows] for k in keys}) if rows else pa.table({})
    pq.write_table(table, out / "summary.parquet")
    pcsv.write_csv(table, out / "summary.csv")
    return out / "summary.parquet"


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
