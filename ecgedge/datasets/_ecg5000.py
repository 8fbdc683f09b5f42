"""The UCR ECG5000 heartbeats, shipped inside the package."""

from __future__ import annotations

from importlib import resources

import numpy as np

CLASS_NAMES = {
    1: "normal",
    2: "R-on-T PVC",
    3: "PVC",
    4: "supraventricular premature",
    5: "unclassified",
}
_SPLITS = ("train", "test", "all")


def load_ecg5000(split: str = "train", *, return_X_y: bool = False):
    """Load the UCR ECG5000 heartbeats.

    5000 beats of 140 samples from PhysioNet BIDMC CHF record chf07, each row
    z-normalised, labelled 1 (normal) to 5 (Dau et al., "The UCR Time Series
    Classification Archive", 2018).

    Parameters
    ----------
    split : {"train", "test", "all"}, default="train"
        The UCR split: 500 train beats, 4500 test beats, or both (train first).
    return_X_y : bool, default=False
        Return ``(X, y)`` instead of a :class:`~sklearn.utils.Bunch`.

    Returns
    -------
    data : Bunch or tuple
        ``data`` (n_beats, 140) float32, ``target`` (n_beats,) int class 1-5,
        ``target_names`` and ``DESCR``; or ``(X, y)``.

    Examples
    --------
    >>> from ecgedge.datasets import load_ecg5000
    >>> X, y = load_ecg5000("train", return_X_y=True)
    >>> X.shape, int((y == 1).sum())
    ((500, 140), 292)
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    path = resources.files("ecgedge.datasets") / "data" / "ecg5000.npz"
    with resources.as_file(path) as file, np.load(file) as archive:
        parts = ("train", "test") if split == "all" else (split,)
        X = np.concatenate([archive[f"{p}_X"] for p in parts])
        y = np.concatenate([archive[f"{p}_y"] for p in parts]).astype(np.int64)
    if return_X_y:
        return X, y
    from sklearn.utils import Bunch  # only here: the datasets load without scikit-learn

    return Bunch(
        data=X,
        target=y,
        target_names=CLASS_NAMES,
        DESCR="UCR ECG5000 (Dau et al. 2018), BIDMC CHF record chf07; class 1 is normal.",
    )
