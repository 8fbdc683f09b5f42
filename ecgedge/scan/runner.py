"""``ecgedge scan`` as a library call: recordings -> Dask tasks -> beats and summary on disk.

The client (this process) finds the recordings, decides which need scanning (a
recording already done with the same content hash and settings is skipped), reads
their headers, and submits to a ``distributed.LocalCluster`` (worker processes, one
thread each) or to a running scheduler one task per segment and, depending on them,
one task per recording that joins them, decides the flags in one pass and writes the
recording's beats (:mod:`ecgedge.scan.tasks`, :mod:`ecgedge.scan.results`). The client
writes each recording's summary row as it finishes. A recording that fails (at any
step) gets a ``failed`` row with the error; the others go on.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecgedge import __version__
from ecgedge.scan import results
from ecgedge.scan.recordings import (
    Recording,
    RecordingError,
    content_hash,
    discover,
    file_stamp,
    pick_lead,
    read_header,
)
from ecgedge.scan.tasks import Settings, finish_recording, plan_segments, scan_segment


@dataclass
class ScanReport:
    """What a scan did.

    Attributes
    ----------
    rows : list of dict
        One summary row per recording found, in name order.
    scanned : int
        Recordings scanned this time (the others were unchanged and skipped).
    elapsed_s : float
        Seconds from the first task submitted to the last recording written.
    dashboard : str or None
        The Dask dashboard's address.
    """

    rows: list[dict]
    scanned: int
    elapsed_s: float
    dashboard: str | None

    @property
    def failed(self) -> list[dict]:
        return [row for row in self.rows if row["status"] != "done"]

    @property
    def beats(self) -> int:
        return sum(row.get("beats") or 0 for row in self.rows)


def fingerprint(settings: Settings) -> dict:
    """What a done recording must have been scanned with to be skipped: the bundle's manifest hash and the settings."""
    manifest = Path(settings.bundle) / "bundle.json"
    try:
        bundle = hashlib.sha256(manifest.read_bytes()).hexdigest()
    except OSError as exc:
        raise FileNotFoundError(f"no bundle manifest at {manifest}: {exc}") from None
    return {
        **{k: v for k, v in dataclasses.asdict(settings).items() if k != "bundle"},
        "leads": list(settings.leads),
        "bundle_sha256": bundle,
        "ecgedge": __version__,
    }


def scan(
    paths,
    out: str | Path,
    settings: Settings,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> ScanReport:
    """Scan every recording under ``paths`` into ``out``.

    Parameters
    ----------
    paths : iterable of str or Path
        Files and folders (searched recursively) of WFDB records and EDF files.
    out : str or Path
        Output folder (see :mod:`ecgedge.scan.results`); a re-run into the same
        folder resumes.
    settings : Settings
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); its workers
        must see the recordings, the bundle and ``out`` at the same paths.
    workers : int, optional
        Worker processes of the LocalCluster started when no scheduler is
        given (default: one per core).
    progress : bool, default=True
        Show a progress bar across recordings (tqdm, when installed).
    echo : callable, default=print
        Where the cluster's dashboard address and progress lines go.

    Returns
    -------
    ScanReport

    Raises
    ------
    RecordingError
        When a path does not exist or two recordings would share a name.
    FileNotFoundError
        When the bundle has no manifest.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    recordings = discover(paths)
    wanted = fingerprint(settings)
    rows: dict[str, dict] = {}
    todo = _sort_out(out, recordings, wanted, rows)
    if todo:
        echo(
            f"scan: {len(recordings)} recording(s), {len(recordings) - len(todo)} unchanged and done, "
            f"{len(todo)} to scan"
        )
    elapsed, client = _scan_todo(out, todo, settings, rows, scheduler, workers, progress, echo)
    ordered = [rows[r.name] for r in recordings]
    results.write_summary(out, ordered)
    return ScanReport(ordered, len(todo), elapsed, getattr(client, "dashboard_link", None))


def _sort_out(out: Path, recordings: list[Recording], wanted: dict, rows: dict) -> list[tuple[Recording, dict]]:
    """Record the recordings that need no scan (unchanged and done, or unreadable) and return the others.

    Parameters
    ----------
    out : Path
        Output folder.
    recordings : list of Recording
        Every recording found.
    wanted : dict
        The scan's :func:`fingerprint`.
    rows : dict
        Summary rows by recording name; gains the rows of the recordings recorded here.

    Returns
    -------
    list of (Recording, dict)
        The recordings to scan, each with its row so far.
    """
    todo: list[tuple[Recording, dict]] = []
    for recording in recordings:
        previous = results.read_row(out, recording.name)
        row = _base_row(recording, previous, wanted)
        if previous and _unchanged(out, recording, previous, row, wanted):
            _finish(out, rows, {**previous, "stamp": row["stamp"]})  # same content: remember the new file times
        elif row["status"] == "failed":
            _finish(out, rows, row)
        else:
            todo.append((recording, row))
    return todo


def _unchanged(out: Path, recording: Recording, previous: dict, row: dict, wanted: dict) -> bool:
    """Whether a recording was scanned to the end before, from the same content, with the same settings.

    Parameters
    ----------
    out : Path
        Output folder.
    recording : Recording
    previous : dict
        Its row from an earlier scan.
    row : dict
        Its row now (:func:`_base_row`).
    wanted : dict
        The scan's :func:`fingerprint`.

    Returns
    -------
    bool
    """
    return (
        previous["status"] == "done"
        and previous.get("sha256") == row["sha256"]
        and previous.get("settings") == wanted
        and (out / "beats" / f"recording={recording.name}" / "part-0.parquet").exists()
    )


def _scan_todo(
    out: Path,
    todo: list[tuple[Recording, dict]],
    settings: Settings,
    rows: dict,
    scheduler: str | None,
    workers: int | None,
    progress: bool,
    echo: Callable[[str], None],
) -> tuple[float, Any]:
    """Scan the recordings to do on a Dask cluster (none is started when there are none), then close it.

    Parameters
    ----------
    out : Path
        Output folder.
    todo : list of (Recording, dict)
        The recordings to scan, each with its row so far.
    settings : Settings
    rows : dict
        Summary rows by recording name; gains a row per recording scanned.
    scheduler, workers, progress, echo
        As for :func:`scan`.

    Returns
    -------
    elapsed_s : float
        Seconds from the cluster being ready to its close.
    client : distributed.Client or None
        The client, closed (None when there was nothing to scan).
    """
    dask_log = logging.getLogger("distributed")
    level = dask_log.level
    dask_log.setLevel(logging.WARNING)  # workers starting and stopping are not the user's business
    client, cluster = _connect(scheduler, workers, echo) if todo else (None, None)
    started = time.perf_counter()
    try:
        if todo:
            _run(client, out, todo, settings, rows, progress, echo)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        dask_log.setLevel(level)
    return time.perf_counter() - started, client


def _base_row(recording: Recording, previous: dict | None, wanted: dict) -> dict:
    """The row's identity: path, format, content hash (reused when the files' sizes and times are unchanged)."""
    row: dict[str, Any] = {
        "recording": recording.name,
        "path": str(recording.path),
        "format": recording.kind,
        "status": "pending",
        "error": None,
    }
    try:
        stamp = [list(s) for s in file_stamp(recording)]
        known = previous.get("sha256") if previous is not None and previous.get("stamp") == stamp else None
        row.update(stamp=stamp, sha256=known or content_hash(recording), settings=wanted)
    except OSError as exc:
        row.update(status="failed", error=f"cannot read the files: {exc}", sha256=None, settings=wanted)
    return row


def _connect(scheduler: str | None, workers: int | None, echo):
    from distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
        echo(f"scan: Dask scheduler {scheduler}, dashboard: {client.dashboard_link}")
        return client, None
    n = workers or os.cpu_count() or 1
    cluster = LocalCluster(
        n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.ERROR
    )
    echo(f"scan: LocalCluster of {n} worker process(es), dashboard: {cluster.dashboard_link}")
    return Client(cluster), cluster


def _run(client, out: Path, todo, settings: Settings, rows: dict, progress: bool, echo) -> None:
    """Submit every recording's segment tasks and its finishing task; record each recording as it finishes."""
    from distributed import as_completed

    finishing, futures = {}, []
    for recording, row in todo:
        try:
            header = read_header(recording)
            lead = pick_lead(header, settings.leads, recording)
            segments = plan_segments(header, settings)
        except RecordingError as exc:
            _fail(out, rows, row, exc)
            continue
        row.update(
            fs=header.fs, lead=header.leads[lead], duration_s=header.n_samples / header.fs, segments=len(segments)
        )
        parts = [
            client.submit(scan_segment, recording, header, lead, start, stop, settings, pure=False)
            for start, stop in segments
        ]
        finish = client.submit(finish_recording, recording, header, settings, str(out.resolve()), *parts, pure=False)
        finishing[finish.key] = row
        futures.append(finish)
    bar = _progress(len(todo), progress, echo)
    bar.update(len(todo) - len(finishing))
    for future in as_completed(futures):
        row = finishing[future.key]
        if future.status == "finished":
            row.update(
                future.result(),
                status="done",
                scanned_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            )
            _finish(out, rows, row)
        else:
            _fail(out, rows, row, future.exception())
            bar.write(f"scan: {row['recording']} failed: {row['error']}")
        future.release()
        bar.update(1)
    bar.close()


def _fail(out: Path, rows: dict, row: dict, exc: BaseException) -> None:
    error = str(exc) if isinstance(exc, RecordingError) else f"{type(exc).__name__}: {exc}"
    row.update(status="failed", error=error)
    results.forget_beats(out, row["recording"])
    _finish(out, rows, row)


def _finish(out: Path, rows: dict, row: dict) -> None:
    results.write_row(out, row)
    rows[row["recording"]] = row


class _Lines:
    """Progress as lines, where tqdm is not installed or no bar is wanted."""

    def __init__(self, total: int, echo) -> None:
        self.total, self.done, self.echo = total, 0, echo

    def update(self, n: int) -> None:
        self.done += n

    def write(self, line: str) -> None:
        self.echo(line)

    def close(self) -> None:
        self.echo(f"scan: {self.done}/{self.total} recording(s) scanned")


def _progress(total: int, wanted: bool, echo):
    if wanted:
        try:
            from tqdm import tqdm

            return tqdm(total=total, unit="rec", desc="scan")
        except ImportError:
            pass
    return _Lines(total, echo)
