"""Torch backend: the bundle's detector file run eagerly (the reference path).

Imports torch, so it is only for machines that have it; the device path uses
the ONNX Runtime or TensorRT backends.
"""

from __future__ import annotations

import numpy as np

from ecgedge.runtime.bundle import Bundle
from ecgedge.runtime.scorer import Scorer


class TorchScorer(Scorer):
    """Scores beats with the trained torch module in FP32 on the CPU.

    Parameters
    ----------
    bundle : Bundle
        The verified bundle; it must hold the detector file.
    threads : int or None
        ``torch.set_num_threads`` value (``None`` leaves torch's setting).
    """

    backend = "torch"

    def __init__(self, bundle: Bundle, threads: int | None = None) -> None:
        import torch

        from ecgedge.nn import BeatScorer
        from ecgedge.persistence import load

        super().__init__(bundle, "fp32")
        if threads is not None:
            torch.set_num_threads(threads)
        detector = load(bundle.file("detector"))
        self.module = BeatScorer(detector.module_.float(), detector.loss).eval()

    def _score(self, beats: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.module(torch.from_numpy(beats)).numpy()
