"""Thresholds: unlabelled and labelled rules, per-patient calibration, ``ecgedge calibrate``."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.metrics import f1_score, recall_score

from ecgedge import calibration as cal
from ecgedge.cli import main
from ecgedge.export import export_bundle
from ecgedge.runtime import load_scorer, read_bundle


@pytest.fixture()
def rng():
    return np.random.default_rng(0)


def test_robust_rule_is_the_detectors_auto_offset(ecg5000):
    from ecgedge import LSTMAutoencoderDetector
    from ecgedge.detector import AUTO_MADS

    X = ecg5000[0][ecg5000[1] == 1][:80]
    # without a memory of normal beats, "auto" calibrates on the training scores themselves
    detector = LSTMAutoencoderDetector(
        hidden_size=4, latent_size=2, max_epochs=2, memory_size=0, random_state=0, device="cpu"
    ).fit(X)
    assert cal.robust_threshold(detector.score_samples(X), k=AUTO_MADS) == pytest.approx(detector.offset_, rel=1e-6)


def test_contamination_flags_that_share(rng):
    scores = rng.normal(size=1000)
    threshold = cal.contamination_threshold(scores, 0.1)
    assert np.mean(scores < threshold) == pytest.approx(0.1, abs=0.002)


@pytest.mark.parametrize("target", [0.001, 0.01, 0.05, 0.2])
def test_false_alarm_rate_is_met_and_tight(rng, target):
    scores = rng.normal(size=997)
    threshold = cal.false_alarm_threshold(scores, target)
    assert np.mean(scores < threshold) <= target
    # no higher observed score would still meet the target
    higher = np.sort(scores)[np.sort(scores) > threshold]
    assert higher.size == 0 or np.mean(scores < higher[0]) > target


def test_mean_k_std_rule(rng):
    scores = rng.normal(loc=-0.2, scale=0.05, size=500)
    assert cal.mean_std_threshold(scores, k=3) == pytest.approx(scores.mean() - 3 * scores.std(ddof=1))


def _labelled(rng):
    normal = rng.normal(0.0, 1.0, 400).round(1)  # rounding makes ties
    abnormal = rng.normal(-2.5, 1.0, 100).round(1)
    return np.r_[normal, abnormal], np.r_[np.zeros(400, bool), np.ones(100, bool)]


def _brute_force(scores, is_anomaly, metric):
    candidates = np.r_[np.unique(scores), np.nextafter(scores.max(), np.inf)]
    values = [metric(is_anomaly, scores < t) for t in candidates]
    return max(values)


def test_best_f1_matches_a_brute_force_sweep(rng):
    scores, is_anomaly = _labelled(rng)
    threshold = cal.best_f1_threshold(scores, is_anomaly)
    assert f1_score(is_anomaly, scores < threshold) == pytest.approx(_brute_force(scores, is_anomaly, f1_score))


def test_youden_matches_a_brute_force_sweep(rng):
    def youden(y, flagged):
        return recall_score(y, flagged) + recall_score(~y, ~flagged) - 1

    scores, is_anomaly = _labelled(rng)
    threshold = cal.youden_threshold(scores, is_anomaly)
    assert youden(is_anomaly, scores < threshold) == pytest.approx(_brute_force(scores, is_anomaly, youden))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cal.false_alarm_threshold([0.1, 0.2], 0.0), "target_far"),
        (lambda: cal.contamination_threshold([0.1, 0.2], 0.7), "contamination"),
        (lambda: cal.mean_std_threshold([0.1], 3), "at least 2"),
        (lambda: cal.robust_threshold([0.1, np.nan], 5), "NaN"),
        (lambda: cal.best_f1_threshold([0.1, 0.2], [True, True]), "both normal and abnormal"),
        (lambda: cal.youden_threshold([0.1, 0.2], [1, 2]), "boolean"),
        (lambda: cal.youden_threshold([[0.1, 0.2]], [True, False]), "1-D"),
    ],
)
def test_bad_input_is_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- per-patient calibration ------------------------------------------------------------------------


def test_patient_threshold_shrugs_off_a_few_abnormal_beats(rng):
    clean = rng.normal(-0.05, 0.01, 120)
    dirty = clean.copy()
    dirty[rng.choice(120, 6, replace=False)] = -1.0  # 5% of the window are strongly abnormal beats
    robust = [cal.PatientCalibrator(n_beats=120).update(s) for s in (clean, dirty)]
    assert abs(robust[1] - robust[0]) < 0.01  # within one standard deviation of the normal scores
    non_robust = [cal.mean_std_threshold(s, k=5) for s in (clean, dirty)]
    assert abs(non_robust[1] - non_robust[0]) > 0.5  # what a mean/std rule would have done


def test_patient_calibrator_streams_then_fixes_the_threshold(rng):
    calibrator = cal.PatientCalibrator(n_beats=50, fallback=-1.0)
    scores = rng.normal(-0.05, 0.01, 80)
    for i, score in enumerate(scores[:49]):
        assert calibrator.update(score) is None and calibrator.threshold == -1.0 and calibrator.n_seen == i + 1
    threshold = calibrator.update(scores[49:])  # the rest of the window plus beats past it
    assert calibrator.ready and calibrator.n_seen == 50
    assert threshold == pytest.approx(cal.robust_threshold(scores[:50]))
    assert calibrator.update([-5.0]) == threshold  # later beats do not move it
    calibrator.reset()
    assert not calibrator.ready and calibrator.threshold == -1.0


def test_patient_floor_keeps_the_alarm_alive(rng):
    calibrator = cal.PatientCalibrator(n_beats=10, floor=-0.2)
    assert calibrator.update(rng.normal(-3.0, 1.0, 10)) == -0.2


@pytest.mark.parametrize(("kwargs", "message"), [({"n_beats": 1}, "n_beats"), ({"k": 0}, "k must")])
def test_patient_calibrator_validates(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cal.PatientCalibrator(**kwargs)


# --- ecgedge calibrate ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, small_detector):
    return export_bundle(small_detector, tmp_path_factory.mktemp("bundle"))


def test_calibrate_cli_changes_the_one_threshold_and_no_graph(bundle, ecg5000, tmp_path):
    X_test, y_test = ecg5000[2], ecg5000[3]
    normal = tmp_path / "normal.npy"
    np.save(normal, X_test[y_test == 1][:400])
    graphs = {name: (bundle / name).read_bytes() for name in ("model.onnx", "model.int8.onnx", "model.fp16.onnx")}
    result = CliRunner().invoke(main, ["calibrate", str(bundle), "--normal", str(normal), "--target-far", "0.05"])
    assert result.exit_code == 0, result.output
    updated = read_bundle(bundle)  # checksums still verify
    fp32_scores = load_scorer(bundle).score_samples(X_test[y_test == 1][:400])
    assert updated.threshold == cal.false_alarm_threshold(fp32_scores, 0.05)
    assert updated.manifest["calibration"]["method"] == "target_far"
    assert all((bundle / name).read_bytes() == data for name, data in graphs.items())  # graphs hold no threshold
    for precision in ("fp32", "int8", "fp16"):
        scorer = load_scorer(bundle, precision=precision)
        assert scorer.offset_ == updated.threshold
        np.testing.assert_array_equal(
            scorer.predict(X_test[:300]), np.where(scorer.score_samples(X_test[:300]) < updated.threshold, -1, 1)
        )


def test_calibrate_cli_labelled_and_fixed_rules(bundle):
    runner = CliRunner()
    result = runner.invoke(main, ["calibrate", str(bundle), "--normal", "ecg5000", "--best", "youden"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["calibrate", str(bundle), "--normal", "ecg5000", "--fixed", "-0.25"])
    assert result.exit_code == 0, result.output
    assert read_bundle(bundle).threshold == -0.25
    result = runner.invoke(main, ["calibrate", str(bundle), "--normal", "ecg5000", "--fixed", "-1", "--k-std", "3"])
    assert result.exit_code == 2 and "exactly one of" in result.output
    result = runner.invoke(main, ["calibrate", str(bundle), "--normal", "ecg5000", "--target-far", "1.5"])
    assert result.exit_code == 1 and "target_far" in result.output
    before = (bundle / "bundle.json").read_bytes()
    result = runner.invoke(main, ["calibrate", str(bundle), "--normal", "ecg5000", "--fixed", "5000"])
    assert result.exit_code == 1 and "far outside the training scores" in result.output
    assert (bundle / "bundle.json").read_bytes() == before  # refused before anything was written


def test_calibrate_on_the_training_beats_uses_the_detectors_own_calibration_scores(bundle, small_detector):
    from ecgedge.detector import AUTO_MADS

    scores = read_bundle(bundle).training_scores()
    assert scores.shape == (int(small_detector.module_.reference.centres.shape[0]),)
    # the detector's own "auto" rule, applied to them, gives back its threshold
    result = CliRunner().invoke(main, ["calibrate", str(bundle), "--normal", "training", "--robust-k", str(AUTO_MADS)])
    assert result.exit_code == 0, result.output
    assert read_bundle(bundle).threshold == pytest.approx(small_detector.offset_, rel=1e-5)
    result = CliRunner().invoke(main, ["calibrate", str(bundle), "--normal", "training", "--best", "f1"])
    assert result.exit_code == 2 and "labelled" in result.output
