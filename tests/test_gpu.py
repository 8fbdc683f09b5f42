"""GPU training; skipped on machines without CUDA (CI has none)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from ecgedge import LSTMAutoencoderDetector

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_auto_device_trains_on_the_gpu_and_weights_end_on_the_cpu(ecg5000, tmp_path):
    X, y = ecg5000[0], ecg5000[1]
    detector = LSTMAutoencoderDetector(max_epochs=20, random_state=0, device="auto").fit(X[y == 1])
    assert detector.device_.startswith("cuda")
    assert all(p.device.type == "cpu" for p in detector.module_.parameters())
    scores = detector.score_samples(ecg5000[2][:200])
    restored = pickle.loads(pickle.dumps(detector))
    np.testing.assert_array_equal(restored.score_samples(ecg5000[2][:200]), scores)
    detector.save(tmp_path / "gpu.npz")
    from ecgedge import load

    np.testing.assert_array_equal(load(tmp_path / "gpu.npz").score_samples(ecg5000[2][:200]), scores)
