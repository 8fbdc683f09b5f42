"""Cross-validation for novelty detection: normal-only training folds and label-aware scorers.

scikit-learn's splitters and scorers assume supervised learning. A novelty
detector must be trained on normal beats only and judged on held-out normal
*and* abnormal beats, which is what these two pieces provide for
:class:`~sklearn.model_selection.GridSearchCV`.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import KFold
from sklearn.utils import check_random_state

__all__ = ["NoveltyKFold", "novelty_scorer"]


class NoveltyKFold:
    """K-fold splitter whose training folds hold only normal beats.

    Normal and abnormal beats are each split into ``n_splits`` folds; fold
    ``k`` tests on its normal and abnormal beats and trains on the normal
    beats of the other folds. Abnormal beats are never trained on.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds (at least 2).
    normal_label : int, default=1
        Label of normal beats in ``y``; every other label is abnormal.
    shuffle : bool, default=True
        Shuffle each class before splitting.
    random_state : int, RandomState or None, default=None
        Seed of the shuffling.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([1, 1, 1, 1, 2, 3])
    >>> [sorted(set(y[train])) for train, _ in NoveltyKFold(2, random_state=0).split(y, y)]
    [[1], [1]]
    """

    def __init__(self, n_splits: int = 5, *, normal_label: int = 1, shuffle: bool = True, random_state=None):
        if n_splits < 2:
            raise ValueError(f"n_splits must be at least 2, got {n_splits}")
        self.n_splits = n_splits
        self.normal_label = normal_label
        self.shuffle = shuffle
        self.random_state = random_state

    def split(self, X, y, groups=None):
        """Yield ``(train, test)`` index arrays; ``y`` is required.

        Raises
        ------
        ValueError
            When ``y`` is missing or a class has fewer beats than folds.
        """
        if y is None:
            raise ValueError("NoveltyKFold needs y to tell normal from abnormal beats")
        y = np.asarray(y)
        normal = np.flatnonzero(y == self.normal_label)
        abnormal = np.flatnonzero(y != self.normal_label)
        for name, idx in (("normal", normal), ("abnormal", abnormal)):
            if len(idx) < self.n_splits:
                raise ValueError(f"{len(idx)} {name} beats cannot fill {self.n_splits} folds")
        rng = check_random_state(self.random_state)
        seed = rng.randint(np.iinfo(np.int32).max) if self.shuffle else None
        kfold = KFold(self.n_splits, shuffle=self.shuffle, random_state=seed)
        normal_folds = kfold.split(normal)
        abnormal_folds = kfold.split(abnormal)
        for (n_train, n_test), (_, a_test) in zip(normal_folds, abnormal_folds, strict=True):  # n_splits each
            yield normal[n_train], np.concatenate([normal[n_test], abnormal[a_test]])

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """Number of folds."""
        return self.n_splits


def novelty_scorer(metric: str = "roc_auc", *, normal_label: int = 1):
    """A scorer ``(estimator, X, y) -> float`` for novelty detectors.

    Parameters
    ----------
    metric : {"roc_auc", "average_precision", "balanced_accuracy"}
        ``roc_auc`` and ``average_precision`` rank beats by ``score_samples``
        (threshold-free); ``balanced_accuracy`` uses ``predict``, so it also
        judges the detector's threshold.
    normal_label : int, default=1
        Label of normal beats in ``y``.

    Returns
    -------
    callable
        Usable as ``scoring=`` in :class:`~sklearn.model_selection.GridSearchCV`.
    """
    from sklearn.metrics import average_precision_score, balanced_accuracy_score, roc_auc_score

    ranking = {"roc_auc": roc_auc_score, "average_precision": average_precision_score}
    if metric not in {*ranking, "balanced_accuracy"}:
        raise ValueError(f"unknown metric {metric!r}; use roc_auc, average_precision or balanced_accuracy")

    def score(estimator, X, y) -> float:
        is_normal = np.asarray(y) == normal_label
        if metric == "balanced_accuracy":
            return float(balanced_accuracy_score(is_normal, estimator.predict(X) == 1))
        return float(ranking[metric](is_normal, estimator.score_samples(X)))

    score.__name__ = f"novelty_{metric}"
    return score
