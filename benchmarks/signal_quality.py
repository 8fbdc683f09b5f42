"""The noise gate against the signal quality indices of the literature, on real records with real-shaped noise.

Records 100, 119 and 208 (first 10 minutes, MLII) with muscle and electrode-motion noise and the QRS
benchmark's mix (:func:`ecgedge.datasets.add_noise`) at 12 / 6 / 0 dB and without noise. Every beat
the bridge finds (its offline path) is judged by the bridge's :class:`BeatJudge` with no noise gate
(shipped population model, 2 minutes of learning), and each gate decides which beats are noisy (not
judged). The peers are the indices of Li, Mark & Clifford (2008) and Clifford et al. (2012), computed
here (numpy, scipy, wfdb) on the 10 s of signal before each beat, at those papers' thresholds:

- ``kSQI``: the kurtosis of the 10 s (an ECG is peaked: noisy when under 5);
- ``pSQI``: the share of the 5-40 Hz power that lies in 5-15 Hz (the QRS band: noisy outside 0.5-0.8);
- ``basSQI``: the share of the 0-40 Hz power above 1 Hz (noisy under 0.95: baseline wander);
- ``bSQI``: the agreement of two QRS detectors, the bridge's and wfdb's ``gqrs``, over the 10 s
  (matched beats over the beats of either, 150 ms: noisy under 0.8).

Scored per gate: the share of beats it calls noisy (on the clean records: beats lost to the gate),
the false beats (no reference beat within 150 ms) it lets through, and the N beats flagged among the
beats it lets through.

    python benchmarks/signal_quality.py [WFDB_DIR] [--tag TAG]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy.signal import welch
from scipy.stats import kurtosis

from ecgedge.analysis.ec57 import nearest_reference
from ecgedge.analysis.judge import BeatJudge
from ecgedge.analysis.noise import NoiseTracker
from ecgedge.analysis.offline import cut_stream, score_beats
from ecgedge.datasets import add_noise, load_wfdb_record
from ecgedge.population import POPULATION_FORMAT

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mitdb import _pct, default_directory  # noqa: E402
from results_file import write_results  # noqa: E402
from rhythm import NOISE_KINDS, NOISE_RECORDS, SNRS  # noqa: E402

WINDOW_S = 10.0
GATES = ("ecgedge", "kSQI", "pSQI", "basSQI", "bSQI")


def band_share(x: np.ndarray, fs: float, inner: tuple[float, float], outer: tuple[float, float]) -> float:
    f, p = welch(x, fs=fs, nperseg=min(len(x), round(2 * fs)))
    inside = (f >= inner[0]) & (f <= inner[1])
    total = (f >= outer[0]) & (f <= outer[1])
    return float(p[inside].sum() / max(p[total].sum(), 1e-12))


def peer_flags(signal: np.ndarray, fs: float, samples: np.ndarray, found: np.ndarray) -> dict[str, np.ndarray]:
    """Each literature index's verdict (True: noisy) for each beat, from the 10 s before it."""
    import wfdb.processing

    other = wfdb.processing.gqrs_detect(sig=signal, fs=fs)
    match = round(0.15 * fs)
    n = round(WINDOW_S * fs)
    out = {name: np.zeros(samples.size, bool) for name in GATES[1:]}
    for i, r in enumerate(samples):
        lo = max(0, r - n)
        x = signal[lo : r + 1]
        if x.size < fs:
            continue
        out["kSQI"][i] = kurtosis(x, fisher=False) < 5
        p = band_share(x, fs, (5, 15), (5, 40))
        out["pSQI"][i] = not 0.5 <= p <= 0.8
        out["basSQI"][i] = 1 - band_share(x, fs, (0, 1), (0, 40)) < 0.95
        mine = found[(found >= lo) & (found <= r)]
        theirs = other[(other >= lo) & (other <= r)]
        matched = int(np.sum(nearest_reference(mine, theirs, match) >= 0)) if mine.size and theirs.size else 0
        either = mine.size + theirs.size - matched
        out["bSQI"][i] = either > 0 and matched / either < 0.8
    return out


def run_case(record, signal: np.ndarray, model) -> dict:
    fs = record.fs
    beats = cut_stream(signal, fs, POPULATION_FORMAT)
    samples = np.array([b.sample for b in beats])
    scores = score_beats(beats, model).tolist()
    gated = BeatJudge(adapt_s=120.0, beat_format=POPULATION_FORMAT)
    ungated = BeatJudge(adapt_s=120.0, beat_format=POPULATION_FORMAT, noise=NoiseTracker(threshold=np.inf))
    ours = np.array([gated.judge(s, model.offset_, b).quality == "noisy" for s, b in zip(scores, beats, strict=True)])
    verdicts = [ungated.judge(s, model.offset_, b) for s, b in zip(scores, beats, strict=True)]
    judged = np.array([v.mode == "adapted" for v in verdicts])
    flagged = np.array([v.anomaly for v in verdicts])
    nearest = nearest_reference(samples, record.beat_samples, round(0.15 * fs))
    symbol = np.where(nearest >= 0, record.beat_symbols[np.maximum(nearest, 0)], "-")
    gates = {"ecgedge": ours, **peer_flags(signal, fs, samples, samples)}
    out = {"beats": len(beats), "false_beats": int(np.sum(symbol == "-"))}
    for name, noisy in gates.items():
        kept_n = judged & ~noisy & (symbol == "N")
        out[name] = {
            "noisy": float(noisy.mean()),
            "false_beats_judged": int(np.sum(judged & ~noisy & (symbol == "-"))),
            "n_flagged": float(flagged[kept_n].mean()) if kept_n.any() else None,
        }
    return out


def main() -> None:
    from ecgedge import __version__, load
    from ecgedge.models import population_model_path

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", nargs="?", type=Path, default=default_directory())
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    started = time.time()
    model = load(population_model_path())
    cases = []
    for name in NOISE_RECORDS:
        record = load_wfdb_record(args.directory / name, lead="MLII")
        signal = record.signal[: 600 * round(record.fs)]
        cases.append({"record": name, "noise": "none", "snr_db": None, **run_case(record, signal, model)})
        for kind, kinds in NOISE_KINDS.items():
            for snr in SNRS:
                noisy = add_noise(signal, record.fs, snr, kinds, seed=int(name))
                cases.append({"record": name, "noise": kind, "snr_db": snr, **run_case(record, noisy, model)})
                print(f"{name} {kind} {snr:g} dB", flush=True)
    report = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "ecgedge": __version__,
            "numpy": np.__version__,
        },
        "cases": cases,
        "seconds": time.time() - started,
    }
    text = markdown(report)
    write_results("signal-quality", report, text, tag=args.tag)
    print(text)


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [
        f"Noise gates on records {', '.join(NOISE_RECORDS)} (first 10 min); Machine: {m['platform']}, "
        f"{m['cpus']} CPUs, python {m['python']}, ecgedge {m['ecgedge']}; {r['seconds']:.0f} s.",
        "",
        "Each cell: beats called noisy / false beats let through / N flagged among the beats let through.",
        "",
        "| noise | SNR | beats | false beats | " + " | ".join(GATES) + " |",
        "|---|---:|---:|---:|" + "---|" * len(GATES),
    ]
    keys = sorted({(c["noise"], c["snr_db"]) for c in r["cases"]}, key=lambda k: (k[0] != "none", k[0], -(k[1] or 0)))
    for noise, snr in keys:
        rows = [c for c in r["cases"] if c["noise"] == noise and c["snr_db"] == snr]
        beats, false = sum(c["beats"] for c in rows), sum(c["false_beats"] for c in rows)
        cells = []
        for gate in GATES:
            noisy = sum(c[gate]["noisy"] * c["beats"] for c in rows) / beats
            let = sum(c[gate]["false_beats_judged"] for c in rows)
            flags = [c[gate]["n_flagged"] for c in rows if c[gate]["n_flagged"] is not None]
            cells.append(f"{_pct(noisy)} / {let} / {_pct(float(np.mean(flags))) if flags else '-'}")
        lines.append(
            f"| {noise} | {'-' if snr is None else f'{snr:g} dB'} | {beats} | {false} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
