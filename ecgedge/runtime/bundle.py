"""The deployment bundle on disk: ``bundle.json`` plus the files it lists.

A bundle is a directory. ``bundle.json`` holds the beat format, the decision
threshold, the score definition, library versions and the SHA-256 of every
other file in the bundle; a file whose digest does not match is refused with
a :class:`BundleError`. This module needs only the standard library and
numpy-free JSON, so the bedside device can read bundles without torch or
scikit-learn.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgedge.beatformat import BeatFormat

MANIFEST = "bundle.json"
FORMAT = "ecgedge-bundle"
FORMAT_VERSION = 1
PRECISIONS = ("fp32", "int8", "fp16")


class BundleError(ValueError):
    """A bundle is missing, incomplete, truncated, altered or of another format."""


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(bundle_dir: str | Path, manifest: dict) -> Path:
    """Write ``bundle.json``, recomputing the digest of every listed file.

    Parameters
    ----------
    bundle_dir : str or Path
        The bundle directory.
    manifest : dict
        The manifest; its ``"files"`` keys name the files to digest (values
        are replaced by fresh SHA-256 digests).

    Returns
    -------
    Path
        The path of ``bundle.json``.
    """
    bundle_dir = Path(bundle_dir)
    manifest = dict(manifest)
    manifest["files"] = {name: sha256_file(bundle_dir / name) for name in sorted(manifest["files"])}
    path = bundle_dir / MANIFEST
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


@dataclass(frozen=True)
class Bundle:
    """A read and verified deployment bundle.

    Attributes
    ----------
    path : Path
        The bundle directory.
    manifest : dict
        The parsed ``bundle.json``.
    """

    path: Path
    manifest: dict

    @property
    def beat_format(self) -> BeatFormat:
        """The beat window and length the model expects."""
        return BeatFormat.from_dict(self.manifest["beat"])

    @property
    def threshold(self) -> float:
        """Decision threshold on the score: a beat is abnormal when ``score < threshold``."""
        return float(self.manifest["threshold"])

    def training_scores(self) -> np.ndarray:
        """Leave-one-out scores of the model's training beats (``training_scores.npy``).

        Each training beat was scored without the normal-beat patches it
        belongs to; scored as is, it would lie on them at distance 0, and
        thresholds set on those scores would be far too tight.

        Raises
        ------
        BundleError
            When the bundle has no such file (a model without normal-beat patches).
        """
        return np.load(self.file("training_scores"), allow_pickle=False)

    def file(self, role: str) -> Path:
        """Path of the file a role (``"fp32"``, ``"int8"``, ``"fp16"``, ``"engine"``, ``"detector"``) names.

        Raises
        ------
        BundleError
            When the bundle has no file for that role.
        """
        name = self.manifest["artifacts"].get(role)
        if name is None:
            present = ", ".join(sorted(self.manifest["artifacts"])) or "none"
            raise BundleError(f"bundle {self.path} has no {role!r} file (it has: {present})")
        return self.path / name

    def verify(self, name: str) -> Path:
        """Check one listed file against its recorded SHA-256 and return its path.

        Raises
        ------
        BundleError
            When the file is not listed, missing, or its digest differs.
        """
        expected = self.manifest["files"].get(name)
        path = self.path / name
        if expected is None:
            raise BundleError(f"{path} is not listed in {self.path / MANIFEST}; refusing an unchecked file")
        if not path.is_file():
            raise BundleError(f"bundle file {path} is missing")
        if sha256_file(path) != expected:
            raise BundleError(f"{path} failed its SHA-256 check: the file is truncated or was altered")
        return path


def _check_manifest(path: Path, manifest: object) -> dict:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{path} is not an ecgedge bundle manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{path} has format version {manifest.get('format_version')}, expected {FORMAT_VERSION}")
    for key in ("beat", "threshold", "artifacts", "files"):
        if key not in manifest:
            raise BundleError(f"{path} lacks the required key {key!r}")
    threshold = manifest["threshold"]
    if not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise BundleError(f"{path} has a non-finite or non-numeric threshold {threshold!r}")
    return manifest


def read_bundle(bundle_dir: str | Path, *, verify: bool = True) -> Bundle:
    """Read ``bundle.json`` and, by default, verify every listed file.

    Parameters
    ----------
    bundle_dir : str or Path
        The bundle directory (or its ``bundle.json``).
    verify : bool, default=True
        Check the SHA-256 of every listed file.

    Returns
    -------
    Bundle

    Raises
    ------
    BundleError
        When the manifest is missing or malformed or a file fails its check.
    """
    bundle_dir = Path(bundle_dir)
    if bundle_dir.name == MANIFEST:
        bundle_dir = bundle_dir.parent
    path = bundle_dir / MANIFEST
    if not path.is_file():
        raise BundleError(f"{bundle_dir} is not a bundle: {MANIFEST} is missing")
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"{path} is not valid JSON (truncated or altered?): {err}") from err
    bundle = Bundle(bundle_dir, _check_manifest(path, manifest))
    if verify:
        for name in bundle.manifest["files"]:
            bundle.verify(name)
    return bundle


def add_artifact(bundle_dir: str | Path, role: str, name: str, **section) -> Bundle:
    """List a new file (for example a TensorRT engine built on the device) in a bundle.

    Parameters
    ----------
    bundle_dir : str or Path
        The bundle directory.
    role : str
        The role the file plays (``"engine"`` for a TensorRT engine).
    name : str
        File name inside the bundle.
    **section
        Extra facts stored in the manifest under ``role`` (for example the
        TensorRT version that built the engine).

    Returns
    -------
    Bundle
        The bundle re-read after the update.
    """
    bundle = read_bundle(bundle_dir)
    if not (bundle.path / name).is_file():
        raise BundleError(f"cannot add {name!r}: {bundle.path / name} does not exist")
    manifest = dict(bundle.manifest)
    manifest["artifacts"] = {**manifest["artifacts"], role: name}
    manifest["files"] = {**manifest["files"], name: ""}
    if section:
        manifest[role] = {**manifest.get(role, {}), **section}
    write_manifest(bundle.path, manifest)
    return read_bundle(bundle.path)
