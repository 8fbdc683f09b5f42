"""The shipped default model: trained with today's defaults, and as good as the README says."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from ecgedge import LSTMAutoencoderDetector, load
from ecgedge.models import default_model_path

TRAINING_ONLY = ("device", "random_state", "verbose")


def test_shipped_model_was_trained_with_the_current_defaults():
    shipped = load(default_model_path()).get_params()
    defaults = LSTMAutoencoderDetector().get_params()
    differing = {k: (shipped[k], v) for k, v in defaults.items() if k not in TRAINING_ONLY and shipped[k] != v}
    assert not differing, f"retrain it (README: ecgedge train --seed 0 --device cpu); differs in {differing}"


def test_shipped_model_separates_the_ucr_test_beats(ecg5000):
    X_test, y_test = ecg5000[2], ecg5000[3]
    detector = load(default_model_path())
    scores = detector.score_samples(X_test)
    assert roc_auc_score(y_test != 1, -scores) >= 0.995  # issue 3's floor
    flags = detector.predict(X_test) == -1
    normal_recall, anomaly_recall = np.mean(~flags[y_test == 1]), np.mean(flags[y_test != 1])
    assert (normal_recall + anomaly_recall) / 2 >= 0.975, (normal_recall, anomaly_recall)
    assert normal_recall >= 0.97 and anomaly_recall >= 0.97, (normal_recall, anomaly_recall)
