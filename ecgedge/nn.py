"""Torch modules of the detector: the beat autoencoder and its scoring head.

Beats are tensors of shape (n_beats, n_timesteps). Nothing here does I/O or
knows about scikit-learn; the same modules are trained, pickled and exported
to ONNX, so the score is defined exactly once, in :class:`BeatScorer`.

The score has two parts, both measured on z-normalised beats: how badly the
autoencoder reconstructs the beat (mean of its worst residuals), and how far
the lightly smoothed beat lies from the nearest local patches of normal
training beats (kept in :class:`NormalReference`). Each part is divided by
its median on the training beats, so they add on a common scale.
"""

from __future__ import annotations

import torch
from torch import nn

_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}
_EPS = 1e-6


def beat_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-beat mean and scale (standard deviation plus a small epsilon), (n_beats, 1) each."""
    mean = x.mean(dim=1, keepdim=True)
    std = ((x - mean) ** 2).mean(dim=1, keepdim=True).sqrt()
    return mean, std + _EPS


def standardize_beats(x: torch.Tensor) -> torch.Tensor:
    """Z-normalise each beat over time (the UCR convention for ECG5000)."""
    mean, scale = beat_stats(x)
    return (x - mean) / scale


class BeatAutoencoder(nn.Module):
    """Sequence-to-sequence RNN autoencoder for fixed-length beats.

    The encoder reads the beat in frames of ``frame_size`` consecutive samples,
    one frame per step (the last frame padded with the beat's last sample);
    its last hidden state is projected to a latent code, which is repeated
    once per frame and decoded by a second RNN into the reconstructed beat.
    Frames cut the sequential steps, which bound training and single-beat
    latency, by ``frame_size``.

    Parameters
    ----------
    cell : {"lstm", "gru"}
        Recurrent cell of encoder and decoder.
    hidden_size : int
        Units per recurrent layer.
    latent_size : int
        Size of the bottleneck code.
    n_layers : int
        Stacked recurrent layers in the encoder and the decoder.
    bidirectional : bool
        Read the beat in both directions in the encoder.
    standardize : bool
        Z-normalise each beat before encoding; reconstruction then happens in
        that standardised space.
    frame_size : int
        Samples read and written per recurrent step.

    Attributes
    ----------
    reference : NormalReference or None
        What the score compares beats with, attached after training; without
        it the score is the plain reconstruction error.
    """

    def __init__(
        self,
        cell: str = "lstm",
        hidden_size: int = 32,
        latent_size: int = 16,
        n_layers: int = 1,
        bidirectional: bool = False,
        standardize: bool = True,
        frame_size: int = 4,
    ) -> None:
        super().__init__()
        rnn = _CELLS[cell]
        self.standardize = standardize
        self.frame_size = frame_size
        self.encoder = rnn(frame_size, hidden_size, n_layers, batch_first=True, bidirectional=bidirectional)
        directions = 2 if bidirectional else 1
        self.to_latent = nn.Linear(directions * hidden_size, latent_size)
        self.decoder = rnn(latent_size, hidden_size, n_layers, batch_first=True)
        self.to_sample = nn.Linear(hidden_size, frame_size)
        self.reference: NormalReference | None = None

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """The beat as the autoencoder sees it (standardised when enabled)."""
        return standardize_beats(x) if self.standardize else x

    def n_frames(self, n_timesteps: int) -> int:
        """Recurrent steps for beats of ``n_timesteps`` samples."""
        return -(-n_timesteps // self.frame_size)

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """Beats (n_beats, n_timesteps) as frames (n_beats, n_frames, frame_size)."""
        n_timesteps = int(x.shape[1])  # int(): a constant when traced for ONNX
        pad = self.n_frames(n_timesteps) * self.frame_size - n_timesteps
        if pad:
            x = torch.cat([x, x[:, -1:].expand(-1, pad)], dim=1)
        return x.reshape(-1, self.n_frames(n_timesteps), self.frame_size)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent codes (n_beats, latent_size) of beats (n_beats, n_timesteps)."""
        out, _ = self.encoder(self.frames(self.target(x)))
        if self.encoder.bidirectional:
            half = out.shape[-1] // 2
            last = torch.cat([out[:, -1, :half], out[:, 0, half:]], dim=-1)
        else:
            last = out[:, -1]
        return self.to_latent(last)

    def decode(self, code: torch.Tensor, n_timesteps: int) -> torch.Tensor:
        """Beats (n_beats, n_timesteps) from latent codes."""
        steps = code.unsqueeze(1).expand(-1, self.n_frames(n_timesteps), -1)
        out, _ = self.decoder(steps)
        return self.to_sample(out).flatten(1)[:, :n_timesteps]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct beats (n_beats, n_timesteps) in the space of :meth:`target`."""
        return self.decode(self.encode(x), int(x.shape[1]))


def reconstruction_error(target: torch.Tensor, reconstruction: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-beat error (n_beats,): mean squared ("mse") or mean absolute ("l1")."""
    residual = target - reconstruction
    return (residual**2 if loss == "mse" else residual.abs()).mean(dim=1)


def smoothing_width(n_timesteps: int) -> int:
    """Odd moving-average width of about 1/28 of the beat (5 samples for 140)."""
    width = max(1, round(n_timesteps / 28))
    return width if width % 2 else width + 1


def smooth_beats(x: torch.Tensor, width: int) -> torch.Tensor:
    """Centred moving average over time, averaging only real samples at the edges."""
    if width == 1:
        return x
    pooled = nn.functional.avg_pool1d(x.unsqueeze(1), width, stride=1, padding=width // 2, count_include_pad=False)
    return pooled.squeeze(1)


def local_patches(
    beats: torch.Tensor, patch_size: int, ridge: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Affine patches of normal beat shapes, one per beat and its nearest neighbours.

    Each beat and its ``patch_size - 1`` nearest beats span a small affine
    patch (their centre plus the directions they vary in), the local
    hyperplanes of Vincent and Bengio's K-local hyperplane distance (NIPS
    2001). Each direction is shrunk as in ridge regression, with a penalty of
    ``ridge`` times the median squared nearest-neighbour distance of the beats.

    Parameters
    ----------
    beats : Tensor of shape (n_beats, n_timesteps)
        At least two beats.
    patch_size : int
        Beats per patch, at most ``n_beats``; 1 gives point patches (the beats).
    ridge : float
        Relative shrinkage of the patch directions (0 keeps them whole).

    Returns
    -------
    centres : Tensor of shape (n_beats, n_timesteps)
    basis : Tensor of shape (n_beats, n_directions, n_timesteps)
        Orthogonal directions of each patch (``min(patch_size, n_timesteps) - 1``
        of them), each scaled by the square root of its share in the squared
        distance (see :func:`patch_distance`).
    members : Tensor of shape (n_beats, patch_size)
        Indices of the beats in each patch.
    """
    sq = torch.cdist(beats, beats) ** 2
    members = torch.topk(sq, patch_size, dim=1, largest=False).indices
    neighbourhoods = beats[members]
    centres = neighbourhoods.mean(dim=1)
    _, singular, directions = torch.linalg.svd(neighbourhoods - centres.unsqueeze(1), full_matrices=False)
    penalty = ridge * float(sq.fill_diagonal_(float("inf")).min(dim=1).values.median())
    n_directions = min(patch_size, beats.shape[1]) - 1  # a patch never fills the whole space
    variance = singular[:, :n_directions] ** 2
    shrink = variance / (variance + penalty).clamp_min(torch.finfo(beats.dtype).tiny)
    basis = directions[:, :n_directions] * (2 * shrink - shrink**2).sqrt().unsqueeze(-1)
    return centres, basis.contiguous(), members  # LAPACK's layout would make saved copies score 1 ulp apart


def patch_distance(
    x: torch.Tensor, centres: torch.Tensor, basis: torch.Tensor, n_neighbors: int, exclude: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean distance (n_beats,) from each row of ``x`` to its nearest patches.

    The squared distance to a patch is the squared distance to its centre
    minus the squared (shrunk) projection on its directions, so point patches
    give the plain Euclidean distance to the nearest beats.

    Parameters
    ----------
    x : Tensor of shape (n_beats, n_timesteps)
    centres, basis : Tensor
        Patches from :func:`local_patches`.
    n_neighbors : int
        Nearest patches averaged.
    exclude : Tensor of shape (n_beats, n_patches), bool, optional
        Patches each row may not use (the ones it belongs to, for
        leave-one-out distances). A row left with fewer than ``n_neighbors``
        patches takes its farthest patch distance for the missing ones.
    """
    origin = centres.mean(dim=0)  # measured from the patches' mean, the expansion below cancels far less
    x, centres = x - origin, centres - origin
    sq = (x**2).sum(dim=1, keepdim=True) + (centres**2).sum(dim=1) - 2.0 * x @ centres.T
    n_patches, n_directions, n_timesteps = basis.shape
    if n_directions:
        along = (x @ basis.reshape(-1, n_timesteps).T).reshape(-1, n_patches, n_directions)
        along = along - (centres.unsqueeze(1) * basis).sum(dim=-1)
        sq = sq - (along**2).sum(dim=-1)
    sq = sq.clamp_min(0.0)
    k = min(n_neighbors, n_patches)
    if exclude is None:
        return torch.topk(sq, k, dim=1, largest=False).values.sqrt().mean(dim=1)
    farthest = sq.max(dim=1, keepdim=True).values
    nearest = torch.topk(sq.masked_fill(exclude, float("inf")), k, dim=1, largest=False).values
    return torch.where(nearest.isinf(), farthest, nearest).sqrt().mean(dim=1)


class NormalReference(nn.Module):
    """The normal beat shapes and scales a score is measured against.

    Parameters
    ----------
    centres : Tensor of shape (n_patches, n_timesteps)
        Centres of the local patches of smoothed, z-normalised normal training
        beats (see :func:`local_patches`); may have no rows, which drops the
        distance part of the score.
    basis : Tensor of shape (n_patches, n_directions, n_timesteps)
        The patches' scaled directions.
    error_scale, distance_scale : float
        Medians of the two score parts on the training beats.
    n_neighbors : int
        Nearest patches averaged in the distance part.
    top_fraction : float
        Share of the worst residual samples averaged in the error part.
    distance_weight : float
        Weight of the distance part relative to the error part.
    training_scores : Tensor of shape (n_training,), optional
        Leave-one-out scores of the training beats (each scored without the
        patches it belongs to): what unbiased thresholds are set on.
    """

    # buffers (register_buffer), declared for type checkers
    centres: torch.Tensor
    basis: torch.Tensor
    training_scores: torch.Tensor
    scales: torch.Tensor

    def __init__(
        self,
        centres: torch.Tensor,
        basis: torch.Tensor,
        error_scale: float,
        distance_scale: float,
        n_neighbors: int,
        top_fraction: float,
        distance_weight: float,
        training_scores: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.register_buffer("centres", centres)
        self.register_buffer("basis", basis)
        self.register_buffer("training_scores", centres.new_zeros(0) if training_scores is None else training_scores)
        self.register_buffer("scales", torch.tensor([float(error_scale), float(distance_scale)], dtype=centres.dtype))
        self.n_neighbors = n_neighbors
        self.top_fraction = top_fraction
        self.distance_weight = distance_weight


def score_parts(
    autoencoder: BeatAutoencoder, beats: torch.Tensor, loss: str, exclude: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unscaled error and distance parts (n_beats,) each; the distance is 0 without patches.

    Without a reference the error is the plain :func:`reconstruction_error`.
    ``exclude`` masks patches per beat (see :func:`patch_distance`), for
    leave-one-out distances of the training beats.
    """
    target = autoencoder.target(beats)
    residual = target - autoencoder(beats)
    per_sample = residual**2 if loss == "mse" else residual.abs()
    ref = autoencoder.reference
    if ref is None:
        return per_sample.mean(dim=1), torch.zeros_like(per_sample[:, 0])
    n_top = max(1, round(ref.top_fraction * int(per_sample.shape[1])))  # int(): a constant when traced for ONNX
    error = torch.topk(per_sample, n_top, dim=1).values.mean(dim=1)
    if ref.centres.shape[0] == 0:
        return error, torch.zeros_like(error)
    features = smooth_beats(target, smoothing_width(int(beats.shape[1])))
    return error, patch_distance(features, ref.centres, ref.basis, ref.n_neighbors, exclude)


def combine_parts(reference: NormalReference | None, error: torch.Tensor, distance: torch.Tensor) -> torch.Tensor:
    """The score (higher is more normal) from its two parts.

    ``-(sqrt(error / error_scale) + distance_weight * distance / distance_scale)``
    with a reference; ``-error`` without.
    """
    if reference is None:
        return -error
    scales = reference.scales.to(error.dtype)
    return -((error / scales[0]).sqrt() + reference.distance_weight * distance / scales[1])


class BeatScorer(nn.Module):
    """The whole scoring path: beats in, scores out.

    The score (see :func:`combine_parts`) is higher for more normal beats
    (the scikit-learn convention). It carries no threshold: the estimator
    keeps that in ``offset_``, a bundle once in its manifest, and a stream
    may override it at run time. This module is what ONNX export traces.

    Parameters
    ----------
    autoencoder : BeatAutoencoder
        The trained autoencoder, with its :class:`NormalReference` attached.
    loss : {"mse", "l1"}
        Per-sample error of the reconstruction part (squared or absolute).
    """

    def __init__(self, autoencoder: BeatAutoencoder, loss: str) -> None:
        super().__init__()
        self.autoencoder = autoencoder
        self.loss = loss

    def forward(self, beats: torch.Tensor) -> torch.Tensor:
        """Return the scores (n_beats,) of beats (n_beats, n_timesteps)."""
        return combine_parts(self.autoencoder.reference, *score_parts(self.autoencoder, beats, self.loss))
