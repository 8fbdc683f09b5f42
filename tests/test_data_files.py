"""User data files: a real parser, errors that name the row and column, and the label convention."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from click.testing import CliRunner

from ecgedge.cli import main
from ecgedge.datasets import cut_annotated_beats, default_record_path, load_beats_file, load_wfdb_record


@pytest.fixture(scope="module")
def beats(ecg5000):
    """12 real ECG5000 test beats (8 normal) and their labels."""
    X, y = ecg5000[2], ecg5000[3]
    idx = np.concatenate([np.flatnonzero(y == 1)[:8], np.flatnonzero(y != 1)[:4]])
    return X[idx], y[idx]


def write_rows(path, rows, delimiter=","):
    with open(path, "w", newline="") as fh:
        csv.writer(fh, delimiter=delimiter).writerows(rows)
    return path


def test_ucr_tsv_and_npz_give_the_same_beats(beats, tmp_path):
    X, y = beats
    tsv = write_rows(
        tmp_path / "beats.tsv", [[label, *map(repr, row.tolist())] for label, row in zip(y, X, strict=True)], "\t"
    )
    np.savez(tmp_path / "beats.npz", X=X, y=y)
    for path in (tsv, tmp_path / "beats.npz"):
        X_read, y_read = load_beats_file(path)
        np.testing.assert_array_equal(X_read, X)
        np.testing.assert_array_equal(y_read, y)


def test_pandas_csv_with_header_and_index_is_read(beats, tmp_path):
    X, y = beats
    # what DataFrame(X).assign(label=y).to_csv() writes: an unnamed index column, the label last
    header = ["", *map(str, range(X.shape[1])), "label"]
    rows = [[i, *map(repr, row.tolist()), label] for i, (row, label) in enumerate(zip(X, y, strict=True))]
    X_read, y_read = load_beats_file(write_rows(tmp_path / "pandas.csv", [header, *rows]))
    np.testing.assert_array_equal(X_read, X)
    np.testing.assert_array_equal(y_read, y)


def test_a_ragged_table_names_the_row(beats, tmp_path):
    X, y = beats
    rows = [[label, *row.tolist()] for label, row in zip(y, X, strict=True)]
    rows[4] = rows[4][:-3]
    with pytest.raises(ValueError, match=r"row 5 has 138 columns, the first row has 141 \(ragged"):
        load_beats_file(write_rows(tmp_path / "ragged.csv", rows))


def test_string_labels_name_row_column_and_convention(beats, tmp_path):
    X, _ = beats
    header = ["label", *(f"t{i}" for i in range(X.shape[1]))]
    rows = [[label, *row.tolist()] for label, row in zip(["N", "V"] * 6, X, strict=True)]
    with pytest.raises(
        ValueError,
        match=r"row 2, column 1 \('label'\): label 'N' is not a finite number; "
        r"ecgedge's label convention is 1 = normal, any other integer = abnormal",
    ):
        load_beats_file(write_rows(tmp_path / "strings.csv", [header, *rows]))


def test_a_bad_sample_names_row_and_column(beats, tmp_path):
    X, y = beats
    rows = [[label, *row.tolist()] for label, row in zip(y, X, strict=True)]
    rows[2][7] = "n/a"
    with pytest.raises(ValueError, match=r"row 3, column 8: sample 'n/a' is not a finite number"):
        load_beats_file(write_rows(tmp_path / "gap.csv", rows))


def test_zero_normal_one_abnormal_labels_are_refused(beats, tmp_path):
    X, y = beats
    np.savez(tmp_path / "zero_based.npz", X=X, y=(y != 1).astype(int))  # 8 normal beats labelled 0, 4 abnormal 1
    with pytest.raises(
        ValueError,
        match="8 beats are labelled 0 and 4 labelled 1, which looks like 0 = normal; "
        "ecgedge's label convention is 1 = normal",
    ):
        load_beats_file(tmp_path / "zero_based.npz")


def test_train_refuses_a_bad_file_before_training(beats, tmp_path):
    X, y = beats
    np.savez(tmp_path / "zero_based.npz", X=X, y=(y != 1).astype(int))
    out = tmp_path / "m.npz"
    result = CliRunner().invoke(main, ["train", "--out", str(out), "--dataset", str(tmp_path / "zero_based.npz")])
    assert result.exit_code == 2 and "looks like 0 = normal" in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_cut_annotated_beats_takes_a_path_or_a_record():
    from ecgedge.beatformat import BeatFormat

    fmt = BeatFormat(length=140)
    by_path, symbols = cut_annotated_beats(str(default_record_path()), fmt)
    by_record, same_symbols = cut_annotated_beats(load_wfdb_record(default_record_path()), fmt)
    np.testing.assert_array_equal(by_path, by_record)
    assert len(by_path) > 2000 and symbols.tolist() == same_symbols.tolist()


def test_the_format_212_reader_gives_wfdb_s_counts():
    """The simulator reads MIT-BIH records with numpy alone (the lean install has no wfdb)."""
    import wfdb

    from ecgedge.datasets import default_record_path
    from ecgedge.datasets._format212 import NotFormat212, read_format212

    path = default_record_path()
    reference = wfdb.rdrecord(str(path), physical=False)
    for index, name in enumerate(reference.sig_name):
        mine = read_format212(path, name)
        assert np.array_equal(mine.adc, reference.d_signal[:, index]) and mine.lead == name
        assert (mine.fs, mine.gain, mine.baseline) == (
            reference.fs,
            reference.adc_gain[index],
            reference.baseline[index],
        )
    with pytest.raises(ValueError, match="lead 'V9' not in record 100"):
        read_format212(path, "V9")
    assert issubclass(NotFormat212, ValueError)


def test_the_simulator_plays_other_wfdb_formats_through_wfdb(tmp_path):
    import wfdb

    from ecgedge.firmware_bridge.simulator import VirtualBoard

    counts = load_wfdb_record(lead="MLII").to_adc()[:3600]
    wfdb.wrsamp(
        "rec16",
        fs=360,
        units=["mV"],
        sig_name=["MLII"],
        d_signal=counts[:, None].astype(np.int32),
        fmt=["16"],
        adc_gain=[200.0],
        baseline=[1024],
        write_dir=str(tmp_path),
    )
    board = VirtualBoard.from_record(tmp_path / "rec16", lead="MLII")
    assert np.array_equal(board.adc, counts) and board.fs == 360
