"""The pretrained detectors shipped with the package.

``population.npz``, the default of the bridge, ``demo`` and ``export``, is the population model
(:mod:`ecgedge.population`): normal beats of the 22 MIT-BIH records of DS1, cut where the bridge
finds them, in a window fixed in time.

``default.npz``, the ECG5000 model (one patient's beats), was trained on the 292 normal beats of ECG5000_TRAIN only, on
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


def population_model_path() -> Path:
    """Path of the bundled population model (:mod:`ecgedge.population`), the default of the bridge."""
    return Path(str(resources.files("ecgedge.models") / "population.npz"))
