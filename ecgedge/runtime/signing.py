"""Manifest signatures: a bundle the device trusts was signed with the device's key.

The SHA-256 digests in ``bundle.json`` catch a damaged or swapped file, but
whoever can replace a model can also rewrite its digest. A signature over
the exact bytes of ``bundle.json`` closes that: with a trusted key
configured, :func:`ecgedge.runtime.load_scorer` refuses a bundle whose
``bundle.sig`` is missing or was not made with that key, before the manifest
is parsed. Since the manifest holds every other file's digest, the signature
covers the whole bundle.

The signature is HMAC-SHA256 (standard library only): the key is a shared
secret, held by whoever signs bundles and by the devices that check them,
so a device that holds it can also sign. Keep it readable by the bridge's
user only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from ecgedge.runtime.manifest import MANIFEST, SIGNATURE, BundleError

ALGORITHM = "hmac-sha256"
#: Environment variable naming the trusted key file when none is passed.
KEY_ENV = "ECGEDGE_TRUST_KEY"
MIN_KEY_BYTES = 32


def read_key(path: str | Path) -> bytes:
    """Read a key file: at least :data:`MIN_KEY_BYTES` bytes, used as they are.

    Make one with ``head -c 32 /dev/urandom > bundle.key``.

    Raises
    ------
    BundleError
        When the file cannot be read or is too short to be a key.
    """
    try:
        key = Path(path).read_bytes()
    except OSError as err:
        raise BundleError(f"cannot read the trusted key {path}: {err.strerror or err}") from None
    if len(key) < MIN_KEY_BYTES:
        raise BundleError(f"the trusted key {path} has {len(key)} bytes; a key needs at least {MIN_KEY_BYTES}")
    return key


def trusted_key(path: str | Path | None = None) -> bytes | None:
    """The key to check bundles with: ``path``, else the file ``$ECGEDGE_TRUST_KEY`` names, else none.

    Raises
    ------
    BundleError
        When a key is configured but unreadable or too short (the device
        fails closed rather than loading unsigned bundles).
    """
    path = path or os.environ.get(KEY_ENV) or None
    return None if path is None else read_key(path)


def manifest_mac(key: bytes, manifest: bytes) -> str:
    return hmac.new(key, manifest, hashlib.sha256).hexdigest()


def check_signature(bundle_dir: Path, manifest: bytes, key: bytes) -> None:
    """Check ``bundle.sig`` against the bytes of ``bundle.json`` and a trusted key.

    Parameters
    ----------
    bundle_dir : Path
        The bundle directory.
    manifest : bytes
        The bytes of its ``bundle.json``, exactly as they will be parsed.
    key : bytes
        The trusted key.

    Raises
    ------
    BundleError
        When ``bundle.sig`` is missing, malformed, or does not match.
    """
    path = bundle_dir / SIGNATURE
    if path.is_symlink() or not path.is_file():
        raise BundleError(f"{bundle_dir} is not signed ({SIGNATURE} is missing) and a trusted key is configured")
    text = path.read_bytes()[:256].decode("ascii", "replace").strip()
    algorithm, _, mac = text.partition(":")
    if algorithm != ALGORITHM:
        raise BundleError(f"{path} is not an {ALGORITHM} signature")
    if not hmac.compare_digest(mac, manifest_mac(key, manifest)):
        raise BundleError(
            f"{path} does not match {MANIFEST} and the trusted key: the bundle was changed "
            f"after it was signed, or signed with another key"
        )
