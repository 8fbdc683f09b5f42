"""The scikit-learn estimator: an LSTM autoencoder novelty detector for heartbeats."""

from __future__ import annotations

import copy
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, OutlierMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ecgedge.beatformat import BeatFormat
from ecgedge.calibration import robust_threshold
from ecgedge.nn import (
    BeatAutoencoder,
    BeatScorer,
    NormalReference,
    beat_stats,
    combine_parts,
    local_patches,
    score_parts,
    smooth_beats,
    smoothing_width,
)
from ecgedge.training import resolve_device, train_autoencoder

_SCORE_BATCH = 2048
#: Robust standard deviations (1.4826 MAD) below the median of the leave-one-out
#: training scores where ``contamination="auto"`` puts the threshold.
AUTO_MADS = 5.0


class LSTMAutoencoderDetector(OutlierMixin, BaseEstimator):
    """Heartbeat anomaly detector: an RNN autoencoder trained on normal beats.

    The autoencoder learns to reconstruct normal beats; a beat it reconstructs
    badly, or that lies far from every normal training beat, is abnormal.
    ``score_samples`` is higher for more normal beats, as for scikit-learn's
    outlier detectors: minus the sum of two parts, each divided by its median
    on the training beats,

    - the square root of the mean of the ``top_fraction`` worst per-sample
      reconstruction errors of the z-normalised beat;
    - ``distance_weight`` times the mean Euclidean distance of the lightly
      smoothed (moving average over 1/28 of the beat) z-normalised beat to its
      ``n_neighbors`` nearest local patches of normal beats: each of up to
      ``memory_size`` training beats and its ``patch_size - 1`` nearest
      neighbours span a small affine patch (a K-local hyperplane, Vincent and
      Bengio 2001), so a beat between two normal shapes counts as normal.

    The score lives in :class:`ecgedge.nn.BeatScorer`, which ONNX export
    traces, so every runtime computes the same number.

    Parameters
    ----------
    cell : {"lstm", "gru"}, default="lstm"
        Recurrent cell.
    n_layers : int, default=1
        Stacked recurrent layers in encoder and decoder.
    hidden_size : int, default=32
        Units per recurrent layer.
    latent_size : int, default=16
        Size of the bottleneck code.
    bidirectional : bool, default=False
        Read beats in both directions in the encoder.
    standardize : bool, default=True
        Z-normalise each beat before scoring, so the score ignores offset and
        gain of the front end.
    frame_size : int, default=4
        Consecutive samples the LSTM reads and writes per step (1 = sample by
        sample); a beat of ``n`` samples takes ``ceil(n / frame_size)`` steps.
    loss : {"mse", "l1"}, default="mse"
        Reconstruction loss for training and per-sample error of the score.
    top_fraction : float in (0, 1], default=0.1
        Share of a beat's worst-reconstructed samples averaged in the error
        part (1 averages all of them).
    memory_size : int, default=4096
        Most training beats kept for the distance part (a random subset when
        there are more); 0 scores by reconstruction error alone.
    n_neighbors : int, default=2
        Nearest patches averaged in the distance part.
    patch_size : int, default=4
        Training beats per local patch (capped at half the memory's beats);
        1 measures the distance to the nearest beats themselves.
    ridge : float, default=0.1
        Shrinkage of the patch directions, relative to the median squared
        distance between a memory beat and its nearest neighbour; large values
        approach the distance to the patch centres.
    distance_weight : float, default=4.0
        Weight of the distance part relative to the error part.
    learning_rate : float, default=1e-3
        Adam's initial learning rate.
    batch_size : int, default=32
        Beats per gradient step.
    max_epochs : int, default=100
        Upper bound on training epochs.
    validation_fraction : float, default=0.1
        Share of the beats held out for early stopping (0 monitors the
        training loss).
    patience : int, default=20
        Epochs without improvement before training stops.
    contamination : "auto" or float in (0, 0.5], default="auto"
        Sets ``offset_`` from ``training_scores_``, the leave-one-out scores
        of the memory beats (each scored without the patches it belongs to,
        so as a new beat would be): a float puts it at that quantile of them,
        so about that share of new normal beats is flagged; ``"auto"``
        assumes clean training beats and puts it ``AUTO_MADS`` (5) robust
        standard deviations (1.4826 MAD) below their median.
    beat_format : dict or None, default=None
        How the bridge cuts beats for this model
        (:meth:`ecgedge.beatformat.BeatFormat.to_dict`), kept in the model
        file and in every bundle exported from it. None: ECG5000's
        whole-heartbeat windows of ``n_features_in_`` samples.
    device : str, default="auto"
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        Fitted weights always end on the CPU, so models move freely.
    random_state : int, RandomState or None, default=None
        Seeds weight initialisation, the validation split and shuffling;
        CPU training is deterministic for a fixed seed.
    verbose : int, default=0
        Show a progress bar while training when > 0.

    Attributes
    ----------
    module_ : BeatAutoencoder
        The trained torch module (on the CPU), with the score's
        :class:`~ecgedge.nn.NormalReference` attached.
    offset_ : float
        Threshold: ``decision_function = score_samples - offset_``.
    training_scores_ : ndarray of shape (n_memory,)
        Leave-one-out scores of the memory beats (all training beats when
        there are at most ``memory_size``), the same scores ``offset_`` is
        derived from; as ``LocalOutlierFactor.negative_outlier_factor_``,
        they let a threshold be set later without rescoring (and without the
        optimism of scoring beats against patches they belong to).
    n_features_in_ : int
        Samples per beat seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when ``X`` had them.
    loss_curve_ : list of float
        Training loss per epoch.
    validation_loss_curve_ : list of float
        Validation loss per epoch (empty without a validation split).
    best_epoch_ : int
        Epoch whose weights were kept.
    fit_time_ : float
        Seconds spent training.
    device_ : str
        Device the model was trained on.

    Examples
    --------
    >>> from ecgedge import LSTMAutoencoderDetector
    >>> from ecgedge.datasets import load_ecg5000
    >>> X, y = load_ecg5000("train", return_X_y=True)
    >>> detector = LSTMAutoencoderDetector(max_epochs=2, random_state=0)
    >>> detector.fit(X[y == 1]).predict(X[:3]).shape
    (3,)
    """

    _parameter_constraints: dict = {
        "cell": [StrOptions({"lstm", "gru"})],
        "n_layers": [Interval(Integral, 1, None, closed="left")],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "latent_size": [Interval(Integral, 1, None, closed="left")],
        "bidirectional": ["boolean"],
        "standardize": ["boolean"],
        "frame_size": [Interval(Integral, 1, None, closed="left")],
        "loss": [StrOptions({"mse", "l1"})],
        "top_fraction": [Interval(Real, 0, 1, closed="right")],
        "memory_size": [Interval(Integral, 0, None, closed="left")],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "patch_size": [Interval(Integral, 1, None, closed="left")],
        "ridge": [Interval(Real, 0, None, closed="left")],
        "distance_weight": [Interval(Real, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "beat_format": [dict, None],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        cell: str = "lstm",
        n_layers: int = 1,
        hidden_size: int = 32,
        latent_size: int = 16,
        bidirectional: bool = False,
        standardize: bool = True,
        frame_size: int = 4,
        loss: str = "mse",
        top_fraction: float = 0.1,
        memory_size: int = 4096,
        n_neighbors: int = 2,
        patch_size: int = 4,
        ridge: float = 0.1,
        distance_weight: float = 4.0,
        learning_rate: float = 1e-3,
        batch_size: int = 32,
        max_epochs: int = 100,
        validation_fraction: float = 0.1,
        patience: int = 20,
        contamination: str | float = "auto",
        beat_format: dict | None = None,
        device: str = "auto",
        random_state=None,
        verbose: int = 0,
    ) -> None:
        self.cell = cell
        self.n_layers = n_layers
        self.hidden_size = hidden_size
        self.latent_size = latent_size
        self.bidirectional = bidirectional
        self.standardize = standardize
        self.frame_size = frame_size
        self.loss = loss
        self.top_fraction = top_fraction
        self.memory_size = memory_size
        self.n_neighbors = n_neighbors
        self.patch_size = patch_size
        self.ridge = ridge
        self.distance_weight = distance_weight
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.contamination = contamination
        self.beat_format = beat_format
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train on beats assumed normal.

        Parameters
        ----------
        X : array-like of shape (n_beats, n_timesteps)
            One beat per row, at least two beats.
        y : Ignored
            Present for API consistency.

        Returns
        -------
        self : LSTMAutoencoderDetector
        """
        self._fit(X)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_predict(self, X, y=None) -> np.ndarray:
        """Train on ``X`` and label its own beats +1 (normal) or -1 (anomaly).

        Memory beats are judged by their leave-one-out ``training_scores_``
        (as ``LocalOutlierFactor`` judges its training samples), so with
        ``contamination=c`` about a share ``c`` of them is labelled -1; any
        beats beyond ``memory_size`` are scored as new beats.

        Parameters
        ----------
        X : array-like of shape (n_beats, n_timesteps)
        y : Ignored

        Returns
        -------
        ndarray of shape (n_beats,), int
        """
        X, memory = self._fit(X)
        scores = self.score_samples(X)
        scores[memory] = self.training_scores_
        return np.where(scores < self.offset_, -1, 1)

    def _fit(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Fit; return the validated beats and the indices of those kept as the memory."""
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        if self.beat_format is not None and BeatFormat.from_dict(self.beat_format).length != X.shape[1]:
            raise ValueError(
                f"beat_format is for beats of {self.beat_format.get('length')} samples; X has {X.shape[1]}"
            )
        device = resolve_device(self.device)
        rng = check_random_state(self.random_state)
        beats = X.astype(np.float32)  # training precision; the reference and threshold use X as given
        order = rng.permutation(len(X))
        n_val = int(round(self.validation_fraction * len(X)))
        n_val = n_val if len(X) - n_val >= 1 else 0
        X_val, X_train = beats[order[:n_val]], beats[order[n_val:]]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(rng.randint(np.iinfo(np.int32).max))
            module = self._new_module()
        history = train_autoencoder(
            module,
            X_train,
            X_val if n_val else None,
            loss=self.loss,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            patience=self.patience,
            device=device,
            rng=rng,
            verbose=self.verbose,
        )
        self.module_ = module.cpu()
        self.loss_curve_ = history.train_loss
        self.validation_loss_curve_ = history.val_loss
        self.best_epoch_ = history.best_epoch
        self.fit_time_ = history.fit_seconds
        self.device_ = history.device
        memory = rng.permutation(len(X))[: self.memory_size] if self.memory_size else np.arange(len(X))
        scores = self._attach_reference(X[memory])  # float64; training_scores_ keeps them as float32
        if isinstance(self.contamination, str):  # "auto", the one string the parameter validation lets through
            self.offset_ = robust_threshold(scores, k=AUTO_MADS)
        else:
            self.offset_ = float(np.percentile(scores, 100.0 * self.contamination))
        return X, memory

    @property
    def training_scores_(self) -> np.ndarray:
        """Leave-one-out scores of the memory beats (kept in the model's reference)."""
        reference = self.module_.reference
        if reference is None:  # an AttributeError, as reading it from None was: hasattr() stays False
            raise AttributeError("the model has no normal reference, so no training scores")
        return reference.training_scores.numpy().astype(np.float64)

    def _new_module(self) -> BeatAutoencoder:
        """An untrained autoencoder with this estimator's architecture."""
        return BeatAutoencoder(
            self.cell,
            self.hidden_size,
            self.latent_size,
            self.n_layers,
            self.bidirectional,
            self.standardize,
            self.frame_size,
        )

    def _attach_reference(self, memory: np.ndarray) -> np.ndarray:
        """Give ``module_`` its score reference built on ``memory`` beats.

        With ``memory_size=0`` the beats only set the error scale. The scales
        are the medians of both score parts over the memory beats, each beat's
        distance taken without the patches it belongs to. Those beats'
        leave-one-out scores are kept in the reference (``training_scores_``) and
        returned in float64.
        """
        module = self.module_.double()
        module.reference = None
        beats = torch.as_tensor(memory, dtype=torch.float64)
        with torch.inference_mode():
            features = smooth_beats(module.target(beats), smoothing_width(beats.shape[1]))
            exclude = None
            if self.memory_size and len(features) > 1:
                patch_size = min(self.patch_size, len(features) // 2)
                centres, basis, members = local_patches(features, patch_size, self.ridge)
                exclude = torch.zeros(len(features), len(centres), dtype=torch.bool)
                exclude[members, torch.arange(len(centres)).unsqueeze(1)] = True
            else:
                centres, basis = features[:0], features[:0].unsqueeze(1)
        module.reference = NormalReference(
            centres, basis, 1.0, 1.0, self.n_neighbors, self.top_fraction, self.distance_weight
        ).double()
        with torch.inference_mode():
            parts = [
                score_parts(
                    module,
                    beats[i : i + _SCORE_BATCH],
                    self.loss,
                    None if exclude is None else exclude[i : i + _SCORE_BATCH],
                )
                for i in range(0, len(beats), _SCORE_BATCH)
            ]  # in batches, as scoring runs: the patch distances of 4096 beats would take gigabytes at once
            error, distance = (torch.cat(part) for part in zip(*parts, strict=True))
            scales = [float(error.median()) or 1.0, float(distance.median()) or 1.0]
            module.reference.scales.copy_(torch.tensor(scales, dtype=torch.float64))
            scores = combine_parts(module.reference, error, distance)
            module.reference.training_scores = scores
        self.module_ = module.float()
        return scores.numpy()

    def _run(self, X, method: str) -> np.ndarray:
        """Validate beats and run ``method`` of a float64 CPU scorer in batches."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        scorer = BeatScorer(copy.deepcopy(self.module_).double(), self.loss)
        beats = torch.tensor(X, dtype=torch.float64)
        fn = getattr(self, f"_{method}")
        with torch.inference_mode():
            return np.concatenate([fn(scorer, b) for b in beats.split(_SCORE_BATCH)])

    @staticmethod
    def _score(scorer: BeatScorer, beats: torch.Tensor) -> np.ndarray:
        return scorer(beats).numpy()

    @staticmethod
    def _reconstruct(scorer: BeatScorer, beats: torch.Tensor) -> np.ndarray:
        recon = scorer.autoencoder(beats)
        if scorer.autoencoder.standardize:
            mean, scale = beat_stats(beats)
            recon = recon * scale + mean
        return recon.numpy()

    def score_samples(self, X) -> np.ndarray:
        """Normality of each beat: minus its scaled reconstruction error plus distance to normal beats.

        The definition is :class:`ecgedge.nn.BeatScorer`, the same module the
        ONNX export carries.

        Parameters
        ----------
        X : array-like of shape (n_beats, n_timesteps)

        Returns
        -------
        scores : ndarray of shape (n_beats,)
            Higher is more normal.
        """
        return self._run(X, "score")

    def decision_function(self, X) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for anomalies.

        Parameters
        ----------
        X : array-like of shape (n_beats, n_timesteps)

        Returns
        -------
        ndarray of shape (n_beats,)
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """Label beats +1 (normal) or -1 (anomaly).

        Parameters
        ----------
        X : array-like of shape (n_beats, n_timesteps)

        Returns
        -------
        ndarray of shape (n_beats,), int
        """
        return np.where(self.decision_function(X) < 0, -1, 1)

    def reconstruct(self, X) -> np.ndarray:
        """Reconstructed beats, in the units of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_beats, n_timesteps)

        Returns
        -------
        ndarray of shape (n_beats, n_timesteps)
        """
        return self._run(X, "reconstruct")

    def save(self, path) -> None:
        """Write the fitted detector to one pickle-free file (see :func:`ecgedge.load`)."""
        from ecgedge.model_file import save_detector

        save_detector(self, path)
