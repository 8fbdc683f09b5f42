"""Beat preprocessing as scikit-learn transformers."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import validate_data


class BeatResampler(TransformerMixin, BaseEstimator):
    """Resample beats of any length to ``n_timesteps`` samples by linear interpolation.

    Lets a detector trained at one beat length score beats cut at another
    sample rate. Stateless: ``fit`` only records the input width.

    Parameters
    ----------
    n_timesteps : int, default=140
        Samples per output beat.

    Examples
    --------
    >>> import numpy as np
    >>> BeatResampler(4).fit_transform(np.array([[0.0, 3.0]]))
    array([[0., 1., 2., 3.]])
    """

    _parameter_constraints: dict = {"n_timesteps": [Interval(Integral, 2, None, closed="left")]}

    def __init__(self, n_timesteps: int = 140) -> None:
        self.n_timesteps = n_timesteps

    def fit(self, X, y=None):
        """Check ``X`` and record its width; returns self."""
        self._validate_params()
        validate_data(self, X, dtype=[np.float64, np.float32])
        return self

    def transform(self, X) -> np.ndarray:
        """Return the resampled beats, shape (n_beats, n_timesteps)."""
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        source = np.linspace(0.0, 1.0, X.shape[1])
        target = np.linspace(0.0, 1.0, self.n_timesteps)
        return np.stack([np.interp(target, source, beat) for beat in X]).astype(X.dtype, copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags
