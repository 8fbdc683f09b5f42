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
    for ax, label in zip(axes, classes, strict=True):
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
        "scores.png": (
            "Scores of normal and abnormal beats",
            lambda p: plot_score_histograms(is_anomaly, scores, detector.offset_, p),
        ),
        "confusion.png": (
            "Confusion matrix at the threshold",
            lambda p: plot_confusion_matrix(report["confusion_matrix"], p),
        ),
        "reconstructions.png": (
            "Typical beat of each class and its reconstruction",
            lambda p: plot_reconstructions(detector, X, y, scores, p),
        ),
        "loss.png": (
            "Training loss",
            lambda p: plot_loss_curve(detector.loss_curve_, detector.validation_loss_curve_, detector.best_epoch_, p),
        ),
    }
    for name, (_, draw) in figures.items():
        draw(directory / name)
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{report[k]:.4f}</td></tr>"
        for k in ("roc_auc", "balanced_accuracy", "normal_recall", "anomaly_recall", "precision", "f1", "threshold")
    )
    sections = "".join(
        f'<h2>{html.escape(caption)}</h2><img src="{name}" alt="{html.escape(caption)}">'
        for name, (caption, _) in figures.items()
    )
    return _write_page(directory, title, f"<p>{report['n_beats']} beats.</p><table>{rows}</table>{sections}")


#: How a strip marks each AAMI class (colour) and a false detection.
_AAMI_COLOURS = {"N": "C0", "SVEB": "C1", "VEB": "C3", "F": "C4", "Q": "C7", "-": "k"}


def strip_start(time: np.ndarray, aami: np.ndarray, flagged: np.ndarray, seconds: float, after: float) -> float:
    """Start (s) of the ``seconds`` strip after ``after`` with the most abnormal and flagged beats."""
    interesting = time[(time >= after) & ((aami != "N") | flagged)]
    if not interesting.size:
        return float(after)
    counts = np.searchsorted(interesting, interesting + seconds) - np.arange(interesting.size)
    return float(max(after, interesting[np.argmax(counts)] - 1.0))


def _spans(time: np.ndarray, on: np.ndarray) -> list[tuple[float, float]]:
    """(first, last) times of each run of consecutive beats where ``on`` holds."""
    starts = np.flatnonzero(on & ~np.r_[False, on[:-1]])
    ends = np.flatnonzero(on & ~np.r_[on[1:], False])
    return [(float(time[a]), float(time[b])) for a, b in zip(starts, ends, strict=True)]


def plot_strip(
    signal: np.ndarray,
    fs: float,
    time: np.ndarray,
    aami: np.ndarray,
    flagged: np.ndarray,
    start: float,
    seconds: float,
    title: str,
    path: Path,
    rhythm: np.ndarray | None = None,
    quality: np.ndarray | None = None,
) -> None:
    """An ECG strip with every beat marked: its reference class (colour) and the detector's flag (filled).

    Stretches the rhythm analyser reads as AF are shaded orange, noisy stretches grey.

    Parameters
    ----------
    signal : ndarray of shape (n_samples,)
        The lead (mV).
    fs : float
    time : ndarray of shape (n_beats,)
        Beat times (s).
    aami : ndarray of shape (n_beats,), str
        AAMI class of each beat (``"-"``: a beat the reference does not have).
    flagged : ndarray of shape (n_beats,), bool
    start, seconds : float
        The strip shown.
    title : str
    path : Path
    rhythm, quality : ndarray of shape (n_beats,), str, optional
        Each beat's rhythm (``"af"`` shaded) and quality (``"noisy"`` shaded).
    """
    fig, ax = _figure(11.0, 2.8)
    for marks, value, colour, label in ((rhythm, "af", "C1", "read as AF"), (quality, "noisy", "0.6", "noisy")):
        for i, (a, b) in enumerate(_spans(time, np.asarray(marks) == value) if marks is not None else []):
            ax.axvspan(a, b, color=colour, alpha=0.15, lw=0, label=label if i == 0 else None)
    lo, hi = int(start * fs), int(min(len(signal), (start + seconds) * fs))
    ax.plot(np.arange(lo, hi) / fs, signal[lo:hi], c="0.25", lw=0.8)
    top = float(np.max(signal[lo:hi])) + 0.3 if hi > lo else 1.0
    shown = (time >= start) & (time < start + seconds)
    for cls, colour in _AAMI_COLOURS.items():
        for flag in (True, False):
            mine = shown & (aami == cls) & (flagged == flag)
            if mine.any():
                ax.scatter(
                    time[mine],
                    np.full(mine.sum(), top),
                    marker="v",
                    s=60,
                    c=colour if flag else "white",
                    edgecolors=colour,
                    label=f"{cls} {'flagged' if flag else 'not flagged'}",
                )
    ax.set(xlabel="time (s)", ylabel="mV", title=title, xlim=(start, start + seconds))
    ax.legend(fontsize=7, ncol=4, loc="lower right")
    _save(fig, path)


def write_arrhythmia_report(
    records: dict, table: str, directory: Path, title: str, seconds: float = 10.0, after: float = 0.0
) -> Path:
    """One strip per record and the results table, in ``directory/index.html``.

    Parameters
    ----------
    records : dict
        Record name to ``(signal, fs, time, aami, flagged, rhythm, quality)`` (see :func:`plot_strip`).
    table : str
        The results table (Markdown), shown as text.
    directory : Path
    title : str
    seconds : float, default=10.0
        Length of each strip.
    after : float, default=0.0
        Strips start after this time (s): the learning window is not shown.

    Returns
    -------
    Path
        The ``index.html`` written.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    sections = []
    for name, (signal, fs, time, aami, flagged, rhythm, quality) in records.items():
        start = strip_start(time, aami, flagged, seconds, after)
        caption = f"record {name}, {start:.0f}-{start + seconds:.0f} s"
        plot_strip(
            signal, fs, time, aami, flagged, start, seconds, caption, directory / f"strip-{name}.png", rhythm, quality
        )
        sections.append(
            f'<h2>{html.escape(caption)}</h2><img src="strip-{html.escape(name)}.png" alt="{html.escape(caption)}">'
        )
    legend = (
        "<p>Each beat is a triangle above the trace: colour is its reference class (blue N, orange SVEB, "
        "red VEB, purple F, grey Q, black: no reference beat), filled when ecgedge flagged it; orange shading: "
        "read as atrial fibrillation or flutter; grey shading: noisy (beats not judged).</p>"
    )
    return _write_page(directory, title, f"<pre>{html.escape(table)}</pre>{legend}{''.join(sections)}")


def _write_page(directory: Path, title: str, body: str) -> Path:
    """Write ``directory/index.html``: the title as heading, then ``body`` (HTML)."""
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}img{max-width:100%}"
        "td{padding:2px 12px}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )
    index = Path(directory) / "index.html"
    index.write_text(page)
    return index
