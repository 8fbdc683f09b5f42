"""Visual evaluation report: PNG figures and an ``index.html`` that shows them.

Everything is drawn with matplotlib's Agg backend, so it runs headless.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

_CLASS_NAMES = {1: "normal", 2: "R-on-T PVC", 3: "PVC", 4: "SP or EB", 5: "unclassified"}


def _figure(width: float = 6.0, height: float = 4.0, ncols: int = 1):
    """A new Agg figure: (figure, axes), axes a list when ``ncols`` > 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width, height), dpi=110, sharey=True)
    return fig, axes


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path)
    import matplotlib.pyplot as plt

    plt.close(fig)


def plot_roc(is_anomaly: np.ndarray, scores: np.ndarray, offset: float, path: Path) -> None:
    """ROC curve with the operating point of the threshold marked."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(is_anomaly, -scores)
    flagged = scores < offset
    fig, ax = _figure(4.8, 4.4)
    ax.plot(fpr, tpr, lw=2, label=f"ROC, AUC = {roc_auc_score(is_anomaly, -scores):.4f}")
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    ax.plot(flagged[~is_anomaly].mean(), flagged[is_anomaly].mean(), "o", c="C3", label="threshold")
    ax.set(xlabel="false positive rate (normal beats flagged)", ylabel="anomaly recall", title="ROC curve")
    ax.legend(loc="lower right")
    _save(fig, path)


def plot_score_histograms(is_anomaly: np.ndarray, scores: np.ndarray, offset: float, path: Path) -> None:
    """Score histograms of normal and abnormal beats, with the threshold."""
    fig, ax = _figure()
    bins = np.linspace(np.percentile(scores, 0.5), scores.max(), 60)
    clipped = np.clip(scores, bins[0], None)
    ax.hist(clipped[~is_anomaly], bins, alpha=0.6, label=f"normal ({(~is_anomaly).sum()})", color="C0")
    ax.hist(clipped[is_anomaly], bins, alpha=0.6, label=f"abnormal ({is_anomaly.sum()})", color="C3")
    ax.axvline(offset, c="k", ls="--", label=f"threshold {offset:.3f}")
    ax.set(xlabel="score (higher = more normal; lowest 0.5 % piled at the left edge)", ylabel="beats")
    ax.set_title("Score distributions")
    ax.legend()
    _save(fig, path)


def plot_confusion_matrix(matrix: list[list[int]], path: Path) -> None:
    """The 2 x 2 confusion matrix with counts and row percentages."""
    cm = np.asarray(matrix)
    fig, ax = _figure(4.4, 3.8)
    ax.imshow(cm / cm.sum(axis=1, keepdims=True), cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(cm):
        share = count / cm[i].sum()
        ax.text(j, i, f"{count}\n{share:.2%}", ha="center", va="center", color="white" if share > 0.5 else "black")
    labels = ["normal", "abnormal"]
    ax.set_xticks([0, 1], labels)
    ax.set_yticks([0, 1], labels)
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix")
    _save(fig, path)


def plot_loss_curve(train_loss: list[float], val_loss: list[float], best_epoch: int, path: Path) -> None:
    """Training and validation loss per epoch, with the kept epoch marked."""
    fig, ax = _figure()
    epochs = np.arange(1, len(train_loss) + 1)
    ax.plot(epochs, train_loss, label="training")
    if val_loss:
        ax.plot(epochs, val_loss, label="validation")
    ax.axvline(best_epoch + 1, c="grey", ls=":", label=f"kept epoch {best_epoch + 1}")
    ax.set_yscale("log")
    ax.set(xlabel="epoch", ylabel="reconstruction loss", title="Training loss")
    ax.legend()
    _save(fig, path)


def plot_reconstructions(detector, X: np.ndarray, y: np.ndarray, scores: np.ndarray, path: Path) -> None:
    """One typical (median-score) beat of each class with its reconstruction."""
    classes = np.unique(y)
    fig, axes = _figure(3.0 * len(classes), 2.8, ncols=len(classes))
    axes = np.atleast_1d(axes)
    for ax, label in zip(axes, classes):
        members = np.flatnonzero(y == label)
        pick = members[np.argsort(scores[members])[len(members) // 2]]
        ax.plot(X[pick], c="C0", label="beat")
        ax.plot(detector.reconstruct(X[pick : pick + 1])[0], c="C1", ls="--", label="reconstruction")
        flag = "flagged" if scores[pick] < detector.offset_ else "passed"
        ax.set_title(f"{_CLASS_NAMES.get(int(label), label)}\nscore {scores[pick]:.2f} ({flag})", fontsize=9)
        ax.set_xlabel("sample")
    axes[0].legend(fontsize=8)
    _save(fig, path)


def write_report(detector, X: np.ndarray, y: np.ndarray, report: dict, directory: Path, title: str) -> Path:
    """Draw every figure into ``directory`` and write an ``index.html`` showing them.

    Parameters
    ----------
    detector : LSTMAutoencoderDetector
        Fitted detector.
    X : ndarray of shape (n_beats, n_timesteps)
        Evaluated beats.
    y : ndarray of shape (n_beats,)
        Their classes, 1 = normal.
    report : dict
        :func:`ecgedge.evaluation.detection_report` of these beats.
    directory : Path
        Output folder (created).
    title : str
        Heading of the page.

    Returns
    -------
    Path
        The ``index.html`` written.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    scores = detector.score_samples(X)
    is_anomaly = y != 1
    figures = {
        "roc.png": ("ROC curve", lambda p: plot_roc(is_anomaly, scores, detector.offset_, p)),
        "scores.png": ("Scores of normal and abnormal beats", lambda p: plot_score_histograms(is_anomaly, scores, detector.offset_, p)),
        "confusion.png": ("Confusion matrix at the threshold", lambda p: plot_confusion_matrix(report["confusion_matrix"], p)),
        "reconstructions.png": ("Typical beat of each class and its reconstruction", lambda p: plot_reconstructions(detector, X, y, scores, p)),
        "loss.png": ("Training loss", lambda p: plot_loss_curve(detector.loss_curve_, detector.validation_loss_curve_, detector.best_epoch_, p)),
    }
    for name, (_, draw) in figures.items():
        draw(directory / name)
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{report[k]:.4f}</td></tr>"
        for k in ("roc_auc", "balanced_accuracy", "normal_recall", "anomaly_recall", "precision", "f1", "threshold")
    )
    sections = "".join(
        f'<h2>{html.escape(caption)}</h2><img src="{name}" alt="{html.escape(caption)}">' for name, (caption, _) in figures.items()
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}img{max-width:100%}"
        "td{padding:2px 12px}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{report['n_beats']} beats.</p><table>{rows}</table>{sections}</body></html>\n"
    )
    index = directory / "index.html"
    index.write_text(page)
    return index
