"""``ecgedge train`` and ``ecgedge evaluate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ecgedge.analysis.judge import DEFAULT_ADAPT_S
from ecgedge.cli.options import FiniteFloat, dataset_option, output_file, read_beats, requires

wfdb_option = click.option(
    "--wfdb",
    "wfdb_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="A directory of annotated WFDB records (such as PhysioNet's mitdb) instead of --dataset: beats are found "
    "and cut as the bridge does, in a window fixed in time.",
)
records_option = click.option(
    "--records", default=None, help="With --wfdb: record names, separated by spaces or commas (default: all)."
)


def read_records(wfdb_dir: Path, records: str | None, beat_format):
    """The annotated beats of ``--wfdb``'s records, found and cut as the bridge does."""
    from ecgedge.datasets import load_annotated_beats

    names = records.replace(",", " ").split() if records else None
    try:
        return load_annotated_beats(wfdb_dir, beat_format, records=names, positions="bridge")
    except (FileNotFoundError, ValueError) as err:
        raise click.BadParameter(str(err), param_hint="--wfdb/--records") from None


@click.command()
@click.option(
    "--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Model file to write."
)
@dataset_option
@wfdb_option
@records_option
@click.option(
    "--per-record",
    type=click.IntRange(min=1),
    default=300,
    show_default=True,
    help="With --wfdb: N beats drawn per record.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--max-epochs", type=click.IntRange(min=1), default=None, help="Override the default epoch budget.")
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help=(
        "Random seed. On the CPU the same seed, data, machine and library versions give the same model bit for bit; "
        "another CPU gives the same metrics, weights equal to rounding."
    ),
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@requires("train")
def train(
    out: Path,
    dataset: str,
    wfdb_dir: Path | None,
    records: str | None,
    per_record: int,
    device: str,
    max_epochs: int | None,
    seed: int,
    quiet: bool,
) -> None:
    """Fit a detector on normal beats.

    With --dataset: the beats labelled 1 (normal) of the training split. With
    --wfdb: a population model (ecgedge.population) on the AAMI N beats of
    many patients' records, the recipe of the shipped population.npz.

    --out is checked before training starts and written atomically: it holds
    the old file or the new model, never a partial one.
    """
    from ecgedge import LSTMAutoencoderDetector

    out = output_file(out, "--out")
    params: dict[str, Any] = {"device": device, "random_state": seed, "verbose": 0 if quiet else 1}
    if max_epochs is not None:
        params["max_epochs"] = max_epochs
    try:
        if wfdb_dir is not None:
            from ecgedge.population import POPULATION_FORMAT, fit_population

            beats = read_records(wfdb_dir, records, POPULATION_FORMAT)
            detector = fit_population(beats, per_record=per_record, **params)
            what = f"the N beats of {len(beats.records)} records (up to {per_record} each)"
        else:
            X, y = read_beats(dataset, "train")
            if not (y == 1).any():
                raise click.BadParameter(
                    f"{dataset} has no beats labelled 1 (normal) to train on", param_hint="--dataset"
                )
            detector = LSTMAutoencoderDetector(**params).fit(X[y == 1])
            what = f"{int((y == 1).sum())} normal beats"
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    detector.save(out)
    click.echo(
        f"trained on {what} of {detector.n_features_in_} samples in "
        f"{detector.fit_time_:.1f} s on {detector.device_} "
        f"(best epoch {detector.best_epoch_ + 1}); wrote {out}"
    )


@click.command()
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path), required=False)
@dataset_option
@wfdb_option
@records_option
@click.option(
    "--adapt",
    "adapt_s",
    type=FiniteFloat(min=0),
    default=DEFAULT_ADAPT_S,
    show_default=True,
    help=(
        "With --wfdb: seconds of each record the patient is learnt from, as the bridge does (0: judge every beat by "
        "the model's threshold)."
    ),
)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write PNG figures and an index.html to this folder (with --wfdb: a strip of each record).",
)
@requires("train")
def evaluate(
    model: Path | None,
    dataset: str,
    wfdb_dir: Path | None,
    records: str | None,
    adapt_s: float,
    as_json: bool,
    report_dir: Path | None,
) -> None:
    """Score labelled beats and report how the detector does.

    With --dataset: the test split; ROC AUC, confusion matrix, precision,
    recall and F1; MODEL defaults to the shipped ECG5000 model. With --wfdb:
    annotated records as an arrhythmia analyser is judged (ANSI/AAMI EC57:
    beats the bridge finds, matched within 150 ms, AAMI classes), per record
    and gross, and the alarms: ventricular couplets and runs, VT and VF /
    flutter episodes (Se, +P, time to alarm), false alarms per hour of each
    kind and the heart rate's error; MODEL defaults to the shipped population
    model.
    """
    from ecgedge.models import default_model_path, population_model_path
    from ecgedge.persistence import ModelFileError, load

    model = model or (population_model_path() if wfdb_dir is not None else default_model_path())
    try:
        detector = load(model)
    except ModelFileError as err:
        raise click.ClickException(str(err)) from err
    if wfdb_dir is not None:
        _evaluate_records(detector, model, wfdb_dir, records, adapt_s, as_json, report_dir)
        return
    from ecgedge.evaluation import detection_report

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


def _evaluate_records(
    detector, model: Path, wfdb_dir: Path, records: str | None, adapt_s: float, as_json: bool, report_dir: Path | None
) -> None:
    """``evaluate --wfdb``: the bridge's verdicts on annotated records, in AAMI terms."""
    from ecgedge.arrhythmia import arrhythmia_report, format_report, format_rhythm_report, judge_records, rhythm_report
    from ecgedge.beatformat import BeatFormat
    from ecgedge.datasets import load_other_leads, load_wfdb_record
    from ecgedge.evaluation_alarms import AlarmTrace, alarm_summary, format_alarm_report, score_record

    beat_format = (
        BeatFormat.from_dict(detector.beat_format) if detector.beat_format else BeatFormat(detector.n_features_in_)
    )
    beats = read_records(wfdb_dir, records, beat_format)
    scores = detector.score_samples(beats.X)
    trace = AlarmTrace(beats.record, beats.sample, scores, detector.offset_)
    verdicts = judge_records(
        beats, scores, detector.offset_, adapt_s=adapt_s or None, beat_format=beat_format, observe=trace
    )
    read = {name: load_wfdb_record(wfdb_dir / name, lead="MLII") for name in beats.records}
    alarms = {
        name: score_record(
            read[name], trace, name, learning_s=adapt_s, other_leads=load_other_leads(wfdb_dir / name, "MLII")
        )
        for name in beats.records
    }
    report = {
        **arrhythmia_report(beats, verdicts),
        "rhythm": rhythm_report(beats, verdicts),
        "alarms": {"per_record": alarms, "gross": alarm_summary(alarms)},
    }
    table = (
        f"{format_report(report)}\n\nRhythm (every beat; AF = the reference's (AFIB and (AFL) and signal "
        f"quality:\n\n{format_rhythm_report(report['rhythm'])}\n\nAlarms (ANSI/AAMI EC57: runs against the "
        f"reference beats, episodes against its rhythm annotations; beat alarms after the first {adapt_s:g} s):"
        f"\n\n{format_alarm_report(alarms)}"
    )
    if report_dir is not None:
        from ecgedge.report import write_arrhythmia_report

        strips = {}
        for name in beats.records:
            record, mine = read[name], beats.record == name
            strips[name] = (
                record.signal,
                record.fs,
                beats.time[mine],
                beats.aami[mine],
                verdicts.anomaly[mine],
                verdicts.rhythm[mine],
                verdicts.quality[mine],
            )
        write_arrhythmia_report(strips, table, report_dir, f"ecgedge: {model.name} on {wfdb_dir}", after=adapt_s)
    if as_json:
        click.echo(json.dumps({"model": str(model), "wfdb": str(wfdb_dir), "adapt_s": adapt_s, **report}))
        return
    click.echo(
        f"{len(beats.records)} records, {len(beats)} beats found by the bridge; first {adapt_s:g} s of each "
        "learnt, the rest judged"
    )
    click.echo(table)


COMMANDS = (train, evaluate)
