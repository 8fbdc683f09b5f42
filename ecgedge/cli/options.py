"""What the commands share: exit codes, extras, option types, reading beats and checking outputs.

Nothing here imports torch, scikit-learn, onnx or wfdb: ``ecgedge --help`` and
``ecgedge bridge`` run in the base install.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path

import click
import numpy as np

#: Exit statuses of every command (also in ``ecgedge --help``).
EXIT_OK = 0  # done; a skipped optional step (a TensorRT engine) is a warning on stderr
EXIT_ERROR = 1  # bad input or failed work, said in one line starting "Error:"
EXIT_USAGE = 2  # wrong options or arguments (click's usage errors)
EXIT_MISSING_EXTRA = 3  # the command needs an optional part of ecgedge that is not installed

EXIT_CODES_HELP = (
    f"Exit status: {EXIT_OK} done (a skipped optional TensorRT engine is only a warning); "
    f"{EXIT_ERROR} error (bad input or failed work); {EXIT_USAGE} wrong usage; "
    f"{EXIT_MISSING_EXTRA} the command needs an extra that is not installed."
)

#: The modules each extra installs; a command needing an extra checks they can be imported.
EXTRAS: dict[str, tuple[str, ...]] = {
    "records": ("wfdb",),
    "train": ("torch", "sklearn", "matplotlib", "tqdm", "wfdb"),
    "export": ("torch", "sklearn", "matplotlib", "tqdm", "wfdb", "onnx", "onnxscript", "onnx_ir"),
    "tensorrt": ("tensorrt", "cuda"),
    "scan": ("wfdb", "dask", "distributed", "pyarrow", "pyedflib"),
    "view": ("aiohttp",),
}

EXTRAS_HELP = (
    "The base install runs 'bridge' (ONNX Runtime); 'train' and 'evaluate' need the [train] extra, "
    "'export', 'calibrate' and 'demo' the [export] extra, "
    "'simulate' plays MIT-BIH (format 212) records, the bundled one included, on the base install and other WFDB "
    "formats with the [records] extra, 'scan' the [scan] extra, --backend tensorrt the [tensorrt] extra: "
    "pip install 'ecgedge[train,export]'."
)


class MissingExtra(click.ClickException):
    """A command needs an extra that is not installed: one line naming it, exit status 3."""

    exit_code = EXIT_MISSING_EXTRA

    def __init__(self, command: str, extra: str, module: str) -> None:
        super().__init__(
            f"{command} needs the [{extra}] extra ({module} is not installed): pip install 'ecgedge[{extra}]'"
        )


def extra_of(module: str | None) -> str | None:
    """The smallest extra that installs ``module`` (a dotted name), or None for a base module."""
    top = (module or "").split(".")[0]
    return next((extra for extra, modules in EXTRAS.items() if top in modules), None)


def _missing(extra: str) -> str | None:
    for module in EXTRAS[extra]:
        try:
            if importlib.util.find_spec(module) is None:
                return module
        except (ImportError, ValueError):
            return module
    return None


def requires(extra: str):
    """Decorate a command that needs ``extra``: check it before any work, or exit 3 in one line."""

    def decorate(command):
        @functools.wraps(command)
        def checked(*args, **kwargs):
            module = _missing(extra)
            if module is not None:
                raise MissingExtra(f"ecgedge {click.get_current_context().info_name}", extra, module)
            return command(*args, **kwargs)

        return checked

    return decorate


class FiniteFloat(click.FloatRange):
    """A float range that also refuses ``nan`` and ``inf`` (click's ranges let ``nan`` through)."""

    name = "finite float"

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)


def output_file(path: Path, option: str) -> Path:
    """Check that ``path`` can be written before any work is done (click error naming ``option`` if not)."""
    from ecgedge.model_file import check_writable

    try:
        return check_writable(path)
    except OSError as err:
        raise click.BadParameter(str(err), param_hint=option) from None


def read_beats(dataset: str, split: str, option: str = "--dataset") -> tuple[np.ndarray, np.ndarray]:
    """Beats and labels (1 = normal) from ``ecg5000`` (its ``split``) or a labelled file.

    A file is read by :func:`ecgedge.datasets.load_beats_file` (the split is
    then ignored); its errors become click errors on ``option``.
    """
    from ecgedge.datasets import load_beats_file, load_ecg5000

    if dataset == "ecg5000":
        return load_ecg5000(split, return_X_y=True)
    if not Path(dataset).is_file():
        raise click.BadParameter(f"{dataset!r} is neither 'ecg5000' nor an existing file", param_hint=option)
    try:
        return load_beats_file(dataset)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint=option) from None


dataset_option = click.option(
    "--dataset",
    default="ecg5000",
    show_default=True,
    help="'ecg5000' (bundled) or a file: .npz with X, y, or a .csv/.tsv table, one beat a row, label first "
    "(a header row and a pandas index column are understood). Labels: 1 = normal, any other integer = abnormal.",
)


def http_address(http: str, token: str | None) -> tuple[str, int]:
    """``HOST:PORT`` of an ``--http`` option (and its ``--http-token``), checked before anything starts.

    A host beyond this machine is served, with a warning on stderr: patient data on the network.
    """
    import ipaddress

    host, _, port = http.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise click.BadParameter(f"{http!r} is not HOST:PORT", param_hint="--http")
    if token is not None and len(token) < 16:
        raise click.BadParameter("the access token needs at least 16 characters", param_hint="--http-token")
    host = host.strip("[]")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        click.echo(
            f"warning: the page is served on {host}, beyond this machine: patient data on the network; keep the "
            "access token secret and the network closed",
            err=True,
        )
    return host, int(port)


def serve_page(feed, address: tuple[str, int], token: str | None, command: str):
    """Serve the bedside page over ``feed`` (the [view] extra); say where on stderr, with the token if made here."""
    import secrets

    try:
        from ecgedge.view.server import ViewServer
    except ImportError as exc:
        raise MissingExtra(f"ecgedge {command} --http", "view", exc.name or "aiohttp") from None
    shown = token is None
    token = token or secrets.token_urlsafe(24)
    try:
        server = ViewServer(feed, *address, token)
    except OSError as exc:
        raise click.ClickException(f"cannot serve the page on {address[0]}:{address[1]}: {exc}") from None
    click.echo(f"{command}: page at {server.url}" + (f" (access token: {token})" if shown else ""), err=True)
    return server
