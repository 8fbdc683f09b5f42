"""Annotated beats of a WFDB directory, AAMI classes, EC57-style flag statistics and fixed-time windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgedge.analysis.beats import cut_recording
from ecgedge.analysis.ec57 import aami_class
from ecgedge.beatformat import BeatFormat
from ecgedge.datasets import default_record_path, load_annotated_beats, load_wfdb_record
from ecgedge.evaluation import aami_report

BUNDLED = default_record_path().parent  # MIT-BIH record 100, shipped with the package
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mitdb"
FIXED = BeatFormat(length=59, before_r=0.25, after_r=0.40, source_fs=360.0, r_polarity=1, window_unit="s")


def test_aami_classes_follow_ec57():
    classes = aami_class(["N", "L", "R", "e", "j", "A", "a", "J", "S", "V", "E", "F", "/", "f", "Q", "?"])
    assert classes.tolist() == ["N"] * 5 + ["SVEB"] * 4 + ["VEB"] * 2 + ["F"] + ["Q"] * 4


def test_record_100_beats_carry_class_position_and_rhythm():
    beats = load_annotated_beats(BUNDLED, FIXED)
    record = load_wfdb_record(BUNDLED / "100")
    assert beats.records == ["100"] and beats.X.shape == (len(beats), 59) and beats.X.dtype == np.float32
    # the first beat only sizes the next window; the last one's window runs past the record's end
    np.testing.assert_array_equal(beats.sample, record.beat_samples[1:-1])
    assert {c: int(np.sum(beats.aami == c)) for c in ("N", "SVEB", "VEB")} == {"N": 2237, "SVEB": 33, "VEB": 1}
    rr = np.diff(record.beat_samples) / 360.0
    np.testing.assert_allclose(beats.rr_before, rr[:-1])
    np.testing.assert_allclose(beats.rr_after, rr[1:])
    assert np.allclose(beats.time, beats.sample / 360.0)
    premature = beats[beats.aami == "SVEB"]
    assert np.median(premature.rr_before) < 0.8 * np.median(beats.rr_before)  # atrial premature beats come early


def test_fixed_window_keeps_its_width_whatever_the_rate():
    fs = 360.0
    t = np.arange(int(20 * fs)) / fs
    peaks = np.concatenate([np.arange(1, 10, 0.6), np.arange(10, 19, 1.2)])  # 100 then 50 beats a minute
    signal = sum(np.exp(-((t - p) ** 2) / (2 * 0.01**2)) for p in peaks)
    for beat_format, same in ((FIXED, True), (BeatFormat(length=59, r_polarity=1), False)):
        beats = cut_recording(signal, np.round(peaks * fs).astype(int), fs, beat_format)
        fast, slow = beats[3].model_input, beats[-3].model_input
        assert np.allclose(fast, slow, atol=1e-3) is same
    assert beats[0].window.size > 0
    assert BeatFormat.from_dict(FIXED.to_dict()) == FIXED
    with pytest.raises(ValueError, match="window_unit"):
        BeatFormat(length=10, window_unit="ms")


def test_missing_records_and_leads_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no WFDB records"):
        load_annotated_beats(tmp_path, FIXED)
    with pytest.raises(FileNotFoundError, match="record.*999"):
        load_annotated_beats(BUNDLED, FIXED, records=["100", "999"])
    with pytest.raises(ValueError, match="record 100: lead 'V9'"):
        load_annotated_beats(BUNDLED, FIXED, lead="V9")


def test_aami_report_counts_by_hand():
    aami = np.array(["N"] * 8 + ["VEB"] * 2 + ["SVEB"] * 2 + ["Q"])
    flagged = np.array([True] + [False] * 7 + [True, True] + [True, False] + [True])
    scores = np.where(flagged, -1.0, 1.0)
    report = aami_report(aami, flagged, scores, hours=0.5)
    assert report["se_VEB"] == 1.0 and report["se_SVEB"] == 0.5 and report["se_F"] is None
    assert report["n_flagged_share"] == 1 / 8 and report["false_flags_per_hour"] == 2.0
    assert report["positive_predictivity"] == 3 / 4  # the flagged Q beat counts for neither side
    assert 0.5 < report["auc"] < 1.0
    with pytest.raises(ValueError, match="must match"):
        aami_report(aami[:3], flagged, scores, 1.0)


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/mitdb is absent")
def test_a_pvc_rich_record_in_fixed_windows():
    beats = load_annotated_beats(SHARED, FIXED, records=["208"])
    assert int(np.sum(beats.aami == "VEB")) > 900
    width = lambda X: np.sum(np.abs(X - np.median(X, axis=1, keepdims=True)) > 0.3, axis=1)  # noqa: E731
    assert np.median(width(beats.X[beats.aami == "VEB"])) > np.median(width(beats.X[beats.aami == "N"]))
