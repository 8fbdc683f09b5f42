"""``bundle.json`` parsed and checked field by field before any other file is touched.

Every problem raises :class:`BundleError` naming the field (``beat.before_r``,
``files['../x']``) and what is wrong with it, never a ``KeyError``,
``AttributeError`` or ``RecursionError``. Keys this module does not know are
kept (newer writers may add some); the keys the runtime reads are checked for
type and range. Paths named by ``files`` and ``artifacts`` are checked as
text here (relative, no ``..``, listed); :mod:`ecgedge.runtime.bundle`
checks where they lead on disk.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import TypeGuard

from ecgedge.beatformat import BeatFormat

MANIFEST = "bundle.json"
#: The manifest's signature (:mod:`ecgedge.runtime.signing`).
SIGNATURE = "bundle.sig"
FORMAT = "ecgedge-bundle"
FORMAT_VERSION = 1
PRECISIONS = ("fp32", "int8", "fp16")
#: Largest ``bundle.json`` read (a real one is about 3 KB).
MAX_MANIFEST_BYTES = 1 << 20
#: Largest beat length and absolute threshold a manifest may state.
MAX_BEAT_LENGTH = 10_000
MAX_ABS_THRESHOLD = 1e6
MAX_SOURCE_FS = 100_000.0
_SHA256 = re.compile(r"[0-9a-f]{64}")


class BundleError(ValueError):
    """A bundle is missing, incomplete, truncated, altered, unsafe or of another format."""


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise BundleError(f"duplicate key {key!r} (a reader could see either value)")
        seen[key] = value
    return seen


def read_manifest_bytes(path: Path) -> bytes:
    """The bytes of ``bundle.json``, refused beyond :data:`MAX_MANIFEST_BYTES`.

    Raises
    ------
    BundleError
        When the file is missing or too large.
    """
    if not path.is_file():
        raise BundleError(f"{path.parent} is not a bundle: {MANIFEST} is missing")
    with open(path, "rb") as fh:
        data = fh.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise BundleError(f"{path} is larger than {MAX_MANIFEST_BYTES} bytes; refusing to parse it")
    return data


def parse_manifest(path: Path, data: bytes) -> dict:
    """Parse the bytes of ``bundle.json``, refusing duplicate keys.

    Parameters
    ----------
    path : Path
        The manifest file (for messages).
    data : bytes
        Its bytes (:func:`read_manifest_bytes`).

    Returns
    -------
    dict
        The parsed (not yet checked) manifest.

    Raises
    ------
    BundleError
        When the bytes are not UTF-8 JSON, are nested too deeply to parse,
        or repeat a key.
    """
    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except BundleError as err:
        raise BundleError(f"{path} has a {err}") from None
    except RecursionError:
        raise BundleError(f"{path} is nested too deeply to be a bundle manifest") from None
    except (UnicodeDecodeError, ValueError) as err:
        raise BundleError(f"{path} is not valid JSON (truncated or altered?): {err}") from None


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(where: str, value: object, lo: float, hi: float, *, lo_open: bool = False) -> None:
    if not _is_number(value) or not math.isfinite(value):
        raise BundleError(f"{where} must be a finite number, got {value!r}")
    if value < lo or value > hi or (lo_open and value == lo):
        low = "(" if lo_open else "["
        raise BundleError(f"{where} = {value!r} is outside {low}{lo:g}, {hi:g}]")


def _integer(where: str, value: object, lo: int, hi: int) -> None:
    if not _is_int(value) or not lo <= value <= hi:
        raise BundleError(f"{where} must be an integer in [{lo}, {hi}], got {value!r}")


def _section(where: str, manifest: dict, key: str, required: bool = True) -> dict:
    if key not in manifest:
        if required:
            raise BundleError(f"{where} lacks the required key {key!r}")
        return {}
    value = manifest[key]
    if not isinstance(value, dict):
        raise BundleError(f"{where}: {key!r} must be an object, got {type(value).__name__}")
    return value


def _string(where: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise BundleError(f"{where} must be a non-empty string, got {value!r}")


def _digest(where: str, value: object) -> None:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise BundleError(f"{where} must be a lowercase hex SHA-256, got {value!r}")


def check_name(where: str, name: object) -> str:
    """Check that a file name from the manifest stays inside the bundle directory.

    Parameters
    ----------
    where : str
        What to call the entry in an error (``"files['x']"``).
    name : object
        The name as found in the manifest.

    Returns
    -------
    str
        ``name``, a relative POSIX path with no ``..``, ``.`` or empty parts.

    Raises
    ------
    BundleError
        For a non-string, absolute, backslashed or climbing name, or one
        that names the manifest or its signature.
    """
    if not isinstance(name, str) or not name:
        raise BundleError(f"{where} must name a file, got {name!r}")
    parts = name.split("/")
    if name.startswith("/") or "\\" in name or ":" in name or "\0" in name:
        raise BundleError(f"{where} = {name!r} is not a plain relative path inside the bundle")
    if any(part in ("", ".", "..") for part in parts):
        raise BundleError(f"{where} = {name!r} leaves the bundle directory or is not a plain relative path")
    if name in (MANIFEST, SIGNATURE):
        raise BundleError(f"{where} names {name}, which the bundle's digests cannot cover")
    return name


def _check_beat(where: str, beat: dict) -> None:
    _integer(f"{where}: beat.length", beat.get("length"), 1, MAX_BEAT_LENGTH)
    if "before_r" in beat:
        _number(f"{where}: beat.before_r", beat["before_r"], 0.0, 1.0)
    if "after_r" in beat:
        _number(f"{where}: beat.after_r", beat["after_r"], 0.0, 2.0, lo_open=True)
    if "source_fs" in beat:
        _number(f"{where}: beat.source_fs", beat["source_fs"], 0.0, MAX_SOURCE_FS, lo_open=True)
    if "r_polarity" in beat and (not _is_int(beat["r_polarity"]) or beat["r_polarity"] not in (-1, 1)):
        raise BundleError(f"{where}: beat.r_polarity must be -1 or 1, got {beat['r_polarity']!r}")
    try:  # and whatever else BeatFormat itself requires
        BeatFormat.from_dict(beat)
    except (TypeError, ValueError) as err:
        raise BundleError(f"{where}: beat: {err}") from None


def _check_files(where: str, manifest: dict) -> None:
    files = _section(where, manifest, "files")
    if not files:
        raise BundleError(f"{where}: 'files' lists no file")
    for name, digest in files.items():
        check_name(f"{where}: files[{name!r}]", name)
        _digest(f"{where}: files[{name!r}]", digest)
    artifacts = _section(where, manifest, "artifacts")
    for role, name in artifacts.items():
        check_name(f"{where}: artifacts[{role!r}]", name)
        if name not in files:
            raise BundleError(
                f"{where}: artifacts[{role!r}] = {name!r} is not listed in 'files' "
                f"(no SHA-256 for it); refusing an unchecked file"
            )
    if not any(role in artifacts for role in (*PRECISIONS, "detector")):
        raise BundleError(f"{where}: 'artifacts' names no model (none of {', '.join((*PRECISIONS, 'detector'))})")


def _check_io(where: str, manifest: dict, length: int) -> None:
    io = _section(where, manifest, "io")
    for key in ("input", "score"):
        _string(f"{where}: io.{key}", io.get(key))
    if "dtype" in io and io["dtype"] != "float32":
        raise BundleError(f"{where}: io.dtype must be 'float32', got {io['dtype']!r}")
    if "input_shape" in io:
        shape = io["input_shape"]
        if not isinstance(shape, list) or len(shape) != 2 or shape[1] != length or not _is_int(shape[1]):
            raise BundleError(f"{where}: io.input_shape must be ['batch', {length}] (beat.length), got {shape!r}")


def _check_engine(where: str, manifest: dict) -> None:
    engine = _section(where, manifest, "engine", required="engine" in manifest["artifacts"])
    if "engine" not in manifest["artifacts"] and not engine:
        return
    if engine.get("precision") not in PRECISIONS:
        raise BundleError(f"{where}: engine.precision must be one of {PRECISIONS}, got {engine.get('precision')!r}")
    _integer(f"{where}: engine.max_batch", engine.get("max_batch"), 1, 1 << 20)


def check_manifest(path: Path, manifest: object) -> dict:
    """Check a parsed manifest's format, the fields the runtime uses, and every file name.

    Parameters
    ----------
    path : Path
        Where the manifest was read from (for messages).
    manifest : object
        What :func:`parse_manifest` returned.

    Returns
    -------
    dict
        ``manifest``, unchanged.

    Raises
    ------
    BundleError
        Naming the first field of the wrong type or out of range, a file
        name that leaves the bundle, or an artifact without a SHA-256.
    """
    where = str(path)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{where} is not an ecgedge bundle manifest")
    version = manifest.get("format_version")
    if not _is_int(version) or version != FORMAT_VERSION:
        raise BundleError(f"{where} has format version {version!r}, expected {FORMAT_VERSION}")
    beat = _section(where, manifest, "beat")
    _check_beat(where, beat)
    if "threshold" not in manifest:
        raise BundleError(f"{where} lacks the required key 'threshold'")
    threshold = manifest["threshold"]
    if not _is_number(threshold) or not math.isfinite(threshold):
        raise BundleError(f"{where} has a non-finite or non-numeric threshold {threshold!r}")
    if abs(threshold) > MAX_ABS_THRESHOLD:
        raise BundleError(f"{where}: threshold {threshold!r} is beyond +-{MAX_ABS_THRESHOLD:g}; no score is that large")
    _check_files(where, manifest)
    _check_io(where, manifest, beat["length"])
    _check_engine(where, manifest)
    detector = _section(where, manifest, "detector", required=False)
    if "n_features_in" in detector and detector["n_features_in"] != beat["length"]:
        raise BundleError(
            f"{where}: detector.n_features_in = {detector['n_features_in']!r} but beat.length = {beat['length']}"
        )
    if "model_id" in manifest:
        _digest(f"{where}: model_id", manifest["model_id"])
    score = _section(where, manifest, "score", required=False)
    if score.get("higher_is_normal", True) is not True:
        raise BundleError(
            f"{where}: score.higher_is_normal is {score['higher_is_normal']!r}; this runtime flags "
            f"score < threshold, so higher scores must be more normal"
        )
    for key in ("calibration", "versions", "tensorrt"):
        _section(where, manifest, key, required=False)
    return manifest
