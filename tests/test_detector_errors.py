"""Bad input gets a clear error naming the problem."""

from __future__ import annotations

import numpy as np
import pytest

from ecgedge import LSTMAutoencoderDetector

TINY = {"hidden_size": 4, "latent_size": 2, "max_epochs": 1, "device": "cpu"}


@pytest.fixture(scope="module")
def beats():
    return np.random.RandomState(0).randn(20, 30).astype(np.float32)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_beats(beats, value):
    bad = beats.copy()
    bad[2, 5] = value
    with pytest.raises(ValueError, match="NaN|infinity"):
        LSTMAutoencoderDetector(**TINY).fit(bad)


def test_wrong_dimensionality(beats):
    with pytest.raises(ValueError, match="2D array"):
        LSTMAutoencoderDetector(**TINY).fit(beats[0])
    with pytest.raises(ValueError, match="dim"):
        LSTMAutoencoderDetector(**TINY).fit(beats[None])


def test_empty_input():
    with pytest.raises(ValueError, match="0 sample"):
        LSTMAutoencoderDetector(**TINY).fit(np.empty((0, 30)))


def test_beat_length_differs_from_fit(beats):
    detector = LSTMAutoencoderDetector(**TINY).fit(beats)
    with pytest.raises(ValueError, match="30 features"):
        detector.score_samples(beats[:, :25])


@pytest.mark.parametrize("device", ["tpu", "banana", "cuda:x"])
def test_unknown_device(beats, device):
    with pytest.raises(ValueError, match="device"):
        LSTMAutoencoderDetector(**{**TINY, "device": device}).fit(beats)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="machine has CUDA")
def test_cuda_requested_without_gpu(beats):
    with pytest.raises(ValueError, match="CUDA is not available"):
        LSTMAutoencoderDetector(**{**TINY, "device": "cuda"}).fit(beats)


def test_invalid_hyperparameter(beats):
    with pytest.raises(ValueError, match="cell"):
        LSTMAutoencoderDetector(**TINY, cell="transformer").fit(beats)
