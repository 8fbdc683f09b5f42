"""The detector honours the scikit-learn contract: estimator checks, Pipeline, GridSearchCV, pickling."""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from ecgedge import LSTMAutoencoderDetector
from ecgedge.model_selection import NoveltyKFold, novelty_scorer
from ecgedge.preprocessing import BeatResampler

TINY = {"hidden_size": 4, "latent_size": 2, "max_epochs": 2, "batch_size": 16, "device": "cpu"}


# ``contamination`` promises a share of *new* normal beats flagged: offset_ is set on the
# leave-one-out training scores, as LocalOutlierFactor(novelty=True) would be, so a refit's
# in-sample predict flags fewer of its own training beats than these two checks count.
IN_SAMPLE_CONTAMINATION = "offset_ is set on leave-one-out training scores (the share of new beats flagged)"


def _expected_failures(estimator) -> dict:
    if isinstance(estimator, LSTMAutoencoderDetector):
        return {"check_outliers_train": IN_SAMPLE_CONTAMINATION, "check_outliers_fit_predict": IN_SAMPLE_CONTAMINATION}
    return {}


@parametrize_with_checks([LSTMAutoencoderDetector(**TINY), BeatResampler(8)], expected_failed_checks=_expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_contamination_is_the_share_of_new_normal_beats_flagged(ecg5000):
    X, y, X_test, y_test = ecg5000
    detector = LSTMAutoencoderDetector(
        contamination=0.05, hidden_size=16, latent_size=8, max_epochs=15, random_state=0, device="cpu"
    )
    own = detector.fit_predict(X[y == 1])
    assert detector.offset_ == pytest.approx(np.percentile(detector.training_scores_, 5.0), rel=1e-6)
    assert detector.training_scores_.shape == (int((y == 1).sum()),)
    assert abs(np.mean(own == -1) - 0.05) <= 1 / len(own)  # its own beats, judged leave-one-out
    held_out = np.mean(detector.predict(X_test[y_test == 1]) == -1)
    assert 0.01 <= held_out <= 0.10, held_out  # in-sample scores put it at 60 %
    in_sample = np.percentile(detector.score_samples(X[y == 1]), 5.0)
    assert np.mean(detector.score_samples(X_test[y_test == 1]) < in_sample) > 0.3


def test_learns_normal_beats(small_detector, test_subset):
    X, y = test_subset
    scores = small_detector.score_samples(X)
    assert roc_auc_score(y == 1, scores) > 0.8
    assert np.allclose(small_detector.decision_function(X), scores - small_detector.offset_)
    assert set(np.unique(small_detector.predict(X))) <= {-1, 1}


def test_loss_history_is_recorded(small_detector):
    assert len(small_detector.loss_curve_) == len(small_detector.validation_loss_curve_) > 0
    assert small_detector.loss_curve_[-1] < small_detector.loss_curve_[0]
    assert 0 <= small_detector.best_epoch_ < len(small_detector.loss_curve_)


def test_cpu_training_is_deterministic(ecg5000):
    X = ecg5000[0][ecg5000[1] == 1][:64]
    a = LSTMAutoencoderDetector(**TINY, random_state=3).fit(X).score_samples(X)
    b = LSTMAutoencoderDetector(**TINY, random_state=3).fit(X).score_samples(X)
    c = LSTMAutoencoderDetector(**TINY, random_state=4).fit(X).score_samples(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_reconstruct_is_in_input_units(small_detector, test_subset):
    X = test_subset[0][:5]
    recon = small_detector.reconstruct(X)
    assert recon.shape == X.shape
    # beats are z-normalised inside, so a front end's gain and offset carry through to the output
    np.testing.assert_allclose(small_detector.reconstruct(X * 3.0 + 10.0), recon * 3.0 + 10.0, rtol=1e-4, atol=1e-4)


def test_pickle_and_joblib_roundtrip(small_detector, test_subset, tmp_path):
    X = test_subset[0]
    expected = small_detector.score_samples(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(small_detector)).score_samples(X), expected)
    joblib.dump(small_detector, tmp_path / "d.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "d.joblib").score_samples(X), expected)


def test_any_beat_length(ecg5000):
    """Nothing assumes 140 samples: 90-sample beats train and score with the defaults' code path."""
    X, y = ecg5000[0], ecg5000[1]
    short = BeatResampler(90).fit_transform(X)
    detector = LSTMAutoencoderDetector(**{**TINY, "max_epochs": 5}, random_state=0).fit(short[y == 1])
    assert detector.n_features_in_ == 90
    assert detector.score_samples(short).shape == (len(short),)


def test_another_source_and_length_with_the_defaults():
    """MIT-BIH record 100 at 187 samples a beat (not a multiple of the 4-sample frames), no code change."""
    from ecgedge.beatformat import BeatFormat
    from ecgedge.datasets import cut_annotated_beats, load_wfdb_record

    X, symbols = cut_annotated_beats(load_wfdb_record(), BeatFormat(length=187))
    abnormal = symbols != "N"
    half = len(X) // 2
    detector = LSTMAutoencoderDetector(max_epochs=10, random_state=0, device="cpu").fit(X[:half][~abnormal[:half]])
    scores = detector.score_samples(X[half:])
    assert detector.n_features_in_ == 187 and detector.reconstruct(X[:3]).shape == (3, 187)
    # the premature (A, V) beats of the second half rank below its normal beats
    assert roc_auc_score(abnormal[half:], -scores) > 0.9


def test_pipeline_and_grid_search_on_real_beats(ecg5000):
    X, y = ecg5000[0], ecg5000[1]
    pipe = make_pipeline(BeatResampler(70), LSTMAutoencoderDetector(**TINY, random_state=0))
    search = GridSearchCV(
        pipe,
        {"lstmautoencoderdetector__loss": ["mse", "l1"]},
        scoring=novelty_scorer("roc_auc"),
        cv=NoveltyKFold(3, random_state=0),
        refit=True,
    )
    search.fit(X, y)
    assert set(search.best_params_) == {"lstmautoencoderdetector__loss"}
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    # refit trained on all beats given; NoveltyKFold kept anomalies out of every training fold
    assert search.best_estimator_.score_samples(X[:4]).shape == (4,)


def test_novelty_kfold_never_trains_on_anomalies(ecg5000):
    y = ecg5000[1]
    folds = list(NoveltyKFold(5, random_state=0).split(None, y))
    assert len(folds) == 5
    for train, test in folds:
        assert np.all(y[train] == 1)
        assert (y[test] == 1).any() and (y[test] != 1).any()
        assert not set(train) & set(test)
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested) == list(range(len(y)))


def test_novelty_scorer_rejects_unknown_metric():
    with pytest.raises(ValueError, match="unknown metric"):
        novelty_scorer("accuracy")


def test_leave_one_out_scores_do_not_depend_on_the_batch(ecg5000, monkeypatch):
    import ecgedge.detector

    X = ecg5000[0][ecg5000[1] == 1][:60]
    whole = LSTMAutoencoderDetector(**TINY, random_state=0).fit(X)
    monkeypatch.setattr(ecgedge.detector, "_SCORE_BATCH", 7)
    batched = LSTMAutoencoderDetector(**TINY, random_state=0).fit(X)
    expected = whole.module_.reference.training_scores.numpy()
    np.testing.assert_allclose(batched.module_.reference.training_scores.numpy(), expected, rtol=1e-6)
    assert batched.offset_ == pytest.approx(whole.offset_, rel=1e-6)
