"""Detection benchmark on ECG5000: ecgedge's detector against its peers, side by side.

Both protocols of ARCHITECTURE.md, the same splits and seeds for every method:

* ``ucr``: fit on the normal beats of ECG5000_TRAIN, score all of ECG5000_TEST;
* ``pooled``: pool TRAIN and TEST, split the normal beats 85 / 10 / 5 %
  (train / validation / test) with the seed, test = normal test beats plus
  every abnormal beat (the seeds' split: 146 normal, 2081 abnormal beats).

Methods: ``ecgedge`` (the detector with its defaults), IsolationForest,
OneClassSVM, LocalOutlierFactor(novelty=True), PCA reconstruction error and
``seed-recipe``, a re-implementation of the seeds' model (beats scaled by
StandardScaler, two-layer LSTM encoder, one-layer LSTM decoder, MSE, Adam
1e-4, batch 8, 100 epochs, fixed threshold 0.3 on the reconstruction MSE).
Each reports ROC AUC and, at its own calibrated threshold, normal and
anomaly recall, balanced accuracy, precision and F1, plus its fit time.

Run ``python benchmarks/detection.py --help``. Results go to
``benchmarks/results/detection-<date>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from results_file import write_results

METHODS = ("ecgedge", "isolation-forest", "one-class-svm", "lof-novelty", "pca-reconstruction", "seed-recipe")
METRICS = ("roc_auc", "normal_recall", "anomaly_recall", "balanced_accuracy", "precision", "f1", "fit_seconds")
RECIPE = {"hidden": (32, 16), "learning_rate": 1e-4, "batch_size": 8, "threshold": 0.3}


def make_split(protocol: str, seed: int) -> dict[str, np.ndarray]:
    """Training, validation and test beats of one protocol and seed (test labels: True = anomaly)."""
    from ecgedge.datasets import load_ecg5000

    if protocol == "ucr":
        X_train, y_train = load_ecg5000("train", return_X_y=True)
        X_test, y_test = load_ecg5000("test", return_X_y=True)
        return {"train": X_train[y_train == 1], "val": X_train[:0], "test": X_test, "is_anomaly": y_test != 1}
    X, y = load_ecg5000("all", return_X_y=True)
    normal = np.random.RandomState(seed).permutation(np.flatnonzero(y == 1))
    n_test, n_val = int(np.ceil(0.05 * len(normal))), int(np.ceil(0.10 * len(normal)))
    test = np.concatenate([normal[:n_test], np.flatnonzero(y != 1)])
    return {
        "train": X[normal[n_test + n_val :]],
        "val": X[normal[n_test : n_test + n_val]],
        "test": X[test],
        "is_anomaly": y[test] != 1,
    }


def _seed_recipe(X_train: np.ndarray, X_test: np.ndarray, seed: int, epochs: int, device: str):
    """The seeds' recipe: returns (scores, offset), score = minus the reconstruction MSE."""
    import torch
    from sklearn.preprocessing import StandardScaler
    from torch import nn

    from ecgedge.nn import reconstruction_error

    class SeedRecipeAutoencoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            wide, code = RECIPE["hidden"]
            self.encoder = nn.LSTM(1, wide, batch_first=True)
            self.bottleneck = nn.LSTM(wide, code, batch_first=True)
            self.decoder = nn.LSTM(code, wide, batch_first=True)
            self.to_sample = nn.Linear(wide, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            hidden, _ = self.bottleneck(self.encoder(x.unsqueeze(-1))[0])
            steps = hidden[:, -1:].expand(-1, x.shape[1], -1)
            return self.to_sample(self.decoder(steps)[0]).squeeze(-1)

    torch.manual_seed(seed)
    rng = np.random.RandomState(seed)
    scaler = StandardScaler().fit(X_train)
    train = torch.as_tensor(scaler.transform(X_train), dtype=torch.float32, device=device)
    model = SeedRecipeAutoencoder().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=RECIPE["learning_rate"])
    for _ in range(epochs):
        for batch in train[torch.as_tensor(rng.permutation(len(train)), device=device)].split(RECIPE["batch_size"]):
            optimizer.zero_grad(set_to_none=True)
            reconstruction_error(batch, model(batch), "mse").mean().backward()
            optimizer.step()
    model.eval()
    test = torch.as_tensor(scaler.transform(X_test), dtype=torch.float32, device=device)
    with torch.no_grad():
        errors = torch.cat([reconstruction_error(b, model(b), "mse") for b in test.split(1024)])
    return -errors.cpu().numpy(), -RECIPE["threshold"]


def fit_and_score(method: str, split: dict, seed: int, settings: dict) -> tuple[np.ndarray, float]:
    """Fit ``method`` on the training beats; return test scores (higher = normal) and its threshold."""
    X_train, X_test = split["train"], split["test"]
    if method == "ecgedge":
        from ecgedge import LSTMAutoencoderDetector

        params = {"device": settings["device"], "random_state": seed}
        if settings["max_epochs"]:
            params["max_epochs"] = settings["max_epochs"]
        detector = LSTMAutoencoderDetector(**params).fit(X_train)
        return detector.score_samples(X_test), detector.offset_
    if method == "seed-recipe":
        return _seed_recipe(X_train, X_test, seed, settings["recipe_epochs"], settings["device"])
    if method == "pca-reconstruction":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=5, random_state=seed).fit(X_train)

        def score(X):
            return -((X - pca.inverse_transform(pca.transform(X))) ** 2).mean(axis=1)

        return score(X_test), float(np.percentile(score(X_train), 2.0))
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import LocalOutlierFactor
    from sklearn.svm import OneClassSVM

    model = {
        "isolation-forest": lambda: IsolationForest(random_state=seed),
        "one-class-svm": lambda: OneClassSVM(gamma="scale", nu=0.02),
        "lof-novelty": lambda: LocalOutlierFactor(novelty=True),
    }[method]().fit(X_train)
    return model.decision_function(X_test), 0.0


def run_one(job: tuple[str, str, int, dict]) -> dict:
    """One (protocol, method, seed) cell: metrics and fit time."""
    protocol, method, seed, settings = job
    import torch

    from ecgedge.evaluation import detection_report

    torch.set_num_threads(settings["threads"])
    split = make_split(protocol, seed)
    start = time.perf_counter()
    scores, offset = fit_and_score(method, split, seed, settings)
    seconds = time.perf_counter() - start
    report = detection_report(split["is_anomaly"], scores, offset)
    result = {"protocol": protocol, "method": method, "seed": seed, "fit_seconds": seconds}
    result.update({k: report[k] for k in METRICS if k in report})
    result["confusion_matrix"] = report["confusion_matrix"]
    print(
        json.dumps(
            {k: result[k] for k in ("protocol", "method", "seed", "roc_auc", "balanced_accuracy", "fit_seconds")}
        ),
        flush=True,
    )
    return result


def summarise(results: list[dict]) -> dict:
    """Mean and standard deviation of every metric per protocol and method."""
    table: dict = {}
    for r in results:
        table.setdefault(r["protocol"], {}).setdefault(r["method"], []).append(r)
    return {
        protocol: {
            method: {
                "n_seeds": len(rows),
                **{
                    m: {"mean": float(np.mean([r[m] for r in rows])), "std": float(np.std([r[m] for r in rows]))}
                    for m in METRICS
                },
            }
            for method, rows in methods.items()
        }
        for protocol, methods in table.items()
    }


def environment(settings: dict) -> dict:
    """Machine and library versions the run used."""
    import sklearn
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "settings": settings,
    }


def markdown(summary: dict, env: dict) -> str:
    """The results as markdown tables, one per protocol."""
    lines = [
        f"# ECG5000 detection benchmark ({env['date']})",
        "",
        f"Machine: {env['machine']}, {env['cpu_count']} CPUs, GPU: {env['gpu'] or 'none'}; "
        f"torch {env['torch']}, scikit-learn {env['sklearn']}, numpy {env['numpy']}.",
        f"Settings: `{json.dumps(env['settings'])}`. Mean ± standard deviation over seeds; recalls, "
        "precision and F1 at each method's own threshold; anomalies are the positive class.",
    ]
    names = ("ROC AUC", "normal recall", "anomaly recall", "balanced acc.", "precision", "F1", "fit s")
    for protocol, methods in summary.items():
        lines += [
            "",
            f"## {protocol}",
            "",
            "| method | seeds | " + " | ".join(names) + " |",
            "|---" * (len(names) + 2) + "|",
        ]
        for method, row in sorted(methods.items(), key=lambda kv: -kv[1]["roc_auc"]["mean"]):
            cells = [f"{row[m]['mean']:.4f} ± {row[m]['std']:.4f}" for m in METRICS[:-1]]
            cells.append(f"{row['fit_seconds']['mean']:.1f} ± {row['fit_seconds']['std']:.1f}")
            lines.append(f"| {method} | {row['n_seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="Torch device of the neural methods (cpu, cuda, auto).")
    parser.add_argument("--seeds", type=int, default=5, help="Seeds 0..N-1.")
    parser.add_argument("--protocols", default="ucr,pooled", help="Comma-separated: ucr, pooled.")
    parser.add_argument("--methods", default=",".join(METHODS), help="Comma-separated subset of " + ", ".join(METHODS))
    parser.add_argument("--jobs", type=int, default=1, help="Parallel worker processes.")
    parser.add_argument("--threads", type=int, default=1, help="Torch threads per worker.")
    parser.add_argument(
        "--max-epochs", type=int, default=None, help="Override ecgedge's epoch budget (default: its own)."
    )
    parser.add_argument(
        "--recipe-epochs", type=int, default=100, help="Epochs of the seeds' recipe (the recipe says 100)."
    )
    parser.add_argument(
        "--pooled-seeds", type=int, default=None, help="Seeds of the pooled protocol (default: --seeds)."
    )
    parser.add_argument("--pooled-max-epochs", type=int, default=None, help="--max-epochs for the pooled protocol.")
    parser.add_argument(
        "--pooled-recipe-epochs", type=int, default=None, help="--recipe-epochs for the pooled protocol."
    )
    parser.add_argument("--quick", action="store_true", help="Smoke run: 1 seed, 3 epochs for the neural methods.")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="Results folder.")
    parser.add_argument("--tag", default="", help="Suffix of the result file names (after a hyphen).")
    args = parser.parse_args(argv)
    common = {"device": args.device, "threads": args.threads, "recipe": RECIPE}
    ucr = {
        "seeds": 1 if args.quick else args.seeds,
        "max_epochs": 3 if args.quick else args.max_epochs,
        "recipe_epochs": 3 if args.quick else args.recipe_epochs,
    }
    pooled = {
        "seeds": ucr["seeds"] if args.quick or args.pooled_seeds is None else args.pooled_seeds,
        "max_epochs": ucr["max_epochs"] if args.quick or args.pooled_max_epochs is None else args.pooled_max_epochs,
        "recipe_epochs": ucr["recipe_epochs"]
        if args.quick or args.pooled_recipe_epochs is None
        else args.pooled_recipe_epochs,
    }
    settings = {"ucr": {**common, **ucr}, "pooled": {**common, **pooled}}
    protocols = args.protocols.split(",")
    jobs = [
        (protocol, method, seed, settings[protocol])
        for method in args.methods.split(",")
        for protocol in protocols
        for seed in range(settings[protocol]["seeds"])
    ]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run_one, jobs))
    env = environment({p: settings[p] for p in protocols})
    summary = summarise(results)
    write_results(
        "detection",
        {"environment": env, "summary": summary, "runs": results},
        markdown(summary, env),
        args.out,
        args.tag,
    )
    print(markdown(summary, env))


if __name__ == "__main__":
    main()
