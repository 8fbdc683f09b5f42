"""The alarms scored against reference annotations as ``ecgedge evaluate --wfdb`` scores them (ANSI/AAMI EC57 style)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgedge.analysis.alarms import AlarmLimits
from ecgedge.analysis.signal_alarms import asystole_alarms
from ecgedge.analysis.signal_quality import adc_rails

MITDB = Path(__file__).resolve().parents[2] / "shared" / "data" / "mitdb"
needs_mitdb = pytest.mark.skipif(
    not (MITDB / "207.hea").exists(), reason=f"the shared MIT-BIH records 100 and 207 are not at {MITDB}"
)


@pytest.fixture(scope="module")
def scored():
    """Records 100 and 207 of the shared MIT-BIH copy, found, judged (5 minutes of learning) and scored."""
    from ecgedge import load
    from ecgedge.arrhythmia import judge_records
    from ecgedge.datasets import load_annotated_beats, load_wfdb_record
    from ecgedge.evaluation_alarms import AlarmTrace, score_record
    from ecgedge.models import population_model_path
    from ecgedge.population import POPULATION_FORMAT

    model = load(population_model_path())
    beats = load_annotated_beats(MITDB, POPULATION_FORMAT, records=["100", "207"], positions="bridge")
    scores = model.score_samples(beats.X)
    trace = AlarmTrace(beats.record, beats.sample, scores, model.offset_)
    judge_records(beats, scores, model.offset_, adapt_s=300.0, beat_format=POPULATION_FORMAT, observe=trace)
    return {
        name: score_record(load_wfdb_record(MITDB / name, lead="MLII"), trace, name, learning_s=300.0)
        for name in ("100", "207")
    }


@needs_mitdb
def test_every_ventricular_flutter_episode_of_207_raises_vf_within_10_s(scored):
    vf = scored["207"]["vf"]
    assert vf["reference"] == 6 and vf["found"] == 6  # (VFL at 0:41, 0:55, 4:02, 4:08, 4:30 and 25:41
    assert max(vf["delays_s"]) < 10.0  # raised at the end of its first 4 s window of flutter, or still on
    assert vf["false"] == 0 and scored["207"]["asystole"]["reference"] == 0  # flutter is no asystole


@needs_mitdb
def test_record_100_raises_no_high_priority_alarm_and_its_heart_rate_follows_the_reference(scored):
    from ecgedge.analysis.alarms import PRIORITY

    record = scored["100"]
    assert {k: record[k]["alarms"] for k in PRIORITY if PRIORITY[k] == "high"} == dict.fromkeys(
        ("asystole", "vf", "vt", "brady", "tachy"), 0
    )
    assert record["couplet"]["reference"] == 0 and record["run"]["reference"] == 0
    rate = record["heart_rate"]
    assert (
        rate["beats"] > 1500 and rate["abs_error_sum"] / rate["beats"] < 1.0 and rate["within_5"] / rate["beats"] > 0.97
    )


def test_a_silence_raises_asystole_once_it_outlasts_the_limit_and_not_where_the_adc_is_railed():
    fs, rng = 250.0, np.random.default_rng(0)
    counts = np.round(rng.normal(0.0, 2.0, int(20 * fs))).astype(np.int64)  # baseline noise, 200 counts a mV
    peaks = np.array([1.0, 2.0, 9.0, 10.0, 11.0]) * fs  # 7 s without a beat from 2 s
    (alarm,) = asystole_alarms(counts, fs, 200.0, adc_rails(12, 0), peaks.astype(int), 4.0)
    assert alarm[:2] == (500, 2250) and 6.0 * fs < alarm[2] <= 6.1 * fs
    railed = counts.copy()
    railed[600:2300] = 2047  # the ADC pinned at its rail over the silence: no signal, not asystole
    assert asystole_alarms(railed, fs, 200.0, adc_rails(12, 0), peaks.astype(int), 4.0) == []
    still = counts.copy()
    still[600:2300] = 7  # every sample the same count: nothing reaches the ADC, not asystole
    assert asystole_alarms(still, fs, 200.0, adc_rails(12, 0), peaks.astype(int), 4.0) == []
    still[1300:] = counts[1300:]  # 2.8 s without a signal from 2.4 s, then the baseline with its noise
    later = (np.array([1.0, 2.0, 12.0, 13.0]) * fs).astype(int)
    (alarm,) = asystole_alarms(still, fs, 200.0, adc_rails(12, 0), later, 4.0)
    assert 9.9 * fs < alarm[2] <= 10.0 * fs  # 4 s after the check last said no signal (two still seconds, to 6 s)


def test_parts_read_from_a_little_before_give_the_one_pass_vf_windows_and_asystole_blocks():
    """What ``scan`` relies on: its segments, each read from 40 s before, give the windows and blocks of one pass."""
    import wfdb

    from ecgedge.analysis.signal_alarms import asystole_blocks, vf_windows
    from ecgedge.datasets import default_record_path

    record = wfdb.rdrecord(str(default_record_path()), channels=[0], physical=False, sampto=150 * 360)
    counts, fs = record.d_signal[:, 0].astype(np.int64), 360.0
    gain, baseline = float(record.adc_gain[0]), int(record.baseline[0])
    t = np.arange(12 * 360) / fs
    counts[60 * 360 : 72 * 360] = np.round(baseline + gain * np.sin(2 * np.pi * 4.5 * t))  # 12 s of flutter waves
    counts[100 * 360 : 107 * 360] = baseline + np.random.RandomState(0).randint(-2, 3, 7 * 360)  # a flat line
    mv, rails = (counts - baseline) / gain, adc_rails(int(record.adc_res[0]), baseline)
    whole = (*vf_windows(mv, fs), *asystole_blocks(counts, fs, gain, rails))
    parts = []
    for start, stop in ((0, 18000), (18000, 36000), (36000, 54000)):
        first = max(0, start - 40 * 360)
        ends, waves = vf_windows(mv[first:stop], fs, first)
        blocks, readable = asystole_blocks(counts[first:stop], fs, gain, rails, first)
        vf_mine, block_mine = (ends > start) & (ends <= stop), (blocks > start) & (blocks <= stop)
        parts.append((ends[vf_mine], waves[vf_mine], blocks[block_mine], readable[block_mine]))
    for one_pass, joined in zip(whole, zip(*parts, strict=True), strict=True):
        np.testing.assert_array_equal(one_pass, np.concatenate(joined))
    assert whole[1][(whole[0] > 64 * 360) & (whole[0] <= 72 * 360)].all() and not whole[1][whole[0] < 60 * 360].any()
    assert whole[3].all()  # a flat line, never still, can show an asystole


def test_annotations_of_rhythm_changes_only_are_read_and_score_nothing(tmp_path):
    """A record annotated with a rhythm change and no beat: no reference beat, one rhythm, empty figures."""
    import wfdb

    from ecgedge.datasets import read_annotations
    from ecgedge.evaluation_alarms import AlarmTrace, Reference, reference_alarms, score_alarms

    wfdb.wrann("quiet", "atr", np.array([10]), symbol=["+"], aux_note=["(N"], write_dir=str(tmp_path))
    annotations = read_annotations(tmp_path / "quiet")
    assert annotations is not None and annotations.beat_samples.size == 0
    assert annotations.rhythm_samples.tolist() == [10] and annotations.rhythms.tolist() == ["(N"]
    assert read_annotations(tmp_path / "absent") is None
    reference = Reference(*annotations, fs=360.0, n_samples=3600)
    assert all(found == [] for found in reference_alarms(reference, AlarmLimits()).values())
    trace = AlarmTrace(np.empty(0, str), np.empty(0, np.int64), np.empty(0), 0.0)
    scores = score_alarms(
        reference, trace, "quiet", learning_s=0.0, limits=AlarmLimits(), vf=[], asystole=[], peaks=np.empty(0)
    )
    assert (
        scores["run"] == {"reference": 0, "found": 0, "detected": 0, "true": 0} and scores["heart_rate"]["beats"] == 0
    )


@needs_mitdb
def test_the_report_counts_the_false_couplets_and_runs_beside_the_ec57_figures(scored):
    from ecgedge.evaluation_alarms import format_alarm_report

    false = [sum(p[k]["detected"] - p[k]["true"] for p in scored.values()) for k in ("couplet", "run")]
    assert f"False detections: {false[0]} couplets and {false[1]} runs overlap no reference" in format_alarm_report(
        scored
    )
