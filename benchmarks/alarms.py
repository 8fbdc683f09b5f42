"""The arrhythmia alarms and the heart rate on the shared MIT-BIH records, against their reference annotations.

Every shared record (MLII; 102 and 104 on their first lead), its beats where the bridge finds them,
judged by the bridge's own :class:`~ecgedge.analysis.judge.BeatJudge` (LOPO population models for
DS1, fit or read from ``--models DIR``, the shipped one for the others; 5 minutes of learning), and scored as
``ecgedge evaluate --wfdb`` scores them (:mod:`ecgedge.evaluation_alarms`, whose docstring says how:
couplets and runs, ``(VT`` and ``(VF`` / ``(VFL`` episodes, false alarms per hour of each kind, time
to alarm, the heart rate's error; the record's other lead, sent beside the beat lead as a two-lead
board sends it, confirms asystole: :mod:`ecgedge.analysis.leads`). Added here: the false alarms per
hour with the QRS benchmark's noise (baseline wander, mains, muscle) at 6 dB in every lead, scored by
the shipped population model for every record (a check of the alarms, not of the beat detection).

    python benchmarks/alarms.py [WFDB_DIR] [--models DIR] [--tag TAG]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from ecgedge.analysis.alarms import AlarmLimits
from ecgedge.analysis.offline import cut_stream, score_beats
from ecgedge.arrhythmia import judge_records
from ecgedge.datasets import add_noise, load_other_leads, load_wfdb_record
from ecgedge.evaluation_alarms import WITHIN_S, AlarmTrace, alarm_summary, format_alarm_report, score_record
from ecgedge.population import POPULATION_FORMAT

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import machine, write_results  # noqa: E402
from rhythm import shared_run  # noqa: E402

LEARNING_S = 300.0
NOISE_DB = 6.0


def noisy_records(directory: Path, records: list[str]) -> dict:
    """Each record's alarm figures with the QRS benchmark's noise at :data:`NOISE_DB` (the shipped population model)."""
    from ecgedge import load
    from ecgedge.models import population_model_path

    model = load(population_model_path())
    per_record = {}
    for name in records:
        record = _read(directory, name)
        signal = add_noise(record.signal, record.fs, NOISE_DB, seed=int(name))
        beats = cut_stream(signal, record.fs, POPULATION_FORMAT, name=name)
        trace = AlarmTrace(
            np.full(len(beats), name), [b.sample for b in beats], score_beats(beats, model), model.offset_
        )
        trace.judge(beats, model.offset_, LEARNING_S, POPULATION_FORMAT)
        others = [
            add_noise(lead, record.fs, NOISE_DB, seed=int(name) + 1000 * (i + 1))
            for i, lead in enumerate(load_other_leads(directory / name, record.lead))
        ]
        per_record[name] = score_record(record, trace, name, learning_s=LEARNING_S, signal=signal, other_leads=others)
        print(f"noise {name}", flush=True)
    return per_record


def _read(directory: Path, name: str):
    try:
        return load_wfdb_record(directory / name, lead="MLII")
    except ValueError:
        return load_wfdb_record(directory / name, lead=0)


def main() -> None:

    started = time.time()
    args, beats, scores, offsets = shared_run(__doc__)
    per_record = {}
    for name in beats.records:
        mine = beats.record == name
        part, offset = beats[mine], offsets[name]
        trace = AlarmTrace(part.record, part.sample, scores[mine], offset)
        judge_records(part, scores[mine], offset, adapt_s=LEARNING_S, beat_format=POPULATION_FORMAT, observe=trace)
        record = _read(args.directory, name)
        others = load_other_leads(args.directory / name, record.lead)
        per_record[name] = score_record(record, trace, name, learning_s=LEARNING_S, other_leads=others)
        print(name, flush=True)
    noise = noisy_records(args.directory, list(beats.records))
    report = {
        "machine": machine(numpy=np.__version__),
        "settings": {
            "directory": str(args.directory),
            "models": str(args.models) if args.models else None,
            "learning_s": LEARNING_S,
            "limits": vars(AlarmLimits()),
            "within_s": WITHIN_S,
            "noise_db": NOISE_DB,
        },
        "per_record": per_record,
        "summary": alarm_summary(per_record),
        "noise": {"per_record": noise, "summary": alarm_summary(noise)},
    }
    report["seconds"] = time.time() - started
    text = markdown(report)
    write_results("alarms", report, text, tag=args.tag)
    print(text)


def markdown(r: dict) -> str:
    m, s = r["machine"], r["summary"]
    return (
        f"Alarms on the {s['records']} shared MIT-BIH records (LOPO population models for DS1, the shipped one for "
        "the others), "
        f"after {r['settings']['learning_s']:g} s of learning ({s['hours']:.1f} h judged); noise column: the QRS "
        f"benchmark's noise at {r['settings']['noise_db']:g} dB; Machine: {m['platform']}, {m['cpus']} CPUs, "
        f"python {m['python']}, ecgedge {m['ecgedge']}; {r['seconds']:.0f} s.\n\n"
        + format_alarm_report(r["per_record"], noise=r["noise"]["summary"])
    )


if __name__ == "__main__":
    main()
