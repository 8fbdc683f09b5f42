"""The pickle-free model file: weights, settings and a checksum in one ``.npz``.

The file is a NumPy ``.npz`` archive read with ``allow_pickle=False``. It holds
every weight tensor under ``weight/<name>`` and a JSON header under
``header``: format version, estimator parameters, fitted attributes, library
versions and the SHA-256 of the weights and header, so a truncated or altered
file is refused with a :class:`ModelFileError`.

This module writes and verifies files; it knows the estimator only through
its attributes. :func:`ecgedge.persistence.load` builds the estimator back.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import zipfile
from pathlib import Path

import numpy as np

FORMAT = "ecgedge-detector"
FORMAT_VERSION = 4  # 4: the reference holds local patches of normal beats
FITTED = ("offset_", "n_features_in_", "loss_curve_", "validation_loss_curve_", "best_epoch_", "fit_time_", "device_")


class ModelFileError(ValueError):
    """A model file is missing, truncated, altered or of another format."""


def _digest(weights: dict[str, np.ndarray], header: dict) -> str:
    sha = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    for name in sorted(weights):
        sha.update(name.encode())
        sha.update(np.ascontiguousarray(weights[name]).tobytes())
    return sha.hexdigest()


def check_writable(path: str | Path) -> Path:
    """Return ``path`` if a file can be written there, before any work is done.

    Raises
    ------
    FileNotFoundError
        When the directory that would hold the file does not exist.
    IsADirectoryError
        When ``path`` is a directory.
    PermissionError
        When the directory is not writable.
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {path}: directory {folder} does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a directory")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"cannot write {path}: directory {folder} is not writable")
    return path


def save_detector(detector, path: str | Path) -> None:
    """Write a fitted :class:`~ecgedge.LSTMAutoencoderDetector` to ``path``, atomically.

    The file is written next to ``path`` under a temporary name and renamed
    over it, so ``path`` holds either the old file or the complete new one,
    never a partial file.
    """
    import sklearn
    import torch
    from sklearn.utils.validation import check_is_fitted

    from ecgedge import __version__

    check_is_fitted(detector)
    path = check_writable(path)
    weights = {k: v.detach().cpu().numpy() for k, v in detector.module_.state_dict().items()}
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "params": detector.get_params(),
        "fitted": {name: getattr(detector, name) for name in FITTED},
        "feature_names_in": list(getattr(detector, "feature_names_in_", [])) or None,
        "versions": {"ecgedge": __version__, "torch": torch.__version__, "sklearn": sklearn.__version__},
    }
    header["sha256"] = _digest(weights, header)
    arrays = {f"weight/{k}": v for k, v in weights.items()}
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
    if path.suffix == ".onnx":
        raise ModelFileError(
            f"{path} is an ONNX graph, not a model file: give the bundle's detector.npz (or the .npz that "
            "'ecgedge train' wrote); graphs are scored by 'ecgedge bridge' and ecgedge.runtime.load_scorer"
        )
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"{path} is not a readable ecgedge model file (truncated or corrupt?): not an .npz archive"
        )
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
