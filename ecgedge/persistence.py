"""Pickle-free model files: weights, settings and a checksum in one ``.npz``.

The file is a NumPy ``.npz`` archive read with ``allow_pickle=False``. It holds
every weight tensor under ``weight/<name>`` and a JSON header under
``header``: format version, estimator parameters, fitted attributes, library
versions and the SHA-256 of the weights and header, so a truncated or altered
file is refused with a :class:`ModelFileError`.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

FORMAT = "ecgedge-detector"
FORMAT_VERSION = 4  # 4: the reference holds local patches of normal beats
_FITTED = ("offset_", "n_features_in_", "loss_curve_", "validation_loss_curve_", "best_epoch_", "fit_time_", "device_")


class ModelFileError(ValueError):
    """A model file is missing, truncated, altered or of another format."""


def _digest(weights: dict[str, np.ndarray], header: dict) -> str:
    sha = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    for name in sorted(weights):
        sha.update(name.encode())
        sha.update(np.ascontiguousarray(weights[name]).tobytes())
    return sha.hexdigest()


def save_detector(detector, path: str | Path) -> None:
    """Write a fitted :class:`~ecgedge.LSTMAutoencoderDetector` to ``path``."""
    import sklearn
    import torch
    from sklearn.utils.validation import check_is_fitted

    from ecgedge import __version__

    check_is_fitted(detector)
    weights = {k: v.detach().cpu().numpy() for k, v in detector.module_.state_dict().items()}
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "params": detector.get_params(),
        "fitted": {name: getattr(detector, name) for name in _FITTED},
        "feature_names_in": list(getattr(detector, "feature_names_in_", [])) or None,
        "versions": {"ecgedge": __version__, "torch": torch.__version__, "sklearn": sklearn.__version__},
    }
    header["sha256"] = _digest(weights, header)
    arrays = {f"weight/{k}": v for k, v in weights.items()}
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def read_model_file(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and verify a model file; return its header and weights.

    Raises
    ------
    ModelFileError
        When the file is missing, not an ecgedge model, truncated or altered.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            header = json.loads(archive["header"].tobytes())
            weights = {k.removeprefix("weight/"): archive[k] for k in archive.files if k.startswith("weight/")}
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError) as err:
        raise ModelFileError(f"{path} is not a readable ecgedge model file (truncated or corrupt?): {err}") from err
    if header.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not an ecgedge detector file")
    if header.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path} has format version {header.get('format_version')}, expected {FORMAT_VERSION}")
    expected = header.pop("sha256", None)
    if expected != _digest(weights, header):
        raise ModelFileError(f"{path} failed its checksum: the file was altered or damaged")
    return header, weights


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
