"""The streaming R-peak detector on hard MIT-BIH records, run as the bridge runs it, and its state.

The records come from ``../shared/data/mitdb`` (relative to the repository);
those tests skip when it is absent. They run through ``benchmarks/qrs.py``'s
streaming runner (the bridge's StreamPipeline and FilterStage in 0.1 s
chunks, automatic polarity) and its EC57-style scoring, so that the floors
here are the benchmark's numbers.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import sosfilt

from ecgedge.analysis.filters import ECG_BAND, bandpass_sos
from ecgedge.analysis.rpeaks import StreamingRPeakDetector, qrs_band_sos
from ecgedge.datasets import load_wfdb_record

REPO = Path(__file__).resolve().parents[1]
MITDB = REPO.parent / "shared" / "data" / "mitdb"
FS = 360


def _benchmark():
    """benchmarks/qrs.py as a module (it imports its neighbour results_file)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("qrs_benchmark", REPO / "benchmarks" / "qrs.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look themselves up there
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    return module


needs_mitdb = pytest.mark.skipif(not (MITDB / "208.hea").exists(), reason=f"MIT-BIH records not found at {MITDB}")


# Whole records, as the benchmark runs them. Floors sit below what the detector reaches
# (benchmarks/results/qrs-*.md) with a margin where there is one; the issue asks 99 % of every
# record, which 104 (paced, noise bursts before paced beats; +P 99.06 %) and 108 (P waves as
# steep as the QRS, noise; +P 99.26 %) reach with little to spare.
@needs_mitdb
@pytest.mark.parametrize(
    ("name", "min_se", "min_ppv"),
    [
        ("104", 0.995, 0.99),
        ("108", 0.99, 0.99),
        ("201", 0.99, 0.995),
        ("203", 0.99, 0.99),
        ("207", 0.99, 0.99),
        ("208", 0.99, 0.995),
    ],
)
def test_hard_records_stay_above_their_floors(name, min_se, min_ppv):
    bench = _benchmark()
    path = MITDB / name
    record = bench.load_lead(path)
    run = bench.stream_r_peaks(record)
    s = bench.score(record.beat_samples, run.peaks, record.fs, bench.excluded_intervals(path), run.returned_at)
    assert s["se"] >= min_se and s["ppv"] >= min_ppv, s | {"delays_s": None}
    assert np.percentile(s["delays_s"], 50) <= 0.25  # the beat is known a quarter second after its R


def _filtered(signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bridge's two causal bands over a whole signal (chunking does not change causal filters)."""
    y = sosfilt(bandpass_sos(*ECG_BAND, FS), signal)
    return y, sosfilt(qrs_band_sos(FS), y)


def _detect(y: np.ndarray, qrs: np.ndarray, lengths, detector=None, start: int = 0) -> list[int]:
    detector = detector or StreamingRPeakDetector(FS, polarity=1)
    lengths = np.resize(np.asarray(lengths), y.size)
    edges = np.minimum(np.concatenate([[0], np.cumsum(lengths)]), y.size)
    peaks = []
    for a, b in itertools.pairwise(edges):
        if b > a:
            peaks += detector.process(y[a:b], qrs[a:b], start + a)
    return peaks


@pytest.fixture(scope="module")
def bundled_100():
    """Record 100 (bundled with the package): 3 minutes, filtered."""
    record = load_wfdb_record(lead="MLII")
    return record, *_filtered(record.signal[: 180 * FS])


def test_peaks_do_not_depend_on_how_the_stream_is_chunked(bundled_100):
    record, y, qrs = bundled_100
    rng = np.random.default_rng(0)
    found = {
        name: _detect(y, qrs, lengths)
        for name, lengths in {"9": [9], "36": [36], "1000": [1000], "random": rng.integers(1, 200, size=400)}.items()
    }
    assert len(found["36"]) > 200
    assert all(peaks == found["36"] for peaks in found.values())
    ref = record.beat_samples[(record.beat_samples > 3 * FS) & (record.beat_samples < 179 * FS)]
    got = np.array(found["36"])
    assert all(np.abs(got - r).min() <= 0.05 * FS for r in ref)  # every beat, within 50 ms


@needs_mitdb
def test_doubtful_beats_do_not_depend_on_how_the_stream_is_chunked():
    """Record 108 where its P waves are as steep as its QRSs (the detector goes on guard, holds
    them as doubtful beats and replaces them) and 203 (wide beats)."""
    for name, start_s in (("108", 1650), ("203", 0)):
        signal = load_wfdb_record(MITDB / name, lead="MLII").signal[start_s * FS : (start_s + 120) * FS]
        y, qrs = _filtered(signal)
        lengths = np.random.default_rng(int(name)).integers(1, 200, size=400)
        assert _detect(y, qrs, lengths) == _detect(y, qrs, [36])


def test_a_restart_after_a_gap_keeps_the_levels_and_finds_the_next_beats(bundled_100):
    record, y, qrs = bundled_100
    detector = StreamingRPeakDetector(FS, polarity=1)
    before = _detect(y[: 60 * FS], qrs[: 60 * FS], [36], detector)
    with pytest.raises(ValueError, match="use restart"):
        detector.process(y[90 * FS : 91 * FS], qrs[90 * FS : 91 * FS], 90 * FS)
    detector.restart(90 * FS)  # 30 s lost; the caller restarts its filters too
    y2, qrs2 = _filtered(record.signal[90 * FS : 180 * FS])
    after = _detect(y2, qrs2, [36], detector, start=90 * FS)
    assert before and after and all(r >= 90 * FS for r in after)
    ref = record.beat_samples[(record.beat_samples > 91 * FS) & (record.beat_samples < 179 * FS)]
    assert all(np.abs(np.array(after) - r).min() <= 0.05 * FS for r in ref)  # no second learning phase


def test_memory_stays_bounded_through_a_long_stretch_without_beats(bundled_100):
    """Lead noise for 2 minutes after some beats: noise peaks and buffers do not pile up."""
    _, y, qrs = bundled_100
    detector = StreamingRPeakDetector(FS, polarity=1, max_noise_peaks=32)
    _detect(y[: 30 * FS], qrs[: 30 * FS], [36], detector)
    noise = 0.02 * np.random.default_rng(1).normal(size=120 * FS)
    yn, qn = _filtered(noise)
    sizes = []
    for a in range(0, noise.size, 36):
        detector.process(yn[a : a + 36], qn[a : a + 36], 30 * FS + a)
        sizes.append((len(detector._noise), detector._y.size, detector._m.size))
    sizes = np.array(sizes)
    assert sizes[:, 0].max() == 32  # noise peaks were found, and capped
    assert sizes[:, 1:].max() < 2 * FS  # signal buffers hold well under 2 s
