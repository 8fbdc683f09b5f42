"""Labelled beats from a user's file: ``.npz`` (``X``, ``y``) or a delimited text table.

Errors name the file, the row and the column, so a user can fix the file;
labels that do not follow ecgedge's convention (1 = normal, any other
integer = abnormal) are refused rather than silently trained on.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

LABEL_CONVENTION = "ecgedge's label convention is 1 = normal, any other integer = abnormal"
#: Header names taken for the label column (case-insensitive); without one, the label is the first column.
LABEL_NAMES = frozenset({"label", "labels", "y", "target", "class"})
#: Header names of an index column (pandas writes an empty name), dropped when first.
INDEX_NAMES = frozenset({"", "index", "unnamed: 0"})


def load_beats_file(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read labelled beats from a file.

    Parameters
    ----------
    path : str or Path
        ``.npz`` with arrays ``X`` (n_beats, n_samples) and ``y`` (n_beats,),
        or a text table, one beat a row: ``.csv`` (comma-separated), ``.tsv``
        (tab-separated) or any other suffix (whitespace-separated), in the UCR
        layout (label first, then the samples). A text table may start with a
        header row; with a header, an index column first (as
        ``pandas.DataFrame.to_csv`` writes it) is dropped and a column named
        ``label``, ``y``, ``target`` or ``class`` is the label.

    Returns
    -------
    X : ndarray of shape (n_beats, n_samples), float32
    y : ndarray of shape (n_beats,), int64
        1 for a normal beat, any other integer for an abnormal one.

    Raises
    ------
    ValueError
        When the file cannot be read as beats (naming the row and column at
        fault), or its labels do not follow the convention (for example 0 =
        normal, 1 = abnormal).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "beats.csv"
    >>> _ = path.write_text("label,t0,t1\\n1,0.5,0.25\\n3,0.125,1.0\\n")
    >>> X, y = load_beats_file(path)
    >>> X.shape, y.tolist()
    ((2, 2), [1, 3])
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path} does not exist or is not a file")
    X, y = _read_npz(path) if path.suffix == ".npz" else _read_table(path)
    if len(y) == 0:
        raise ValueError(f"{path} holds no beats")
    check_labels(y, str(path))
    return X, y


def check_labels(y: np.ndarray, source: str) -> None:
    """Refuse labels that look like another convention than 1 = normal.

    A label 0 at least as common as the label 1 is the signature of a 0 =
    normal / 1 = abnormal file: fitting on "label 1" would learn the abnormal
    beats.

    Raises
    ------
    ValueError
        Saying the convention, when label 0 is at least as common as label 1.
    """
    zeros, ones = int(np.sum(y == 0)), int(np.sum(y == 1))
    if zeros and zeros >= ones:
        raise ValueError(
            f"{source}: {zeros} beats are labelled 0 and {ones} labelled 1, which looks like 0 = normal; "
            f"{LABEL_CONVENTION}: relabel the normal beats 1"
        )


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "X" not in archive or "y" not in archive:
                raise ValueError(f"{path} must hold arrays 'X' and 'y'; it holds {sorted(archive.files)}")
            X, y = archive["X"], archive["y"]
    except (OSError, EOFError) as err:
        raise ValueError(f"{path} is not a readable .npz archive: {err}") from err
    except ValueError as err:
        if "pickle" in str(err):
            raise ValueError(f"{path}: arrays 'X' and 'y' must be numbers, not Python objects") from err
        raise
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(f"{path}: X must be (n_beats, n_samples) and y (n_beats,); got {X.shape} and {y.shape}")
    if not np.issubdtype(X.dtype, np.number) or not np.all(np.isfinite(X)):
        raise ValueError(f"{path}: X must hold finite numbers")
    if not np.issubdtype(y.dtype, np.number) or not np.array_equal(y, np.round(y)):
        raise ValueError(f"{path}: y must hold integer labels; {LABEL_CONVENTION}")
    return X.astype(np.float32), y.astype(np.int64)


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of every non-blank line of a text table."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        if path.suffix in (".csv", ".tsv"):
            reader = csv.reader(fh, delimiter="," if path.suffix == ".csv" else "\t")
            for fields in reader:
                if any(f.strip() for f in fields):
                    yield reader.line_num, [f.strip() for f in fields]
        else:
            for number, line in enumerate(fh, start=1):
                if line.strip():
                    yield number, line.split()


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _read_table(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        rows = list(_rows(path))
    except (UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"{path} is not a text table: {err}") from err
    if not rows:
        raise ValueError(f"{path} holds no beats")
    names = None
    if any(_number(f) is None for f in rows[0][1]):
        names, rows = [f.lower() for f in rows[0][1]], rows[1:]
    width = len(rows[0][1]) if rows else 0
    if names is not None and len(names) != width:
        raise ValueError(f"{path}: the header has {len(names)} columns but row {rows[0][0]} has {width}")
    drop = 1 if names and names[0] in INDEX_NAMES else 0
    named = [i for i, name in enumerate(names or []) if name in LABEL_NAMES]
    label = named[0] if named else drop
    if width - drop < 2:
        raise ValueError(f"{path}: a row needs a label and at least one sample; row {rows[0][0]} has {width} columns")
    table = np.empty((len(rows), width), dtype=np.float64)
    for r, (line, fields) in enumerate(rows):
        if len(fields) != width:
            raise ValueError(f"{path}: row {line} has {len(fields)} columns, the first row has {width} (ragged table)")
        for c, field in enumerate(fields[drop:], start=drop):
            value = _number(field)
            if value is None or not math.isfinite(value):
                column = f"column {c + 1}" + (f" ({names[c]!r})" if names else "")
                what = "label" if c == label else "sample"
                hint = f"; {LABEL_CONVENTION}" if c == label else ""
                raise ValueError(f"{path}: row {line}, {column}: {what} {field!r} is not a finite number{hint}")
            table[r, c] = value
    y = table[:, label]
    bad = np.flatnonzero(y != np.round(y))
    if bad.size:
        raise ValueError(f"{path}: row {rows[bad[0]][0]}: label {y[bad[0]]:g} is not an integer; {LABEL_CONVENTION}")
    samples = [c for c in range(drop, width) if c != label]
    return table[:, samples].astype(np.float32), y.astype(np.int64)
