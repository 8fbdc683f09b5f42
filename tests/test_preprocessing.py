"""Beat transformers in scikit-learn pipelines: scale each beat, never each sample position."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ecgedge.preprocessing import BeatScaler


def test_beat_scaler_in_a_pipeline_keeps_the_detector_s_scores(small_detector, ecg5000, test_subset):
    X, y = test_subset
    alone = small_detector.score_samples(X)
    piped = make_pipeline(BeatScaler(), small_detector).score_samples(X)  # stateless: nothing to fit
    np.testing.assert_allclose(piped, alone, rtol=1e-4, atol=1e-6)
    # the pitfall the module documents: StandardScaler scales columns, reshaping every beat
    columns = make_pipeline(StandardScaler().fit(ecg5000[0][ecg5000[1] == 1]), small_detector).score_samples(X)
    assert roc_auc_score(y != 1, -columns) < roc_auc_score(y != 1, -alone) - 0.01


def test_beat_scaler_gives_each_beat_mean_0_and_std_1(ecg5000):
    X = ecg5000[2][:50] * 7.0 + 3.0
    Z = BeatScaler().fit_transform(X)
    assert Z.dtype == X.dtype and Z.shape == X.shape
    np.testing.assert_allclose(Z.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(Z.std(axis=1), 1, atol=1e-5)
