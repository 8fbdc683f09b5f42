"""The deployment bundle on disk: ``bundle.json`` plus the files it lists.

A bundle is a directory. ``bundle.json`` holds the beat format, the decision
threshold, the score definition, library versions and the SHA-256 of every
other file in the bundle. Nothing outside the directory is ever read: every
name in ``files`` and ``artifacts`` must be a relative path that stays
inside it (symbolic links included), every artifact must be listed in
``files``, and a file's bytes are checked against their digest before they
are used. A bundle that breaks any rule is refused with a
:class:`BundleError` naming the entry. This module needs only the standard
library and numpy, so the bedside device reads bundles without torch or
scikit-learn.
"""

from __future__ import annotations

import hashlib
import io
import json
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgedge.beatformat import BeatFormat
from ecgedge.runtime.manifest import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    PRECISIONS,
    BundleError,
    check_manifest,
    check_name,
    parse_manifest,
    read_manifest_bytes,
)
from ecgedge.runtime.signing import ALGORITHM, MIN_KEY_BYTES, SIGNATURE, check_signature, manifest_mac

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "PRECISIONS",
    "Bundle",
    "BundleError",
    "add_artifact",
    "read_bundle",
    "sha256_file",
    "sign_bundle",
    "write_manifest",
]


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(bundle_dir: str | Path, manifest: dict) -> Path:
    """Write ``bundle.json``, recomputing the digest of every listed file.

    A ``bundle.sig`` signed the old manifest, so it is removed: sign the
    bundle again (:func:`sign_bundle`) where devices
    check signatures.

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
    (bundle_dir / SIGNATURE).unlink(missing_ok=True)
    return path


def _inside(root: Path, path: Path) -> Path:
    """Resolve ``path`` (symbolic links too) and refuse it unless it is a regular file under ``root``."""
    try:
        real = path.resolve(strict=True)
    except FileNotFoundError:
        raise BundleError(f"bundle file {path} is missing") from None
    except (OSError, RuntimeError) as err:
        raise BundleError(f"bundle file {path} cannot be resolved: {err}") from None
    if not real.is_relative_to(root.resolve()):
        raise BundleError(f"{path} leads outside the bundle directory (to {real}); refusing it")
    if not stat.S_ISREG(real.stat().st_mode):
        raise BundleError(f"bundle file {path} is not a regular file")
    return real


@dataclass(frozen=True)
class Bundle:
    """A read and verified deployment bundle.

    Attributes
    ----------
    path : Path
        The bundle directory.
    manifest : dict
        The parsed and checked ``bundle.json``.
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
            When the bundle has no such file (a model without normal-beat
            patches), or it fails its check or is not a 1-D array of numbers.
        """
        name = self._name("training_scores")
        try:
            scores = np.load(io.BytesIO(self.read("training_scores")), allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise BundleError(f"{self.path / name} is not a numpy array file: {err}") from None
        if scores.ndim != 1 or scores.dtype.kind not in "fi" or len(scores) == 0 or not np.isfinite(scores).all():
            raise BundleError(
                f"{self.path / name} must hold a non-empty 1-D array of finite scores, "
                f"got {scores.dtype} {scores.shape}"
            )
        return scores

    def _name(self, role: str) -> str:
        name = self.manifest["artifacts"].get(role)
        if name is None:
            present = ", ".join(sorted(self.manifest["artifacts"])) or "none"
            raise BundleError(f"bundle {self.path} has no {role!r} file (it has: {present})")
        return name

    def file(self, role: str) -> Path:
        """Verified path of the file a role (``"fp32"``, ``"int8"``, ``"fp16"``, ``"engine"``, ``"detector"``) names.

        Prefer :meth:`read` where the bytes are wanted: it checks the very
        bytes it returns.

        Raises
        ------
        BundleError
            When the bundle has no file for that role, or it fails :meth:`verify`.
        """
        return self.verify(self._name(role))

    def read(self, role: str) -> bytes:
        """Bytes of the file a role names, checked against the file's SHA-256.

        The bytes returned are the bytes hashed, so a file swapped after
        :func:`read_bundle` verified it is still refused.

        Raises
        ------
        BundleError
            When the bundle has no file for that role, or it fails its check.
        """
        name = self._name(role)
        data = self._locate(name).read_bytes()
        if hashlib.sha256(data).hexdigest() != self.manifest["files"][name]:
            raise BundleError(f"{self.path / name} failed its SHA-256 check: the file is truncated or was altered")
        return data

    def _locate(self, name: str) -> Path:
        if name not in self.manifest["files"]:
            raise BundleError(f"{self.path / name} is not listed in {self.path / MANIFEST}; refusing an unchecked file")
        return _inside(self.path, self.path / check_name(f"file {name!r}", name))

    def verify(self, name: str) -> Path:
        """Check one listed file against its recorded SHA-256 and return its path.

        Raises
        ------
        BundleError
            When the file is not listed, leads outside the bundle, is missing
            or not a regular file, or its digest differs.
        """
        path = self._locate(name)
        if sha256_file(path) != self.manifest["files"][name]:
            raise BundleError(f"{self.path / name} failed its SHA-256 check: the file is truncated or was altered")
        return path


def read_bundle(bundle_dir: str | Path, *, verify: bool = True, trust_key: bytes | None = None) -> Bundle:
    """Read and check ``bundle.json`` and, by default, verify every listed file.

    With a ``trust_key``, ``bundle.sig`` must sign the manifest's bytes
    (:mod:`ecgedge.runtime.signing`) before they are parsed. The manifest is
    then checked whole (:func:`ecgedge.runtime.manifest.check_manifest`:
    types and ranges, file names inside the bundle, every artifact listed in
    ``files``) before any other file is opened.

    Parameters
    ----------
    bundle_dir : str or Path
        The bundle directory (or its ``bundle.json``).
    verify : bool, default=True
        Check the SHA-256 of every listed file.
    trust_key : bytes or None, default=None
        Key the bundle must be signed with (``None``: signatures are not checked).

    Returns
    -------
    Bundle

    Raises
    ------
    BundleError
        When the manifest is missing, malformed or (with a key) not signed
        with it, names a file outside the bundle or an unlisted artifact, or
        a file fails its check.
    """
    bundle_dir = Path(bundle_dir)
    if bundle_dir.name == MANIFEST:
        bundle_dir = bundle_dir.parent
    path = bundle_dir / MANIFEST
    if path.is_symlink() or path.exists():
        _inside(bundle_dir, path)
    data = read_manifest_bytes(path)
    if trust_key is not None:
        check_signature(bundle_dir, data, trust_key)
    bundle = Bundle(bundle_dir, check_manifest(path, parse_manifest(path, data)))
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

    Raises
    ------
    BundleError
        When the bundle does not verify, or ``name`` is not a file inside it.
    """
    bundle = read_bundle(bundle_dir)
    _inside(bundle.path, bundle.path / check_name(f"the {role!r} file name", name))
    manifest = dict(bundle.manifest)
    manifest["artifacts"] = {**manifest["artifacts"], role: name}
    manifest["files"] = {**manifest["files"], name: ""}
    if section:
        manifest[role] = {**manifest.get(role, {}), **section}
    write_manifest(bundle.path, manifest)
    return read_bundle(bundle.path)


def sign_bundle(bundle_dir: str | Path, key: bytes) -> Path:
    """Sign a bundle after checking it: write ``bundle.sig`` for its current ``bundle.json``.

    Sign again after anything rewrites ``bundle.json`` (``ecgedge calibrate``,
    an engine built on the device): :func:`write_manifest`
    removes the stale signature.

    Parameters
    ----------
    bundle_dir : str or Path
        The bundle directory.
    key : bytes
        The signing key (:func:`read_key`).

    Returns
    -------
    Path
        The path of ``bundle.sig``.

    Raises
    ------
    BundleError
        When the bundle does not verify, or the key is too short.
    """
    if len(key) < MIN_KEY_BYTES:
        raise BundleError(f"a signing key needs at least {MIN_KEY_BYTES} bytes, got {len(key)}")
    bundle = read_bundle(bundle_dir)
    manifest = read_manifest_bytes(bundle.path / MANIFEST)
    path = bundle.path / SIGNATURE
    path.write_text(f"{ALGORITHM}:{manifest_mac(key, manifest)}\n")
    return path
