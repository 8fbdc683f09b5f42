"""Finding recordings and reading one lead of them: WFDB records and EDF/EDF+ files.

WFDB is read with :mod:`wfdb`, EDF/EDF+ (and BDF) with :mod:`pyedflib`. Both give the
lead as ADC counts, with the gain and baseline that turn them into mV as the bridge turns a
board's counts (``(counts - baseline) / gain``), so the offline path gets the very samples
the live bridge would. What cannot be used (an
unreadable or truncated file, no wanted lead, a unit that is not a voltage) is a
:class:`RecordingError` naming the file and the problem.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgedge.analysis.signal_quality import adc_rails
from ecgedge.datasets import Annotations
from ecgedge.datasets import read_annotations as read_wfdb_annotations

#: File endings read as EDF (pyedflib reads EDF, EDF+ and BDF).
EDF_SUFFIXES = (".edf", ".bdf")
#: Bytes per sample of the WFDB signal formats whose file size is checked.
_WFDB_BYTES = {"8": 1, "16": 2, "61": 2, "80": 1, "160": 2, "212": 1.5, "24": 3, "32": 4, "310": 4 / 3, "311": 4 / 3}
#: mV per unit of the EDF physical dimensions understood.
_VOLTS = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "v": 1e3}


class RecordingError(ValueError):
    """A recording cannot be scanned; the message names the file and why."""


@dataclass(frozen=True)
class Recording:
    """One recording found on disk.

    Attributes
    ----------
    name : str
        Its name in the outputs: the path below the scanned folder, without
        extension, ``/`` written as ``__`` (a file given directly: its stem).
    kind : {"wfdb", "edf"}
    path : Path
        The EDF file, or the WFDB record path without extension.
    """

    name: str
    kind: str
    path: Path

    @property
    def files(self) -> list[Path]:
        """The files its content hash covers (header, signal files, annotations)."""
        if self.kind == "edf":
            return [self.path]
        return sorted(p for p in self.path.parent.glob(self.path.name + ".*") if p.is_file())


@dataclass(frozen=True)
class Header:
    """What a recording holds, read without its samples."""

    fs: float
    n_samples: int
    leads: tuple[str, ...]


def discover(paths) -> list[Recording]:
    """Every WFDB record (``*.hea``) and EDF file under the given files and folders, sorted by name.

    Raises
    ------
    RecordingError
        A path that does not exist, a file of another kind, or two recordings
        that would get one name.
    """
    found: dict[str, Recording] = {}
    for given in map(Path, paths):
        if given.is_dir():
            candidates = [(p, p.relative_to(given)) for p in sorted(given.rglob("*")) if p.is_file()]
        elif given.exists() or given.with_suffix(".hea").exists():
            candidates = [(given, Path(given.name))]
        else:
            raise RecordingError(f"{given}: no such file or folder")
        for path, rel in candidates:
            suffix = path.suffix.lower()
            if suffix in EDF_SUFFIXES:
                kind = "edf"
            elif suffix == ".hea" or (path == given and path.with_suffix(".hea").exists()):
                kind = "wfdb"
            elif suffix in (".dat", ".atr") and not path.with_suffix(".hea").exists():
                kind = "wfdb"  # a record's files without its header: reported as failed, never skipped unseen
            elif path == given:
                raise RecordingError(f"{given}: neither a WFDB record nor an EDF file")
            else:
                continue
            name = re.sub(r"[^A-Za-z0-9._-]", "_", "__".join(rel.with_suffix("").parts))
            record = Recording(name, kind, path.with_suffix("") if kind == "wfdb" else path)
            if name in found and found[name] != record:
                raise RecordingError(
                    f"{found[name].path} and {record.path} would both be named {name!r}; scan them separately"
                )
            found[name] = record
    return sorted(found.values(), key=lambda r: r.name)


def content_hash(recording: Recording) -> str:
    """SHA-256 over the recording's files (names and bytes)."""
    digest = hashlib.sha256()
    for path in recording.files:
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def file_stamp(recording: Recording) -> list[tuple[str, int, int]]:
    """(name, size, mtime_ns) of each file: when unchanged, the stored content hash is reused."""
    return [(p.name, (s := p.stat()).st_size, s.st_mtime_ns) for p in recording.files]


def pick_lead(header: Header, wanted: tuple[str, ...], recording: Recording) -> int:
    """Index of the first of ``wanted`` the recording has (no ``wanted``: the first lead)."""
    if not wanted:
        return 0
    for lead in wanted:
        if lead in header.leads:
            return header.leads.index(lead)
    raise RecordingError(
        f"{recording.path}: none of the leads {list(wanted)} is in the recording; it has {list(header.leads)}"
    )


def read_header(recording: Recording) -> Header:
    """The recording's sample rate, length and leads.

    Raises
    ------
    RecordingError
        Unreadable or truncated files, leads of different sample rates (EDF).
    """
    if recording.kind == "edf":
        with _edf(recording) as f:
            rates = {float(f.getSampleFrequency(i)) for i in range(f.signals_in_file)}
            labels = tuple(label.strip() for label in f.getSignalLabels())
            n = int(max(f.getNSamples())) if f.signals_in_file else 0
        if len(rates) > 1:
            raise RecordingError(
                f"{recording.path}: signals at several sample rates {sorted(rates)}; one rate is supported"
            )
        return Header(rates.pop() if rates else 0.0, n, labels)
    header = _wfdb_header(recording)
    return Header(float(header.fs), int(header.sig_len or 0), tuple(header.sig_name or ()))


@dataclass(frozen=True)
class LeadCounts:
    """Samples of one lead as its ADC gave them, and how they become mV.

    Attributes
    ----------
    counts : ndarray of int64
    gain : float
        ADC counts per mV.
    baseline : int
        The count of 0 mV.
    rails : ndarray of int64
        Counts at which the ADC is saturated (:func:`~ecgedge.analysis.signal_quality.adc_rails`;
        an EDF file's digital minimum and maximum).
    """

    counts: np.ndarray
    gain: float
    baseline: int
    rails: np.ndarray

    @property
    def millivolts(self) -> np.ndarray:
        """The samples in mV, ``(counts - baseline) / gain``, as the bridge turns a board's counts."""
        return (self.counts.astype(np.float64) - self.baseline) / self.gain


def read_lead(recording: Recording, lead: int, start: int, stop: int) -> np.ndarray:
    """Samples ``start .. stop`` of one lead in mV: the file's ADC counts through its gain and baseline.

    Raises
    ------
    RecordingError
        As :func:`read_counts`.
    """
    return read_counts(recording, lead, start, stop).millivolts


def read_counts(recording: Recording, lead: int, start: int, stop: int) -> LeadCounts:
    """Samples ``start .. stop`` of one lead as ADC counts, with their gain, baseline and rails.

    Raises
    ------
    RecordingError
        When the file cannot be read, holds fewer samples than its header says, or gives no
        positive gain.
    """
    if recording.kind == "edf":
        with _edf(recording) as f:
            counts = f.readSignal(lead, start, stop - start, digital=True)
            label = f.getLabel(lead).strip()
            unit = f.getPhysicalDimension(lead).strip()
            dmin, dmax = f.getDigitalMinimum(lead), f.getDigitalMaximum(lead)
            pmin, pmax = f.getPhysicalMinimum(lead), f.getPhysicalMaximum(lead)
        scale = _VOLTS.get(unit.lower())
        if scale is None:
            raise RecordingError(f"{recording.path}: lead {label!r} is in {unit!r}, not a voltage (mV, uV, V)")
        if pmax == pmin or dmax == dmin:
            raise RecordingError(f"{recording.path}: lead {label!r} has an empty physical or digital range")
        gain = (dmax - dmin) / ((pmax - pmin) * scale)  # counts per mV
        baseline = round(dmin - pmin * scale * gain)  # an integer count, as a board's HELLO gives it
        rails = np.union1d(adc_rails(0, baseline), [dmin, dmax])
    else:
        import wfdb

        header = _wfdb_header(recording)
        try:
            record = wfdb.rdrecord(str(recording.path), channels=[lead], physical=False, sampfrom=start, sampto=stop)
        except Exception as exc:  # noqa: BLE001 - whatever wfdb raises, the recording is unreadable
            raise RecordingError(f"{recording.path}: cannot read the signal: {type(exc).__name__}: {exc}") from exc
        counts = record.d_signal[:, 0]
        gain, baseline = float(header.adc_gain[lead]), int(header.baseline[lead])
        rails = adc_rails(int(header.adc_res[lead] or 0), baseline)
    if not (np.isfinite(gain) and gain > 0):
        raise RecordingError(f"{recording.path}: lead {lead} has a gain of {gain} ADC counts/mV; it must be positive")
    if len(counts) != stop - start:
        raise RecordingError(f"{recording.path}: read {len(counts)} samples of {start}..{stop}; the file is truncated")
    return LeadCounts(np.asarray(counts).astype(np.int64), gain, int(baseline), rails.astype(np.int64))


def read_annotations(recording: Recording) -> Annotations | None:
    """A WFDB record's reference beats and rhythm changes (its ``.atr`` file); None without one."""
    if recording.kind != "wfdb":
        return None
    return read_wfdb_annotations(recording.path)


def _wfdb_header(recording: Recording):
    import wfdb

    try:
        header = wfdb.rdheader(str(recording.path))
    except Exception as exc:  # noqa: BLE001 - whatever wfdb raises, the header is unreadable
        raise RecordingError(f"{recording.path}.hea: unreadable WFDB header: {type(exc).__name__}: {exc}") from exc
    if not header.sig_len or not header.n_sig:
        raise RecordingError(f"{recording.path}.hea: the header gives no signal length or no signals")
    files: dict[str, list[str]] = {}
    # wfdb fills both from the header's signal lines; not strict: a third-party object, checked no further here
    for name, fmt in zip(header.file_name, header.fmt, strict=False):
        files.setdefault(name, []).append(fmt)
    for name, fmts in files.items():
        path = recording.path.parent / name
        if not path.exists():
            raise RecordingError(f"{path}: signal file missing")
        if all(f in _WFDB_BYTES for f in fmts):
            need = int(np.ceil(header.sig_len * sum(_WFDB_BYTES[f] for f in fmts)))
            have = os.path.getsize(path)
            if have < need:
                raise RecordingError(
                    f"{path}: truncated: {have} bytes, the header's {header.sig_len} samples x {len(fmts)} signal(s) "
                    f"need {need}"
                )
    return header


class _edf:
    """``with _edf(recording) as reader``: a pyedflib reader, closed after, with errors named."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording

    def __enter__(self):
        import pyedflib

        try:
            self.reader = pyedflib.EdfReader(str(self.recording.path))
        except Exception as exc:  # noqa: BLE001 - pyedflib raises OSError with its own words
            raise RecordingError(f"{self.recording.path}: unreadable EDF: {exc}") from exc
        return self.reader

    def __exit__(self, *exc) -> None:
        self.reader.close()
