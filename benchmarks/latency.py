"""Latency and throughput of every scoring backend, in one run, with threads pinned.

Exports MODEL to a temporary bundle, then measures on ECG5000 TEST beats:

* single-beat latency (p50, p99) and batched throughput for torch eager (FP32,
  CPU), ONNX Runtime FP32 / INT8 / FP16 and TensorRT when it is installed;
* with ``--cuda``, torch CUDA FP32 / FP16 batch throughput (beats already on
  the GPU, timed with CUDA synchronisation);
* accuracy of each ONNX precision against ``score_samples`` (max relative
  error, ROC AUC, flag agreement) on all 4500 test beats.

Writes ``benchmarks/results/latency-<date>.json`` and ``.md``.

Usage: ``python benchmarks/latency.py MODEL [--threads 1] [--cuda]``
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from results_file import RESULTS, write_results

ONNX_PRECISIONS = ("fp32", "int8", "fp16")


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (or the platform's processor string)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def single_beat_latency(scores: dict, beats: np.ndarray, n_calls: int, warmup: int = 50) -> dict:
    """p50/p99/mean (ms) of each ``scores[name]`` on one beat at a time.

    The backends take turns call by call, so a slow spell of a shared
    machine hits all of them alike and their ratios stay fair.
    """
    for i in range(warmup):
        for score in scores.values():
            score(beats[i % len(beats)][None])
    times = {name: np.empty(n_calls) for name in scores}
    for i in range(n_calls):
        beat = beats[i % len(beats)][None]
        for name, score in scores.items():
            start = time.perf_counter()
            score(beat)
            times[name][i] = time.perf_counter() - start
    out = {}
    for name, t in times.items():
        ms = t * 1e3
        out[name] = {
            "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": float(ms.mean()),
            "n_calls": n_calls,
        }
    return out


def batch_throughput(scores: dict, beats: np.ndarray, batch: int, repeats: int) -> dict:
    """Beats per second of each ``scores[name]`` over ``beats`` in batches of ``batch``.

    Median and best of ``repeats`` passes; the backends take turns pass by pass.
    """
    batches = [beats[i : i + batch] for i in range(0, len(beats), batch)]
    rates = {name: [] for name in scores}
    for score in scores.values():
        score(batches[0])
    for _ in range(repeats):
        for name, score in scores.items():
            start = time.perf_counter()
            for chunk in batches:
                score(chunk)
            rates[name].append(len(beats) / (time.perf_counter() - start))
    return {
        name: {
            "beats_per_s_median": float(np.median(r)),
            "beats_per_s_best": float(max(r)),
            "batch": batch,
            "beats": len(beats),
            "repeats": repeats,
        }
        for name, r in rates.items()
    }


def accuracy(bundle: Path, detector, X: np.ndarray, y: np.ndarray) -> dict:
    """Each ONNX precision against the float64 ``score_samples`` on all beats."""
    from sklearn.metrics import roc_auc_score

    from ecgedge.runtime import load_scorer

    reference = detector.score_samples(X)
    flags = reference < detector.offset_
    ref_auc = roc_auc_score(y != 1, -reference)
    out = {"reference_auc": float(ref_auc), "n_beats": len(X)}
    for precision in ONNX_PRECISIONS:
        scores = load_scorer(bundle, precision=precision).score_samples(X)
        auc = roc_auc_score(y != 1, -scores)
        out[precision] = {
            "max_rel_err": float(np.max(np.abs(scores - reference) / np.abs(reference))),
            "auc": float(auc),
            "auc_delta": float(auc - ref_auc),
            "flag_agreement": float(np.mean((scores < detector.offset_) == flags)),
        }
    return out


def cuda_throughput(detector, beats: np.ndarray, batches: list[int], repeats: int) -> dict:
    """torch CUDA FP32/FP16 batch throughput of the scoring module, beats resident on the GPU."""
    import copy

    import torch

    from ecgedge.nn import BeatScorer

    if not torch.cuda.is_available():
        return {"error": "CUDA not available"}
    device = torch.device("cuda")
    out = {"device": torch.cuda.get_device_name(device)}
    for name, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
        module = BeatScorer(copy.deepcopy(detector.module_), detector.loss).to(device, dtype).eval()
        out[name] = {}
        for batch in batches:
            reps = -(-batch // len(beats))
            x = torch.as_tensor(np.tile(beats, (reps, 1))[:batch], device=device, dtype=dtype)
            with torch.inference_mode():
                module(x)
                torch.cuda.synchronize()
                rates = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    module(x)
                    torch.cuda.synchronize()
                    rates.append(batch / (time.perf_counter() - start))
            out[name][str(batch)] = {
                "beats_per_s_median": float(np.median(rates)),
                "beats_per_s_best": float(max(rates)),
            }
    return out


def scorers(bundle: Path, threads: int) -> dict:
    """Every scorer that can run here: torch eager, ONNX Runtime per precision, TensorRT."""
    from ecgedge.runtime import load_scorer
    from ecgedge.runtime.tensorrt_backend import TensorRTUnavailable

    found = {"torch eager fp32": load_scorer(bundle, "torch", threads=threads)}
    for precision in ONNX_PRECISIONS:
        found[f"onnxruntime {precision}"] = load_scorer(bundle, precision=precision, threads=threads)
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return found
    try:
        found["tensorrt fp16"] = load_scorer(bundle, "tensorrt")
    except (TensorRTUnavailable, ValueError) as err:
        print(f"TensorRT skipped: {err}")
    return found


def markdown(result: dict) -> str:
    """The results as a markdown table plus settings."""
    s = result["settings"]
    lines = [
        f"# Latency benchmark {result['date']}",
        "",
        f"Machine: {result['machine']['cpu']} ({result['machine']['cpus']} logical CPUs), "
        f"{result['machine']['platform']}; threads pinned to {s['threads']} "
        f"(torch.set_num_threads, ORT intra_op_num_threads; ORT inter_op 1).",
        f"Model: {s['model']} ({s['model_params']}). Single beat: {s['single_calls']} calls per backend after 50 "
        f"warm-up, backends taking turns call by call; batched: batch {s['batch']}, {s['batch_beats']} "
        f"{s.get('data', 'ECG5000 test beats')} x {s['repeats']} repeats.",
        f"Versions: {', '.join(f'{k} {v}' for k, v in result['versions'].items())}.",
        "",
        "| backend | single beat p50 (ms) | p99 (ms) | p50 speed-up vs torch eager | batched beats/s (median) | best |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    torch_p50 = result["cpu"]["torch eager fp32"]["single_beat"]["p50_ms"]
    for name, row in result["cpu"].items():
        lat, thr = row["single_beat"], row["batched"]
        lines.append(
            f"| {name} | {lat['p50_ms']:.3f} | {lat['p99_ms']:.3f} | {torch_p50 / lat['p50_ms']:.1f}x | "
            f"{thr['beats_per_s_median']:,.0f} | {thr['beats_per_s_best']:,.0f} |"
        )
    if "tensorrt" in result:
        lines += ["", f"TensorRT: {result['tensorrt']}"]
    if "accuracy" in result:
        acc = result["accuracy"]
        lines += [
            "",
            f"Accuracy on {acc['n_beats']} {s.get('data', 'ECG5000 test beats')} (reference: float64 score_samples, "
            f"AUC {acc['reference_auc']:.4f}):",
            "",
            "| graph | max rel. error | ROC AUC | AUC delta | flag agreement |",
            "|---|---:|---:|---:|---:|",
        ]
        for precision in ONNX_PRECISIONS:
            a = acc[precision]
            lines.append(
                f"| {precision} | {a['max_rel_err']:.2e} | {a['auc']:.4f} | {a['auc_delta']:+.4f} | "
                f"{a['flag_agreement']:.2%} |"
            )
    if "cuda" in result:
        cuda = result["cuda"]
        lines += ["", f"GPU ({cuda.get('device', cuda.get('error'))}), torch CUDA, beats resident on the GPU:", ""]
        if "error" not in cuda:
            lines += ["| precision | batch | beats/s (median) | best |", "|---|---:|---:|---:|"]
            for precision in ("fp32", "fp16"):
                for batch, row in cuda[precision].items():
                    lines.append(
                        f"| {precision} | {batch} | {row['beats_per_s_median']:,.0f} | {row['beats_per_s_best']:,.0f} |"
                    )
    return "\n".join(lines) + "\n"


def test_beats(detector) -> tuple[np.ndarray, np.ndarray, str]:
    """Beats in the model's own format, labels (1 = normal) and what they are.

    ECG5000 TEST for a model in ECG5000's format; the bundled MIT-BIH record 100, cut at its
    annotations, for a model with another ``beat_format`` (the population model).
    """
    from ecgedge.beatformat import BeatFormat
    from ecgedge.datasets import default_record_path, load_annotated_beats, load_ecg5000

    if detector.beat_format is None:
        X, y = load_ecg5000("test", return_X_y=True)
        return X.astype(np.float32), y, "ECG5000 test beats"
    beats = load_annotated_beats(default_record_path().parent, BeatFormat.from_dict(detector.beat_format))
    return beats.X, np.where(beats.aami == "N", 1, 2), "MIT-BIH 100 beats"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="Saved detector (.npz).")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for every backend.")
    parser.add_argument("--single-calls", type=int, default=2000, help="Timed single-beat calls per backend.")
    parser.add_argument("--batch", type=int, default=256, help="Batch size of the throughput runs.")
    parser.add_argument("--batch-beats", type=int, default=2048, help="Test beats per throughput repeat.")
    parser.add_argument("--repeats", type=int, default=5, help="Throughput repeats.")
    parser.add_argument("--no-accuracy", action="store_true", help="Skip the accuracy check.")
    parser.add_argument("--cuda", action="store_true", help="Add torch CUDA FP32/FP16 batch throughput.")
    parser.add_argument("--cuda-batches", type=int, nargs="+", default=[4096, 16384, 65536])
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import onnx
    import onnxruntime
    import torch

    import ecgedge
    from ecgedge import load
    from ecgedge.export import export_bundle

    torch.set_num_threads(args.threads)
    print(f"threads: torch {torch.get_num_threads()}, onnxruntime intra-op {args.threads}, inter-op 1")
    detector = load(args.model)
    X, y, data = test_beats(detector)
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_name(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": {
            "ecgedge": ecgedge.__version__,
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "settings": {
            "data": data,
            "threads": args.threads,
            "single_calls": args.single_calls,
            "batch": args.batch,
            "batch_beats": args.batch_beats,
            "repeats": args.repeats,
            "model": str(args.model),
            "model_params": {
                k: v
                for k, v in detector.get_params().items()
                if k in ("cell", "hidden_size", "latent_size", "n_layers", "bidirectional", "frame_size", "patch_size")
            },
        },
        "cpu": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        bundle = export_bundle(detector, Path(tmp) / "bundle")
        found = scorers(bundle, args.threads)
        if "tensorrt fp16" not in found:
            result["tensorrt"] = "not measured: tensorrt is not installed on this machine"
        scores = {name: scorer.score_samples for name, scorer in found.items()}
        latency = single_beat_latency(scores, X, args.single_calls)
        throughput = batch_throughput(scores, X[: args.batch_beats], args.batch, args.repeats)
        for name in found:
            row = {"single_beat": latency[name], "batched": throughput[name]}
            result["cpu"][name] = row
            print(
                f"{name:22s} p50 {row['single_beat']['p50_ms']:.3f} ms  p99 {row['single_beat']['p99_ms']:.3f} ms  "
                f"{row['batched']['beats_per_s_median']:,.0f} beats/s"
            )
        if not args.no_accuracy:
            result["accuracy"] = accuracy(bundle, detector, X, y)
    if args.cuda:
        result["cuda"] = cuda_throughput(detector, X, args.cuda_batches, args.repeats)
    write_results("latency", result, markdown(result), args.out_dir)
    print(markdown(result))


if __name__ == "__main__":
    main()
