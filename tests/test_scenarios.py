"""What the shared records lack, made from them: the judge after the patient was learnt.

A bedside monitor learns its patient in the first minutes, then meets what the learning window did
not show. Each scenario is a shared MIT-BIH record edited as the heart would change
(:mod:`ecgedge.datasets._scenarios`: an AV block, a rate step) or played from a later start (AF
that begins after learning), streamed through the bridge's offline path (causal filters,
streaming R peaks, cutting) and judged by the bridge's own :class:`BeatJudge`. Each asserts what a
monitor must do. The synthetic RR series at the top check the timing rule alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgedge.analysis.beats import NEXT_BEAT_WAIT_S
from ecgedge.analysis.ec57 import nearest_reference
from ecgedge.analysis.judge import RELEARN_BEATS, BeatJudge, BeatView
from ecgedge.analysis.offline import cut_stream, score_beats
from ecgedge.datasets import block_conduction, change_rate, load_wfdb_record
from ecgedge.evaluation import AF_RHYTHMS
from ecgedge.population import POPULATION_FORMAT

MITDB = Path(__file__).resolve().parents[2] / "shared" / "data" / "mitdb"
needs_mitdb = pytest.mark.skipif(not (MITDB / "201.hea").exists(), reason=f"MIT-BIH records not found at {MITDB}")
LEARN_S = 300.0


def _judge_rr(rr: list[float]) -> list:
    """Verdicts of identical beats at the given RR intervals, learnt over the first 60 s."""
    qrs = np.exp(-(((np.arange(59) - 22) / 3.0) ** 2))
    shapes = (qrs + np.random.RandomState(1).normal(0, 0.01, (len(rr), 59))).astype(np.float32)
    judge = BeatJudge(adapt_s=60.0, beat_format=POPULATION_FORMAT)
    rr_after = rr[1:] + [float("nan")]
    return [
        judge.judge(0.0, -1.0, BeatView(x, r, own_length=59, rr_after=a))
        for x, r, a in zip(shapes, rr, rr_after, strict=True)
    ]


def _timing_flags(verdicts) -> int:
    return sum(v.reason == "timing" for v in verdicts)


def test_an_early_beat_followed_by_the_old_rate_is_premature():
    verdicts = _judge_rr([0.8] * 100 + [0.5, 0.9] + [0.8] * 10)
    assert [v.reason for v in verdicts[100:102]] == ["timing", None] and _timing_flags(verdicts) == 1


def test_a_rate_that_goes_on_is_a_rate_not_a_premature_beat():
    # a 2:1 block ends: the interval halves and stays so
    assert _timing_flags(_judge_rr([1.6] * 60 + [0.8] * 40)) == 0
    # a faster sinus rate from one beat to the next, under 100 bpm
    assert _timing_flags(_judge_rr([1.0] * 90 + [0.7] * 40)) == 0


def test_an_abrupt_run_faster_than_sinus_rhythm_is_flagged():
    verdicts = _judge_rr([0.8] * 100 + [0.45] * 6 + [0.8] * 10)  # supraventricular tachycardia at 133 bpm
    assert _timing_flags(verdicts[100:106]) >= 5


def test_early_beats_in_an_irregular_rhythm_are_not_premature_even_before_af_is_read():
    rr = [0.8] * 100 + np.random.RandomState(0).uniform(0.45, 1.0, 40).tolist()
    verdicts = _judge_rr(rr)
    rhythm = [v.rhythm for v in verdicts]
    assert rhythm[-1] == "af" and rhythm.index("af") > 125  # AF is read after about two windows of beats
    # the judge that waited for AF flagged 12 of them; now only the first beats of the irregular stretch
    assert _timing_flags(verdicts) <= 4 and _timing_flags(verdicts[125:]) == 0


def _stream(signal: np.ndarray, fs: float, reference: np.ndarray, symbols: np.ndarray, rhythm: np.ndarray):
    """Stream a lead through the offline path; each beat's verdict, reference symbol and rhythm."""
    from ecgedge import load
    from ecgedge.models import population_model_path

    model = load(population_model_path())
    beats = cut_stream(signal, fs, POPULATION_FORMAT)
    judge = BeatJudge(adapt_s=LEARN_S, beat_format=POPULATION_FORMAT)
    verdicts = [
        judge.judge(s, model.offset_, b) for s, b in zip(score_beats(beats, model).tolist(), beats, strict=True)
    ]
    samples = np.array([b.sample for b in beats])
    nearest = nearest_reference(samples, reference, round(0.15 * fs))
    found = nearest >= 0
    symbol = np.where(found, symbols[np.maximum(nearest, 0)], "-")
    reference_rhythm = np.where(found, rhythm[np.maximum(nearest, 0)], "")
    return samples, verdicts, symbol, reference_rhythm


def _sinus(name: str, minutes: float = 15.0):
    record = load_wfdb_record(MITDB / name if name != "100" else None, lead="MLII")
    n = round(minutes * 60 * record.fs)
    keep = record.beat_samples < n
    return record, record.signal[:n], record.beat_samples[keep], record.beat_symbols[keep]


@needs_mitdb
def test_af_that_starts_after_learning_is_read_and_its_beats_are_not_flagged():
    """Record 201 from 8:43: learnt in sinus rhythm, AF from 26:36 (about 18 minutes in)."""
    record = load_wfdb_record(MITDB / "201", lead="MLII")
    start = round(523 * record.fs)
    keep = record.beat_samples >= start
    reference = record.beat_samples[keep] - start
    samples, verdicts, symbol, rhythm = _stream(
        record.signal[start:],
        record.fs,
        reference,
        record.beat_symbols[keep],
        record.rhythm_at(record.beat_samples[keep]),
    )
    in_af = np.isin(rhythm, AF_RHYTHMS)
    assert not in_af[samples < LEARN_S * record.fs].any()  # nothing of the AF was learnt
    read = np.array([v.rhythm == "af" for v in verdicts])
    onset = samples[in_af][0]
    assert read[in_af].mean() > 0.8
    assert samples[read & in_af][0] - onset < 30 * record.fs  # read within 30 s of its onset
    normal_in_af = in_af & (symbol == "N")
    flagged = np.array([v.anomaly for v in verdicts])
    assert normal_in_af.sum() > 150 and flagged[normal_in_af].mean() < 0.05
    ventricular = (symbol == "V") & np.array([v.mode == "adapted" for v in verdicts])
    assert flagged[ventricular].mean() > 0.9  # the ventricular beats among them still are


@needs_mitdb
def test_a_2_to_1_block_and_its_end_are_not_premature_beats():
    """Record 100, every second QRS-T removed from 6:40 to 8:40 (the P waves stay), after learning."""
    record, signal, reference, symbols = _sinus("100")
    signal, kept = block_conduction(signal, record.fs, reference, 400.0, 520.0)
    samples, verdicts, symbol, _ = _stream(signal, record.fs, reference[kept], symbols[kept], np.full(kept.sum(), "(N"))
    assert (~kept).sum() > 70
    timing = np.array([v.reason == "timing" for v in verdicts])
    assert not timing[symbol == "N"].any()
    assert timing[(symbol == "A") & (samples > LEARN_S * record.fs)].mean() > 0.5  # the atrial premature beats are
    flagged = np.array([v.anomaly for v in verdicts])
    assert flagged[(samples > 400 * record.fs) & (symbol == "N")].sum() <= 2


@needs_mitdb
@pytest.mark.parametrize("name", ["100", "112"])
def test_a_slower_stretch_and_the_return_to_the_old_rate_are_not_premature_beats(name):
    """Diastole 1.5 times longer from 6:40 to 8:40 (about 50 bpm), then the original rate."""
    record, signal, reference, symbols = _sinus(name)
    signal, reference = change_rate(signal, record.fs, reference, 400.0, 1.5, stop=520.0)
    samples, verdicts, symbol, _ = _stream(signal, record.fs, reference, symbols, np.full(reference.size, "(N"))
    assert not any(v.reason == "timing" for v, s in zip(verdicts, symbol, strict=True) if s == "N")


def _with_events(signal: np.ndarray, fs: float):
    """Beats, verdicts and the judge's events of a lead streamed through the offline path."""
    from ecgedge import load
    from ecgedge.models import population_model_path

    model = load(population_model_path())
    beats = cut_stream(signal, fs, POPULATION_FORMAT)
    judge = BeatJudge(adapt_s=LEARN_S, beat_format=POPULATION_FORMAT)
    verdicts, events = [], []
    for score, beat in zip(score_beats(beats, model).tolist(), beats, strict=True):
        verdicts.append(judge.judge(score, model.offset_, beat))
        events += judge.take_events()
    return np.array([b.sample for b in beats]), verdicts, events


@needs_mitdb
@pytest.mark.parametrize("name", ["100", "119"])
def test_a_new_supraventricular_complex_is_learnt_once_sustained_and_said(name):
    """The leads reversed at 6:40, after learning: every QRS changes, the P waves still lead them."""
    record, signal, reference, symbols = _sinus(name)
    signal = signal.copy()
    signal[round(400 * record.fs) :] *= -1
    samples, verdicts, events = _with_events(signal, record.fs)
    relearned = [e for e in events if e.kind == "relearned"]
    assert len(relearned) == 1 and abs(relearned[0].sample - 400 * record.fs) < 5 * record.fs
    nearest = nearest_reference(samples, reference, round(0.15 * record.fs))
    symbol = np.where(nearest >= 0, symbols[np.maximum(nearest, 0)], "-")
    flagged = np.array([v.anomaly for v in verdicts])
    after = samples > 480 * record.fs  # a minute and more after the change
    assert flagged[after & (symbol == "N")].mean() < 0.02
    if (after & (symbol == "V")).any():  # 119's ventricular bigeminy stays flagged against the new complex
        assert flagged[after & (symbol == "V")].mean() > 0.9


@needs_mitdb
@pytest.mark.parametrize("name", ["106", "119", "203", "207", "208", "223"])
def test_ventricular_beats_and_runs_are_never_learnt(name):
    """Records with ventricular bigeminy, couplets, runs, tachycardia and flutter, whole."""
    record = load_wfdb_record(MITDB / name, lead="MLII")
    samples, verdicts, events = _with_events(record.signal, record.fs)
    nearest = nearest_reference(samples, record.beat_samples, round(0.15 * record.fs))
    symbol = np.where(nearest >= 0, record.beat_symbols[np.maximum(nearest, 0)], "-")
    for event in (e for e in events if e.kind == "relearned"):
        first = np.searchsorted(samples, event.sample)
        learnt = symbol[first : first + RELEARN_BEATS]
        assert not np.isin(learnt, list("VEF!")).any(), f"{name}: relearned at sample {event.sample}"
    judged_v = np.array([v.mode == "adapted" for v in verdicts]) & (symbol == "V")
    flagged = np.array([v.anomaly or v.quality == "noisy" for v in verdicts])
    last_third = samples > samples[-1] * 2 / 3
    if judged_v.sum() > 30 and (judged_v & last_third).sum() > 10:  # the memory did not drift towards them
        assert flagged[judged_v & last_third].mean() >= flagged[judged_v].mean() - 0.1


def test_a_beat_carries_the_interval_to_the_next_one_and_a_pause_is_infinite():
    record = load_wfdb_record(lead="MLII")
    signal = record.signal[: 60 * 360].copy()
    gap = slice(30 * 360, 33 * 360)  # 3 s of flat line: asystole
    signal[gap] = 0.0
    beats = cut_stream(signal, 360.0, POPULATION_FORMAT)
    rr_after = np.array([b.rr_after for b in beats])
    rr = np.array([b.rr for b in beats])
    assert np.allclose(rr_after[:-1][np.isfinite(rr_after[:-1])], rr[1:][np.isfinite(rr_after[:-1])])
    before_gap = [b for b in beats if b.sample < gap.start][-1]
    assert np.isinf(before_gap.rr_after) and NEXT_BEAT_WAIT_S < 3.0
