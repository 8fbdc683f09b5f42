"""Loading a detector from its pickle-free model file (format: :mod:`ecgedge.model_file`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgedge.model_file import ModelFileError, read_model_file, save_detector

__all__ = ["ModelFileError", "load", "read_model_file", "save_detector"]


def load(path: str | Path):
    """Load a detector written by :meth:`LSTMAutoencoderDetector.save`.

    Parameters
    ----------
    path : str or Path
        The model file.

    Returns
    -------
    LSTMAutoencoderDetector
        Fitted, on the CPU.

    Raises
    ------
    ModelFileError
        When the file is missing, truncated, altered or of another format.
    """
    import torch

    from ecgedge.detector import LSTMAutoencoderDetector
    from ecgedge.nn import NormalReference

    header, weights = read_model_file(path)
    detector = LSTMAutoencoderDetector(**header["params"])
    module = detector._new_module()
    module.reference = NormalReference(
        torch.from_numpy(weights["reference.centres"].copy()),
        torch.from_numpy(weights["reference.basis"].copy()),
        1.0,
        1.0,
        detector.n_neighbors,
        detector.top_fraction,
        detector.distance_weight,
        torch.from_numpy(weights["reference.training_scores"].copy()),
    )
    module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()})
    detector.module_ = module.eval()
    for name, value in header["fitted"].items():
        setattr(detector, name, value)
    if header["feature_names_in"]:
        detector.feature_names_in_ = np.asarray(header["feature_names_in"], dtype=object)
    return detector
