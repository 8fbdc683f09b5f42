"""``ecgedge train`` and ``ecgedge evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ecgedge.cli.options import dataset_option, output_file, read_beats, requires


@click.command()
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Model file to write.")
@dataset_option
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--max-epochs", type=click.IntRange(min=1), default=None, help="Override the default epoch budget.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed. On the CPU the same seed, data, machine and library versions give the same model bit for bit; another CPU gives the same metrics, weights equal to rounding.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@requires("train")
def train(out: Path, dataset: str, device: str, max_epochs: int | None, seed: int, quiet: bool) -> None:
    """Fit a detector on the normal beats (label 1) of the training split.

    --out is checked before training starts and written atomically: it holds
    the old file or the new model, never a partial one.
    """
    from ecgedge import LSTMAutoencoderDetector

    out = output_file(out, "--out")
    X, y = read_beats(dataset, "train")
    if not (y == 1).any():
        raise click.BadParameter(f"{dataset} has no beats labelled 1 (normal) to train on", param_hint="--dataset")
    params = {"device": device, "random_state": seed, "verbose": 0 if quiet else 1}
    if max_epochs is not None:
        params["max_epochs"] = max_epochs
    try:
        detector = LSTMAutoencoderDetector(**params).fit(X[y == 1])
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    detector.save(out)
    click.echo(
        f"trained on {int((y == 1).sum())} normal beats of {X.shape[1]} samples in "
        f"{detector.fit_time_:.1f} s on {detector.device_} "
        f"(best epoch {detector.best_epoch_ + 1}); wrote {out}"
    )


@click.command()
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path), required=False)
@dataset_option
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write PNG figures and an index.html to this folder.",
)
@requires("train")
def evaluate(model: Path | None, dataset: str, as_json: bool, report_dir: Path | None) -> None:
    """Score the test split and report ROC AUC, confusion matrix, precision, recall and F1.

    MODEL defaults to the pretrained model shipped with ecgedge.
    """
    from ecgedge.evaluation import detection_report
    from ecgedge.models import default_model_path
    from ecgedge.persistence import ModelFileError, load

    model = model or default_model_path()

    try:
        detector = load(model)
    except ModelFileError as err:
        raise click.ClickException(str(err)) from err
    X, y = read_beats(dataset, "test")
    try:
        report = detection_report(y != 1, detector.score_samples(X), detector.offset_)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    report = {"model": str(model), "dataset": dataset, **report}
    if report_dir is not None:
        from ecgedge.report import write_report

        write_report(detector, X, y, report, report_dir, f"ecgedge evaluation: {model.name} on {dataset}")
    if as_json:
        click.echo(json.dumps(report))
        return
    (tn, fp), (fn, tp) = report["confusion_matrix"]
    click.echo(f"{report['n_beats']} beats from {dataset}, threshold {report['threshold']:.4f}")
    click.echo(f"ROC AUC            {report['roc_auc']:.4f}")
    click.echo(f"balanced accuracy  {report['balanced_accuracy']:.4f}")
    click.echo(f"normal recall      {report['normal_recall']:.4f}")
    click.echo(f"anomaly recall     {report['anomaly_recall']:.4f}")
    click.echo(f"precision          {report['precision']:.4f}")
    click.echo(f"F1                 {report['f1']:.4f}")
    click.echo("confusion matrix (rows true, columns predicted)")
    click.echo(f"              normal  anomaly\n  normal  {tn:8d} {fp:8d}\n  anomaly {fn:8d} {tp:8d}")


COMMANDS = (train, evaluate)
