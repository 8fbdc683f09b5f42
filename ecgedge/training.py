"""The fit loop: device choice, batching, early stopping and progress."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ecgedge.nn import BeatAutoencoder, reconstruction_error


def resolve_device(device: str) -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a torch device.

    ``"auto"`` picks CUDA when a GPU is visible. Asking for CUDA on a machine
    without one raises a ``ValueError`` that says so.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from err
    if resolved.type not in {"cpu", "cuda"}:
        raise ValueError(f"unsupported device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available on this machine")
    return resolved


@dataclass
class TrainingHistory:
    """Per-epoch losses and the outcome of one fit."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = 0
    fit_seconds: float = 0.0
    device: str = "cpu"


def train_autoencoder(
    module: BeatAutoencoder,
    X_train: np.ndarray,
    X_val: np.ndarray | None,
    *,
    loss: str,
    learning_rate: float,
    batch_size: int,
    max_epochs: int,
    patience: int,
    device: torch.device,
    rng: np.random.RandomState,
    verbose: int = 0,
) -> TrainingHistory:
    """Train ``module`` in place to reconstruct beats and keep its best weights.

    Adam with a learning rate that halves when the monitored loss stalls;
    the monitored loss is the validation loss when ``X_val`` is given, else
    the training loss. Training stops after ``patience`` epochs without
    improvement and the best epoch's weights are restored.

    Parameters
    ----------
    module : BeatAutoencoder
        Freshly initialised autoencoder.
    X_train, X_val : ndarray of shape (n_beats, n_timesteps), float32
        Training and optional validation beats.
    loss : {"mse", "l1"}
        Reconstruction loss.
    learning_rate, batch_size, max_epochs, patience
        Optimiser and schedule settings.
    device : torch.device
        Where to train.
    rng : RandomState
        Source of the batch shuffling.
    verbose : int
        Show a progress bar with the losses when > 0.

    Returns
    -------
    TrainingHistory
    """
    start = time.perf_counter()
    module.to(device).train()
    train = torch.as_tensor(X_train, device=device)
    val = torch.as_tensor(X_val, device=device) if X_val is not None and len(X_val) else None
    optimizer = torch.optim.Adam(module.parameters(), lr=learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=max(1, patience // 3))
    history = TrainingHistory(device=str(device))
    best_loss, best_state, stale = np.inf, copy.deepcopy(module.state_dict()), 0
    epochs = tqdm(range(max_epochs), disable=verbose <= 0, desc="fit", unit="epoch")
    for epoch in epochs:
        history.train_loss.append(_train_epoch(module, train, optimizer, loss, batch_size, rng))
        monitored = history.train_loss[-1]
        if val is not None:
            monitored = _mean_loss(module, val, loss)
            history.val_loss.append(monitored)
        scheduler.step(monitored)
        if monitored < best_loss:
            best_loss, best_state, stale = monitored, copy.deepcopy(module.state_dict()), 0
            history.best_epoch = epoch
        else:
            stale += 1
        epochs.set_postfix(loss=f"{history.train_loss[-1]:.4f}", monitored=f"{monitored:.4f}")
        if stale >= patience:
            break
    module.load_state_dict(best_state)
    module.eval()
    history.fit_seconds = time.perf_counter() - start
    return history


def _train_epoch(
    module: BeatAutoencoder,
    train: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    loss: str,
    batch_size: int,
    rng: np.random.RandomState,
) -> float:
    """Run one epoch of gradient steps over the training beats in a shuffled order.

    Parameters
    ----------
    module : BeatAutoencoder
        The autoencoder being trained (put in training mode).
    train : Tensor of shape (n_beats, n_timesteps)
        Training beats, on the training device.
    optimizer : torch.optim.Optimizer
        The optimiser of ``module``'s parameters.
    loss : {"mse", "l1"}
        Reconstruction loss.
    batch_size : int
        Beats per gradient step.
    rng : RandomState
        Source of the shuffling.

    Returns
    -------
    float
        The epoch's training loss: the batch losses averaged over beats.
    """
    module.train()
    order = torch.as_tensor(rng.permutation(len(train)), device=train.device)
    total = 0.0
    for batch in train[order].split(batch_size):
        optimizer.zero_grad(set_to_none=True)
        batch_loss = reconstruction_error(module.target(batch), module(batch), loss).mean()
        batch_loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        optimizer.step()
        total += batch_loss.item() * len(batch)
    return total / len(train)


def _mean_loss(module: BeatAutoencoder, beats: torch.Tensor, loss: str) -> float:
    """Mean reconstruction loss of ``beats``, evaluated without gradients (``module`` left in eval mode).

    Parameters
    ----------
    module : BeatAutoencoder
    beats : Tensor of shape (n_beats, n_timesteps)
        Beats on the module's device.
    loss : {"mse", "l1"}
        Reconstruction loss.

    Returns
    -------
    float
    """
    module.eval()
    with torch.no_grad():
        return reconstruction_error(module.target(beats), module(beats), loss).mean().item()
