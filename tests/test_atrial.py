"""Atrial activity before the QRS: P waves keep an irregular sinus rhythm from being read as AF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgedge.analysis.atrial import ATRIAL_BEFORE_R_S, ATRIAL_POINTS, AtrialActivity, atrial_segment
from ecgedge.analysis.beats import cut_recording
from ecgedge.analysis.ec57 import nearest_reference
from ecgedge.analysis.offline import cut_stream
from ecgedge.analysis.rhythm import RhythmAnalyser
from ecgedge.datasets import load_wfdb_record
from ecgedge.evaluation import AF_RHYTHMS
from ecgedge.population import POPULATION_FORMAT

MITDB = Path(__file__).resolve().parents[2] / "shared" / "data" / "mitdb"
needs_mitdb = pytest.mark.skipif(not (MITDB / "108.hea").exists(), reason=f"MIT-BIH records not found at {MITDB}")
T = np.linspace(-1, 1, ATRIAL_POINTS)


def _p_wave(rng: np.random.RandomState) -> np.ndarray:
    return np.exp(-8 * T**2) + 0.05 * rng.normal(size=T.size)


def _fibrillation(rng: np.random.RandomState) -> np.ndarray:
    return np.sin(2 * np.pi * (rng.uniform(2, 4) * T + rng.uniform()))


def test_the_segment_is_the_signal_before_r_at_fixed_points_whatever_the_rate():
    for fs in (250.0, 360.0, 500.0):
        t = np.arange(int(2 * fs)) / fs
        segment = atrial_segment(np.sin(2 * np.pi * t), int(fs), fs)  # R at 1 s
        expected = np.sin(2 * np.pi * (1 - np.linspace(*ATRIAL_BEFORE_R_S, ATRIAL_POINTS)))
        assert segment.shape == (ATRIAL_POINTS,) and np.allclose(segment, expected, atol=1e-3)
    assert np.isnan(atrial_segment(np.zeros(100), 50, 360.0)).all()  # the signal does not reach back 300 ms


def test_cut_beats_carry_their_segment():
    fs, y = 360.0, np.random.RandomState(0).normal(size=3600)
    beats = cut_recording(y, [400, 700, 1000, 1300], fs, POPULATION_FORMAT)
    assert len(beats) == 3
    for beat in beats:
        assert np.allclose(beat.atrial, atrial_segment(y, beat.sample, fs))


def _sinus_and_fibrillation(rng: np.random.RandomState) -> tuple[AtrialActivity, AtrialActivity]:
    """Two windows filled: 16 beats each led by a P wave, and 16 in fibrillatory waves."""
    sinus, fibrillation = AtrialActivity(), AtrialActivity()
    for _ in range(16):
        sinus.add(_p_wave(rng), rr=0.9)
        fibrillation.add(_fibrillation(rng), rr=0.9)
    return sinus, fibrillation


def test_p_waves_are_organised_and_fibrillatory_waves_are_not():
    sinus, fibrillation = _sinus_and_fibrillation(np.random.RandomState(0))
    assert sinus.correlation > 0.9 and sinus.organised
    assert abs(fibrillation.correlation) < 0.3 and not fibrillation.organised


def test_segments_the_last_t_wave_may_reach_and_nan_segments_are_no_evidence():
    rng = np.random.RandomState(0)
    activity = AtrialActivity(window=8)
    for _ in range(8):
        activity.add(_p_wave(rng), rr=0.5)  # 120 bpm: the last beat's T wave lies where the P wave is looked for
    assert activity.correlation is None and activity.organised is None
    for _ in range(8):
        activity.add(_p_wave(rng), rr=0.9)
    for _ in range(5):  # unreadable segments push readable ones out of the window
        activity.add(np.full(ATRIAL_POINTS, np.nan), rr=0.9)
    assert activity.organised  # 3 readable left: a quarter of the window, and at least 3, is enough
    activity.add(np.full(ATRIAL_POINTS, np.nan), rr=0.9)
    assert activity.organised is None


def test_at_a_fast_rate_the_p_waves_are_read_after_the_last_t_wave():
    """At 105 bpm the last T wave reaches into the segment's first 70 ms; its last 130 ms, where the P wave of a
    beat on time lies, still show it: the window reads the P waves there, and fibrillatory waves stay none."""
    rng = np.random.RandomState(2)
    t_wave_end = np.where(T < -0.35, 3.0 * (-0.35 - T), 0.0)  # the points 300-240 ms before R

    def t_wave() -> np.ndarray:
        return rng.uniform(0.5, 1.5) * t_wave_end  # its height varies: read with it, no two segments would agree

    sinus, fibrillation = AtrialActivity(), AtrialActivity()
    for _ in range(16):
        sinus.add(_p_wave(rng) + t_wave(), rr=0.57)
        fibrillation.add(_fibrillation(rng) + t_wave(), rr=0.57)
    assert sinus.organised and not fibrillation.organised
    after_ectopy = AtrialActivity()  # a ventricular beat's T wave ends later than the QTc of a conducted one says
    for _ in range(16):
        after_ectopy.add(_p_wave(rng) + t_wave(), rr=0.57, after_normal=False)
    assert after_ectopy.organised is None  # only segments readable whole count after an ectopic beat
    assert sinus.leads(_p_wave(rng) + t_wave(), rr=0.57, on_time=True)
    assert not sinus.leads(0.05 * rng.normal(size=T.size) + t_wave(), rr=0.57, on_time=True)  # no P wave
    assert not sinus.leads(_p_wave(rng) + t_wave(), rr=0.57)  # premature: its whole segment must be readable


def test_a_beat_is_led_by_the_patients_p_wave_only_when_its_segment_shows_it_and_the_p_waves_are_plain():
    rng = np.random.RandomState(1)
    sinus, fibrillation = _sinus_and_fibrillation(rng)
    assert sinus.leads(_p_wave(rng), rr=0.9)  # conducted: aberrant or fusion, not ventricular
    assert not sinus.leads(0.05 * rng.normal(size=T.size), rr=0.9)  # no P wave before it: ventricular
    assert not sinus.leads(np.exp(-8 * (T - 0.6) ** 2), rr=0.9)  # a P wave too close to the QRS to have led it
    assert not sinus.leads(_p_wave(rng), rr=0.45)  # premature: its segment lies in the last T wave, no evidence
    t_wave_end = np.where(T < -0.6, 3.0 * (-0.6 - T), 0.0)  # the last T wave's end in the segment's first 40 ms
    assert sinus.leads(_p_wave(rng) + t_wave_end, rr=0.6, on_time=True)  # 100 bpm, due: read after the T wave
    assert not sinus.leads(_p_wave(rng) + t_wave_end, rr=0.6)  # premature: its whole segment must be readable
    assert not sinus.leads(0.05 * rng.normal(size=T.size) + t_wave_end, rr=0.6, on_time=True)  # no P wave after it
    assert not sinus.leads(_p_wave(rng), rr=0.45, on_time=True)  # 55 ms after the T wave: shorter than a P wave
    assert not sinus.leads(None, rr=0.9) and not sinus.leads(np.full(ATRIAL_POINTS, np.nan), rr=0.9)
    assert not fibrillation.leads(_p_wave(rng), rr=0.9)  # no P wave of the patient's to be led by
    assert not AtrialActivity().leads(_p_wave(rng), rr=0.9)  # nothing learnt yet


@pytest.mark.parametrize(("window", "threshold"), [(2, 0.5), (16, 1.0), (16, -1.5)])
def test_bad_atrial_settings_are_named(window, threshold):
    with pytest.raises(ValueError, match="window|threshold"):
        AtrialActivity(window, threshold)


def test_an_irregular_rhythm_with_p_waves_is_sinus_and_without_them_af():
    rng = np.random.RandomState(1)
    rr = rng.uniform(0.7, 1.3, 80)  # irregular enough for AF by the RR series alone
    with_p = RhythmAnalyser()
    without_p = RhythmAnalyser()
    rr_only = RhythmAnalyser(atrial_threshold=None)
    for r in rr:
        with_p.add(r, atrial=_p_wave(rng))
        without_p.add(r, atrial=_fibrillation(rng))
        rr_only.add(r, atrial=_p_wave(rng))
    assert (with_p.rhythm, without_p.rhythm, rr_only.rhythm) == ("sinus", "af", "af")


def test_the_p_waves_of_bigeminy_stay_while_its_intervals_are_no_rhythm():
    """Ventricular bigeminy has no normal-to-normal interval, so the rhythm goes unknown, but its normal beats'
    P waves are current: a beat is still read as led by them. A window of beats with no normal one forgets them."""
    rng = np.random.RandomState(2)
    analyser = RhythmAnalyser(window=8)
    for _ in range(40):  # normal beat (its P wave, after a compensatory pause), then a premature ventricular one
        analyser.add(1.1, atrial=_p_wave(rng))
        analyser.add(0.5, normal=False, atrial=_fibrillation(rng))
    assert analyser.rhythm == "unknown" and analyser.atrial.organised
    assert analyser.atrial.leads(_p_wave(rng), rr=1.1, on_time=True)
    for _ in range(9):  # a ventricular rhythm: no normal beat for more than a window
        analyser.add(0.5, normal=False, atrial=_fibrillation(rng))
    assert analyser.atrial.organised is None and not analyser.atrial.leads(_p_wave(rng), rr=1.1, on_time=True)


def _bridge_rhythm(name: str, **settings) -> tuple[np.ndarray, np.ndarray]:
    """The analyser's rhythm at each bridge beat of a record (normal: not a reference V beat), and the reference AF."""
    record = load_wfdb_record(MITDB / name, lead="MLII")
    beats = cut_stream(record.signal, record.fs, POPULATION_FORMAT)
    samples = np.array([b.sample for b in beats])
    nearest = nearest_reference(samples, record.beat_samples, round(0.15 * record.fs))
    ventricular = (nearest >= 0) & np.isin(record.beat_symbols[np.maximum(nearest, 0)], list("VE"))
    analyser = RhythmAnalyser(**settings)
    rhythm = np.array(
        [analyser.add(b.rr, normal=not v, atrial=b.atrial) for b, v in zip(beats, ventricular, strict=True)]
    )
    return rhythm, np.isin(record.rhythm_at(samples), AF_RHYTHMS)


@needs_mitdb
def test_sinus_arrhythmia_with_p_waves_is_not_af_on_a_real_record():
    """Record 108: sinus rhythm, irregular and with false beats (tall P waves), read as AF by the RR series alone."""
    rhythm, _ = _bridge_rhythm("108")
    rr_only, _ = _bridge_rhythm("108", atrial_threshold=None)
    assert np.mean(rr_only == "af") > 0.01
    assert np.mean(rhythm == "af") < 0.005


@needs_mitdb
def test_fibrillation_is_still_read_on_a_real_record():
    """Record 201: AF episodes between sinus stretches; the P-wave rule keeps most AF and drops false AF."""
    rhythm, reference = _bridge_rhythm("201")
    rr_only, _ = _bridge_rhythm("201", atrial_threshold=None)
    se = np.mean(rhythm[reference] == "af")
    assert se > 0.8 and se > np.mean(rr_only[reference] == "af") - 0.1
    assert np.mean(rhythm[~reference] == "af") < np.mean(rr_only[~reference] == "af")


@needs_mitdb
def test_the_offline_path_reads_108_as_sinus_beat_by_beat(population_bundle):
    """The whole path, as ``ecgedge scan`` and ``evaluate`` run it: cut, score, judge (5 minutes learnt)."""
    from ecgedge.analysis.offline import run_offline
    from ecgedge.runtime import load_scorer

    record = load_wfdb_record(MITDB / "108", lead="MLII")
    scored = run_offline(record.signal, record.fs, load_scorer(population_bundle, threads=1), adapt_s=300.0)
    rhythm = np.array([s.verdict.rhythm for s in scored])
    assert len(scored) > 1700 and np.mean(rhythm == "af") < 0.01 and np.mean(rhythm == "sinus") > 0.9
