"""``ecgedge scan``: screen an archive of recordings for abnormal beats, on Dask."""

from __future__ import annotations

import click

from ecgedge.cli.options import requires


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    required=True,
    help="Output folder: beats/ (Parquet, one partition per recording), summary.parquet/.csv. A re-run resumes.",
)
@click.option(
    "--bundle",
    "bundle_dir",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help=(
        "Deployment bundle (ecgedge export). Default: the shipped model, exported once to OUT/bundle (needs the "
        "[export] extra)."
    ),
)
@click.option(
    "--scheduler",
    default=None,
    help=(
        "Address of a running Dask scheduler (tcp://host:8786); its workers must see the recordings, the bundle and "
        "OUT at the same paths."
    ),
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes of the LocalCluster started without --scheduler (default: one per core).",
)
@click.option(
    "--lead",
    "leads",
    multiple=True,
    help="Lead to scan; repeat to give names in order of preference (default: each recording's first lead).",
)
@click.option(
    "--polarity",
    type=click.Choice(["positive", "negative", "auto"]),
    default="positive",
    show_default=True,
    help="R-wave direction in the lead (MLII: positive).",
)
@click.option(
    "--calibrate",
    type=click.IntRange(min=2),
    default=120,
    show_default=True,
    help="Beats each recording's threshold is learnt from (not flagged), as 'ecgedge bridge --calibrate'.",
)
@click.option("--no-calibrate", is_flag=True, help="Judge every beat by the bundle's threshold instead.")
@click.option(
    "--adapt",
    "adapt_s",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help=(
        "Instead of --calibrate: adapt to each recording's patient over its first S seconds of beats, "
        "as 'ecgedge bridge --adapt' (best with a bundle of the population model, 'ecgedge export')."
    ),
)
@click.option("--precision", type=click.Choice(["fp32", "int8", "fp16"]), default="fp32", show_default=True)
@click.option(
    "--segment-minutes",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Length of one task: a longer recording is scanned in segments, in parallel.",
)
@click.option(
    "--overlap-s",
    type=click.FloatRange(min=30),
    default=300.0,
    show_default=True,
    help="Seconds streamed before each segment so the filters and R-peak levels have settled.",
)
@click.option(
    "--block-s",
    type=click.FloatRange(min=0.01, max=60),
    default=0.1,
    show_default=True,
    help=(
        "Seconds of signal per block fed to the bridge's pipeline: 0.1 as a board sends; 10 as a bridge catching up on "
        "a backlog (same beats, faster)."
    ),
)
@click.option(
    "--confirm-leads/--beat-lead-only",
    default=True,
    show_default=True,
    help="Asystole only when no lead of the recording shows an R peak, as 'ecgedge bridge --confirm-leads', or from "
    "the beat lead alone.",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@requires("scan")
def scan(
    paths,
    out,
    bundle_dir,
    scheduler,
    workers,
    leads,
    polarity,
    calibrate,
    no_calibrate,
    adapt_s,
    precision,
    segment_minutes,
    overlap_s,
    block_s,
    confirm_leads,
    no_progress,
) -> None:
    """Scan WFDB records and EDF/EDF+ files under PATHS through the bridge's offline path, on Dask.

    Each recording gets the beats, scores and flags the bridge would give it
    live. Recordings already done and unchanged (content hash, settings) are
    skipped; one that cannot be scanned is reported with why and the others go
    on. Exit status 1 when any recording failed (the summary says which).
    """
    from pathlib import Path

    from ecgedge.analysis.alarms import PRIORITY
    from ecgedge.evaluation_alarms import format_alarm_report
    from ecgedge.scan import RecordingError, Settings, discover
    from ecgedge.scan import scan as run_scan

    out = Path(out)
    try:
        discover(paths)  # a wrong path is said before any work
    except RecordingError as exc:
        raise click.ClickException(str(exc)) from None
    if bundle_dir is None:
        bundle_dir = _default_bundle(out)
    settings = Settings(
        bundle=str(Path(bundle_dir).resolve()),
        precision=precision,
        leads=tuple(leads),
        polarity=polarity,
        calibration_beats=None if no_calibrate or adapt_s else calibrate,
        adapt_s=adapt_s,
        segment_s=segment_minutes * 60,
        overlap_s=overlap_s,
        block_s=block_s,
        confirm_leads=confirm_leads,
    )
    try:
        report = run_scan(
            paths,
            out,
            settings,
            scheduler=scheduler,
            workers=workers,
            progress=not no_progress,
            echo=lambda s: click.echo(s, err=True),
        )
    except (RecordingError, FileNotFoundError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    for row in report.rows:
        if row["status"] == "done":
            fph = row.get("flags_per_hour")
            detail = f"beats={row['beats']} flagged={row['flagged']} flags/h={fph:.1f}"
            if row.get("qrs_se") is not None:
                detail += f" QRS Se={row['qrs_se']:.4f} +P={row['qrs_ppv']:.4f}"
            raised = [f"{kind}={row[f'{kind}_alarms']}" for kind in PRIORITY if row.get(f"{kind}_alarms")]
            detail += f" alarms: {' '.join(raised) or 'none'}"
        else:
            detail = row["error"]
        click.echo(f"{row['recording']}\t{row['status']}\t{detail}")
    scored = {row["recording"]: row["alarm_scores"] for row in report.rows if row.get("alarm_scores")}
    if scored:
        click.echo(f"alarms against the reference annotations of {len(scored)} recording(s):")
        click.echo(format_alarm_report(scored))
    failed = len(report.failed)
    click.echo(
        f"summary: {len(report.rows)} recording(s), {report.scanned} scanned, {failed} failed, {report.beats} beats; "
        f"{out / 'summary.csv'}"
    )
    if failed:
        raise click.ClickException(f"{failed} recording(s) failed; see {out / 'summary.csv'}")


def _default_bundle(out) -> str:
    """The shipped model's bundle in OUT/bundle, exported on first use."""
    from ecgedge.cli.deploy import write_bundle
    from ecgedge.models import default_model_path

    bundle = out / "bundle"
    if not (bundle / "bundle.json").exists():
        out.mkdir(parents=True, exist_ok=True)
        click.echo(f"scan: exporting the shipped model to {bundle}", err=True)
        write_bundle(default_model_path(), bundle, int8=True, fp16=False)
    return str(bundle)


COMMANDS = (scan,)
