"""Torch modules of the detector: the beat autoencoder and its scoring head.

Beats are tensors of shape (n_beats, n_timesteps). Nothing here does I/O or
knows about scikit-learn; the same modules are trained, pickled and exported
to ONNX, so the score is defined exactly once, in :class:`BeatScorer`.
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

    The encoder reads the beat sample by sample; its last hidden state is
    projected to a latent code, which is repeated over time and decoded by a
    second RNN into the reconstructed beat.

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
    """

    def __init__(
        self,
        cell: str = "lstm",
        hidden_size: int = 64,
        latent_size: int = 16,
        n_layers: int = 1,
        bidirectional: bool = True,
        standardize: bool = True,
    ) -> None:
        super().__init__()
        rnn = _CELLS[cell]
        self.standardize = standardize
        self.encoder = rnn(1, hidden_size, n_layers, batch_first=True, bidirectional=bidirectional)
        directions = 2 if bidirectional else 1
        self.to_latent = nn.Linear(directions * hidden_size, latent_size)
        self.decoder = rnn(latent_size, hidden_size, n_layers, batch_first=True)
        self.to_sample = nn.Linear(hidden_size, 1)

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """The beat as the autoencoder sees it (standardised when enabled)."""
        return standardize_beats(x) if self.standardize else x

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent codes (n_beats, latent_size) of beats (n_beats, n_timesteps)."""
        out, _ = self.encoder(self.target(x).unsqueeze(-1))
        if self.encoder.bidirectional:
            half = out.shape[-1] // 2
            last = torch.cat([out[:, -1, :half], out[:, 0, half:]], dim=-1)
        else:
            last = out[:, -1]
        return self.to_latent(last)

    def decode(self, code: torch.Tensor, n_timesteps: int) -> torch.Tensor:
        """Beats (n_beats, n_timesteps) from latent codes."""
        steps = code.unsqueeze(1).expand(-1, n_timesteps, -1)
        out, _ = self.decoder(steps)
        return self.to_sample(out).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct beats (n_beats, n_timesteps) in the space of :meth:`target`."""
        return self.decode(self.encode(x), x.shape[1])


def reconstruction_error(target: torch.Tensor, reconstruction: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-beat error (n_beats,): mean squared ("mse") or mean absolute ("l1")."""
    residual = target - reconstruction
    return (residual**2 if loss == "mse" else residual.abs()).mean(dim=1)


class BeatScorer(nn.Module):
    """The whole scoring path: beats in, (score, anomaly flag) out.

    ``score`` is minus the reconstruction error, so higher means more normal
    (the scikit-learn convention); a beat is an anomaly when
    ``score < offset``. This module is what ONNX export traces.

    Parameters
    ----------
    autoencoder : BeatAutoencoder
        The trained autoencoder.
    loss : {"mse", "l1"}
        Error measure of the score.
    offset : float
        Decision threshold on the score.
    """

    def __init__(self, autoencoder: BeatAutoencoder, loss: str, offset: float) -> None:
        super().__init__()
        self.autoencoder = autoencoder
        self.loss = loss
        self.register_buffer("offset", torch.tensor(float(offset)))

    def forward(self, beats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return scores (n_beats,) and anomaly flags (n_beats,) as bool."""
        target = self.autoencoder.target(beats)
        score = -reconstruction_error(target, self.autoencoder(beats), self.loss)
        return score, score < self.offset.to(score.dtype)
