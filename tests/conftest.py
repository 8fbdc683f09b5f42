"""Shared fixtures: real ECG5000 beats and a small detector trained once per session."""

from __future__ import annotations

import numpy as np
import pytest
import torch

torch.set_num_threads(2)

FAST = {"hidden_size": 16, "latent_size": 8, "max_epochs": 15, "random_state": 0, "device": "cpu"}


@pytest.fixture(scope="session")
def ecg5000():
    """(X_train, y_train, X_test, y_test) of the bundled UCR ECG5000."""
    from ecgedge.datasets import load_ecg5000

    return (*load_ecg5000("train", return_X_y=True), *load_ecg5000("test", return_X_y=True))


@pytest.fixture(scope="session")
def small_detector(ecg5000):
    """A quickly trained detector on the 292 normal ECG5000 training beats."""
    from ecgedge import LSTMAutoencoderDetector

    X, y = ecg5000[0], ecg5000[1]
    return LSTMAutoencoderDetector(**FAST).fit(X[y == 1])


@pytest.fixture(scope="session")
def test_subset(ecg5000):
    """300 test beats, half normal, half abnormal, fixed."""
    X, y = ecg5000[2], ecg5000[3]
    rng = np.random.RandomState(0)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == 1), 150, False), rng.choice(np.flatnonzero(y != 1), 150, False)])
    return X[idx], y[idx]
