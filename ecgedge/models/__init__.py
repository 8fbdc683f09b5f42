"""The pretrained default detector shipped with the package.

``default.npz`` was trained on the 292 normal beats of ECG5000_TRAIN only, on
the CPU, with the estimator's default settings; it is reproduced bit for bit
on a CPU with::

    ecgedge train --out default.npz --seed 0 --device cpu --quiet
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def default_model_path() -> Path:
    """Path of the bundled default model file (load it with :func:`ecgedge.load`)."""
    return Path(str(resources.files("ecgedge.models") / "default.npz"))
