"""The rhythm analyser, the signal-quality judge and beats judged within their rhythm, on real records.

Record 100 ships with the package; the others come from ``../shared/data/mitdb`` and those tests
skip when it is absent.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from ecgedge.analysis.atrial import ATRIAL_POINTS
from ecgedge.analysis.ec57 import nearest_reference
from ecgedge.analysis.judge import BeatJudge
from ecgedge.analysis.noise import NoiseTracker, beat_noise
from ecgedge.analysis.offline import cut_stream
from ecgedge.analysis.rhythm import RhythmAnalyser
from ecgedge.datasets import add_noise, load_wfdb_record
from ecgedge.evaluation import AF_RHYTHMS, af_report
from ecgedge.population import POPULATION_FORMAT

MITDB = Path(__file__).resolve().parents[2] / "shared" / "data" / "mitdb"
needs_mitdb = pytest.mark.skipif(not (MITDB / "203.hea").exists(), reason=f"MIT-BIH records not found at {MITDB}")


def _record(name: str):
    return load_wfdb_record(MITDB / name if name != "100" else None, lead="MLII")


def _bridge_beats(signal: np.ndarray, fs: float):
    return cut_stream(signal, fs, POPULATION_FORMAT)


def _rhythm_of(record, normal=None) -> np.ndarray:
    """The analyser's rhythm at each reference beat (RR from the annotations)."""
    rr = np.diff(record.beat_samples) / record.fs
    normal = np.ones(rr.size, bool) if normal is None else normal[1:]
    analyser = RhythmAnalyser()
    return np.array([analyser.add(r, bool(n)) for r, n in zip(rr, normal, strict=True)])


def test_sinus_rhythm_with_atrial_premature_beats_is_never_af():
    record = _record("100")  # sinus rhythm with 33 atrial premature beats
    rhythm = _rhythm_of(record)
    assert set(rhythm[30:]) == {"sinus"} and rhythm[0] == "unknown"


@needs_mitdb
def test_atrial_fibrillation_is_read_where_the_reference_says_so():
    record = _record("203")  # AF and flutter with multiform ventricular beats
    rhythm = _rhythm_of(record, normal=~np.isin(record.beat_symbols, list("VE")))
    reference = np.isin(record.rhythm_at(record.beat_samples[1:]), AF_RHYTHMS)
    report = af_report(np.full(rhythm.size, "203"), reference, rhythm == "af")
    assert report["duration_se"] > 0.9 and report["duration_p"] > 0.9


@needs_mitdb
def test_ventricular_bigeminy_is_not_af_when_its_beats_are_known_ectopic():
    record = _record("119")  # sinus rhythm with long runs of ventricular bigeminy
    ventricular = record.beat_symbols == "V"
    assert _rhythm_of(record, normal=~ventricular).tolist().count("af") == 0
    # without the shapes, a premature beat and its full compensatory pause still mark it ectopic
    assert np.mean(_rhythm_of(record) == "af") < 0.05


def test_a_long_stretch_without_usable_beats_makes_the_rhythm_unknown():
    analyser = RhythmAnalyser(window=4)
    for _ in range(10):
        analyser.add(0.8)
    assert analyser.rhythm == "sinus"
    for _ in range(4):
        analyser.add(0.8, usable=False)
    assert analyser.rhythm == "sinus"  # a short noisy stretch keeps the rhythm
    analyser.add(0.8, usable=False)
    assert analyser.rhythm == "unknown"


def test_a_restarted_analyser_reads_the_beats_after_as_a_new_one_would():
    rng = np.random.RandomState(0)
    rr = np.concatenate([np.full(30, 0.8), rng.uniform(0.4, 1.0, 40)])
    normal = rng.uniform(size=rr.size) > 0.1
    atrial = rng.normal(size=(rr.size, ATRIAL_POINTS))
    used, fresh = RhythmAnalyser(), RhythmAnalyser()
    for r, a in zip(rr, atrial, strict=True):
        used.add(r, atrial=a)
    assert used.rhythm == "af"
    used.restart()
    assert used.rhythm == "unknown" and used.irregularity is None
    for r, n, a in zip(rr, normal, atrial, strict=True):
        assert used.add(r, normal=n, atrial=a) == fresh.add(r, normal=n, atrial=a)
        assert used.irregularity == fresh.irregularity and used.atrial.correlation == fresh.atrial.correlation


def test_a_stream_restart_starts_the_rhythm_and_the_heart_rate_afresh():
    """Record 100 through the bridge's pipeline with the electrodes off from 60 s to 65 s: the beats after
    are a new segment, and the judge reads their rhythm and rate from them alone."""
    from ecgedge.analysis.streams import FilterStage
    from ecgedge.firmware_bridge.pipeline import StreamPipeline
    from ecgedge.firmware_bridge.protocol import LEAD_OFF_PLUS, Hello, Status

    record = _record("100")
    fs, adc = record.fs, record.to_adc()[: 120 * round(record.fs)]
    pipeline, stage = StreamPipeline("bed", POPULATION_FORMAT), FilterStage()
    pipeline.configure(Hello(fs, 11, record.adc_gain, record.baseline, ("MLII",)))
    off, on = round(60 * fs), round(65 * fs)
    beats = []
    for first in range(0, adc.size, 10):
        if first in (off, on):
            pipeline.status(Status(first, LEAD_OFF_PLUS if first == off else 0))
        pipeline.push(first, adc[first : first + 10, None], 0.0)
        beats += stage.run([pipeline])[0]
    before = [b for b in beats if b.sample < off]
    after = [b for b in beats if b.sample >= on]
    assert len(before) > 60 and len(after) > 60 and len(before) + len(after) == len(beats)
    assert {b.segment for b in before} == {before[0].segment} != {b.segment for b in after} == {after[0].segment}

    def judged(beats):
        judge = BeatJudge()
        out = []
        for b in beats:
            out.append((judge.judge(0.0, -1.0, b), judge.take_events()))
        return out

    verdicts = judged(beats)
    last, first = verdicts[len(before) - 1][0], verdicts[len(before)]
    assert last.rhythm == "sinus" and last.heart_rate is not None
    assert first[0].rhythm == "unknown" and first[0].heart_rate is None
    assert [e.rhythm for e in first[1] if e.kind == "rhythm-change"] == ["unknown"]
    assert [v.heart_rate is None for v, _ in verdicts[len(before) : len(before) + 4]] == [True, True, True, False]
    assert verdicts[-1][0].rhythm == "sinus"  # read again from the new segment's beats
    # without segments (beats made elsewhere) the judge cannot tell, and carries the rhythm over the gap
    unsegmented = judged([dataclasses.replace(b, segment=0) for b in beats])
    assert unsegmented[len(before)][0].rhythm == "sinus" and unsegmented[len(before)][0].heart_rate is not None


@pytest.mark.parametrize(("window", "threshold"), [(1, 0.1), (8, 0.0), (8, 1.5)])
def test_bad_rhythm_settings_are_named(window, threshold):
    with pytest.raises(ValueError, match="window|threshold"):
        RhythmAnalyser(window, threshold)


def test_clean_beats_are_ok_and_the_same_beats_in_muscle_noise_are_noisy():
    record = _record("100")
    clean = _bridge_beats(record.signal, record.fs)
    assert max(b.noise for b in clean) < 0.1
    # record 100's QRS complexes are tall for its variance: they stay readable down to about 0 dB
    noisy = _bridge_beats(add_noise(record.signal[: 120 * 360], record.fs, -6.0, ["muscle"], seed=1), record.fs)
    tracker = NoiseTracker()
    assert np.mean([tracker.add(b.noise) == "noisy" for b in noisy]) > 0.5


@needs_mitdb
@pytest.mark.parametrize("kinds", [("muscle",), ("motion",), ("wander", "mains", "muscle")])
def test_noise_marks_more_beats_noisy_as_the_snr_falls_and_false_beats_most(kinds):
    record = _record("208")
    signal = record.signal[: 600 * 360]
    shares, false_noisy = [], []
    for snr in (12.0, 6.0, 0.0):
        beats = _bridge_beats(add_noise(signal, record.fs, snr, kinds, seed=2), record.fs)
        tracker = NoiseTracker()
        noisy = np.array([tracker.add(b.noise, b.sample) == "noisy" for b in beats])
        false = nearest_reference(np.array([b.sample for b in beats]), record.beat_samples, 54) < 0
        shares.append(noisy.mean())
        false_noisy.append(noisy[false].mean() if false.any() else 1.0)
    assert shares[0] < 0.1 and shares[0] <= shares[1] <= shares[2]
    assert false_noisy[-1] > shares[0] + 0.2  # at 0 dB the false beats lie in noisy stretches


@needs_mitdb
def test_a_run_of_wide_complexes_is_not_noise_as_it_repeats():
    """203's close-coupled ventricular runs leave no slow stretch in a beat's window, but each complex repeats
    the one before: no beat of a reference run (a V after a V) reads noisy (14 of 121 did on the window alone)."""
    record = _record("203")
    beats = _bridge_beats(record.signal, record.fs)
    ventricular = record.beat_symbols == "V"
    in_run = set((np.flatnonzero(ventricular[1:] & ventricular[:-1]) + 1).tolist())
    nearest = nearest_reference(np.array([b.sample for b in beats]), record.beat_samples, 54)
    levels = np.array([b.noise for b, k in zip(beats, nearest, strict=True) if k in in_run])
    assert levels.size > 100 and np.all(levels <= NoiseTracker().threshold)


def test_baseline_wander_alone_is_not_noise():
    record = _record("100")
    beats = _bridge_beats(add_noise(record.signal[: 300 * 360], record.fs, 0.0, ["wander"], seed=3), record.fs)
    assert max(b.noise for b in beats) < 0.2


def test_beat_noise_needs_a_qrs_and_something_around_it():
    assert np.isnan(beat_noise(np.zeros(50), 25, 360.0))  # a flat window: no QRS
    spike = np.r_[np.zeros(25), 1.0, np.zeros(24)]
    assert np.isnan(beat_noise(spike, 25, 1000.0))  # 50 ms: all of it QRS, nothing around
    assert beat_noise(spike, 25, 100.0) == 0.0  # flat around a QRS: no noise


def test_no_beat_in_a_noisy_stretch_is_flagged_and_the_stretch_is_two_events():
    record = _record("100")
    signal = record.signal[: 300 * 360].copy()
    burst = slice(200 * 360, 215 * 360)
    signal[burst] = add_noise(signal, record.fs, -6.0, ["muscle"], seed=4)[burst]
    beats = _bridge_beats(signal, record.fs)
    judge = BeatJudge(adapt_s=120.0)
    verdicts, events = [], []
    for beat in beats:
        verdicts.append(judge.judge(0.0, -1.0, beat))
        events += judge.take_events()
    in_burst = np.array([200 * 360 <= b.sample < 215 * 360 for b in beats])
    quality = np.array([v.quality for v in verdicts])
    assert np.mean(quality[in_burst] == "noisy") > 0.8 and np.mean(quality[~in_burst] == "noisy") < 0.02
    assert not any(v.anomaly for v, q in zip(verdicts, quality, strict=True) if q == "noisy")
    kinds = [e.kind for e in events if e.kind != "rhythm-change"]
    assert kinds[:2] == ["noisy", "noise-over"] and [e for e in events if e.kind == "noisy"][0].sample >= 199 * 360
    assert [e.rhythm for e in events if e.kind == "rhythm-change"][0] == "sinus"


@needs_mitdb
def test_a_ventricular_beat_in_af_is_still_flagged_but_an_early_normal_one_is_not():
    from ecgedge import load
    from ecgedge.models import population_model_path

    record = _record("203")
    beats = _bridge_beats(record.signal[: 900 * 360], record.fs)
    model = load(population_model_path())
    scores = model.score_samples(np.stack([b.model_input for b in beats]))
    judge = BeatJudge(adapt_s=300.0)
    verdicts = [judge.judge(s, model.offset_, b) for s, b in zip(scores.tolist(), beats, strict=True)]
    samples = np.array([b.sample for b in beats])
    nearest = nearest_reference(samples, record.beat_samples, 54)
    symbol = np.where(nearest >= 0, record.beat_symbols[np.maximum(nearest, 0)], "-")
    judged = np.array([v.mode == "adapted" and v.rhythm == "af" and v.quality == "ok" for v in verdicts])
    flagged = np.array([v.anomaly for v in verdicts])
    reasons = {v.reason for v in verdicts if v.anomaly and v.rhythm == "af"}
    assert judged.sum() > 500
    assert flagged[judged & (symbol == "V")].mean() > 0.6  # shape still judged in AF
    assert flagged[judged & (symbol == "N")].mean() < 0.05  # prematurity is not
    assert reasons == {"shape"}


@needs_mitdb
def test_a_normal_beat_before_an_early_ventricular_one_is_compared_up_to_its_onset_only():
    record = _record("208")  # frequent early ventricular beats and couplets
    beats = _bridge_beats(record.signal, record.fs)
    samples = np.array([b.sample for b in beats])
    nearest = nearest_reference(samples, record.beat_samples, 54)
    symbol = np.where(nearest >= 0, record.beat_symbols[np.maximum(nearest, 0)], "-")
    to_next = np.r_[np.diff(samples), 10**6] / 360
    length = POPULATION_FORMAT.length
    own = np.array([b.own_length for b in beats])
    own_end_s = (own - 1) / (length - 1) * 0.65 - 0.25  # where the last own sample lies, from R
    intruded = (symbol == "N") & np.r_[symbol[1:] == "V", False] & (to_next < 0.49)
    assert intruded.sum() > 20 and (own[intruded] < length).all()
    assert (own_end_s[intruded] <= to_next[intruded] - 0.1).all()  # nothing after the next beat's onset
    assert (own[to_next > 0.55] == length).all()  # a beat whose next one starts after its window keeps it all


@needs_mitdb
@pytest.mark.parametrize(("name", "removed"), [("100", 4), ("119", 8)])
def test_the_beat_after_a_long_pause_is_found_and_cut(name, removed):
    """Pauses of 3-9 s made from a real record by removing beats' signal (a sinus arrest)."""
    record = _record(name)
    signal, fs, reference = record.signal.copy(), record.fs, record.beat_samples
    keep = np.ones(reference.size, bool)
    for i in range(np.searchsorted(reference, 60 * fs), reference.size - removed - 1, 25):
        lo, hi = reference[i] + int(0.45 * fs), reference[i + removed + 1] - int(0.3 * fs)
        signal[lo:hi] = np.linspace(signal[lo], signal[hi], hi - lo)
        keep[i + 1 : i + removed + 1] = False
    reference = reference[keep]
    after_pause = np.r_[False, ~keep[:-1]][keep]
    assert np.diff(reference)[after_pause[1:]].min() > 2.5 * fs
    found = np.array([b.sample for b in _bridge_beats(signal, fs)])
    matched = nearest_reference(reference, found, int(0.15 * fs)) >= 0
    assert matched[after_pause].all() and matched.mean() > 0.99
