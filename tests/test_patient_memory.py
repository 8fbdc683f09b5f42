"""The device's patient memory and the judge that runs it: learnt from what the population accepts, resumable."""

from __future__ import annotations

import numpy as np
import pytest

from ecgedge.analysis.judge import MAX_RR_S, BeatJudge, BeatView
from ecgedge.calibration import BeatContext, PatientMemory
from ecgedge.datasets import default_record_path, load_annotated_beats
from ecgedge.population import POPULATION_FORMAT


@pytest.fixture(scope="module")
def record_100():
    """Record 100's beats where the bridge finds them (fixed window), with shapes and RR ratios in stream order."""
    beats = load_annotated_beats(default_record_path().parent, POPULATION_FORMAT, positions="bridge")
    context = BeatContext()
    shapes, ratios = zip(*(context.add(x, rr) for x, rr in zip(beats.X, beats.rr_before, strict=True)), strict=True)
    return beats, np.array(shapes), np.array(ratios)


def _memory(shapes, ratios, accepted, **settings) -> PatientMemory:
    memory = PatientMemory(**settings)
    memory.learn(shapes, ratios, accepted=accepted, scores=np.zeros(len(shapes)))
    memory.close()
    return memory


def test_premature_beats_are_flagged_by_timing_and_normal_beats_are_not(record_100):
    beats, shapes, ratios = record_100
    learn = beats.time < 300
    memory = _memory(shapes[learn], ratios[learn], beats.aami[learn] == "N")
    later = ~learn
    flagged = memory.distance(shapes[later], ratios[later]) > 1
    normal, premature = beats.aami[later] == "N", beats.aami[later] == "SVEB"
    assert np.mean(flagged[normal]) < 0.01
    assert np.mean(flagged[premature]) > 0.5  # their shape is normal: they come early
    assert len(memory.beats_) == int(np.sum(beats.aami[learn] == "N"))
    assert 0 < memory.rhythm_limit <= memory.premature


def test_an_irregular_rhythm_moves_the_rhythm_limit():
    """Atrial fibrillation: normal beats come at any time, so earliness alone must not alarm."""
    rng = np.random.RandomState(0)
    shapes = rng.normal(0, 0.02, (300, 8))
    regular = _memory(shapes, rng.normal(1, 0.03, 300), np.ones(300, bool))
    irregular = _memory(shapes, rng.uniform(0.6, 1.5, 300), np.ones(300, bool))
    assert regular.rhythm_limit == pytest.approx(0.85)
    assert irregular.rhythm_limit < 0.6
    early = (np.zeros((1, 8)), np.array([0.7]))
    assert regular.distance(*early)[0] > 1 > irregular.distance(*early)[0]


def test_beats_the_population_rejects_are_never_learnt():
    rng = np.random.RandomState(1)
    normal, ectopic = rng.normal(0, 0.02, (150, 8)), rng.normal(1, 0.02, (150, 8))
    shapes = np.empty((300, 8))
    shapes[::2], shapes[1::2] = normal, ectopic  # a stream that starts in bigeminy
    accepted = np.arange(300) % 2 == 0
    memory = _memory(shapes, np.ones(300), accepted)
    assert memory.distance(ectopic[:5], np.ones(5)).min() > 1
    assert memory.distance(normal[:5], np.ones(5)).max() < 1
    assert memory.accepted_share == 0.5  # how far the population model's verdict holds for this patient


def test_a_window_the_population_rejects_keeps_its_more_normal_half():
    rng = np.random.RandomState(2)
    shapes = rng.normal(0, 0.02, (100, 8))
    scores = np.linspace(-2, 0, 100)
    memory = PatientMemory()
    memory.learn(shapes, np.ones(100), accepted=np.zeros(100, bool), scores=scores)
    memory.close()
    assert len(memory.beats_) == 50 and memory.accepted_share == 0.0
    np.testing.assert_array_equal(memory.beats_, shapes[50:].astype(np.float32))


def test_clearly_normal_beats_join_the_memory_and_others_do_not():
    rng = np.random.RandomState(3)
    memory = _memory(rng.normal(0, 0.02, (100, 8)), np.ones(100), np.ones(100, bool), max_beats=120)
    near, far = np.zeros((30, 8)), np.ones((5, 8))
    memory.absorb(np.vstack([near, far]), memory.distance(np.vstack([near, far]), np.ones(35)))
    assert len(memory.beats_) == 120  # 100 + 30 near ones, the oldest 10 dropped
    assert not np.any(np.all(memory.beats_ == 1, axis=1))


def test_state_resumes_the_same_judgement_and_bad_input_is_named(record_100):
    beats, shapes, ratios = record_100
    learn = beats.time < 300
    memory = _memory(shapes[learn], ratios[learn], np.ones(learn.sum(), bool))
    resumed = PatientMemory.from_state(memory.state())
    np.testing.assert_array_equal(
        resumed.distance(shapes[~learn], ratios[~learn]), memory.distance(shapes[~learn], ratios[~learn])
    )
    with pytest.raises(ValueError, match="NaN"):
        PatientMemory().learn(np.full((3, 4), np.nan), np.ones(3), np.ones(3, bool), np.zeros(3))
    with pytest.raises(ValueError, match="at least 20 beats"):
        PatientMemory().close()
    with pytest.raises(RuntimeError, match="still learning"):
        PatientMemory().distance(np.zeros((1, 4)), np.ones(1))
    with pytest.raises(ValueError, match="differ"):
        PatientMemory().learn(np.zeros((3, 4)), np.ones(2), np.ones(3, bool), np.zeros(3))


def test_beat_context_follows_a_gain_change_within_its_window():
    context = BeatContext(n_amplitudes=8)
    beat = np.array([0.0, 0.2, 1.0, -0.3, 0.0])
    before = [context.add(beat, 0.8)[0] for _ in range(10)]
    after = [context.add(3 * beat, 0.8)[0] for _ in range(10)]
    np.testing.assert_allclose(after[-1], before[-1], rtol=1e-6)  # new gain learnt
    assert np.ptp(after[0]) > 2 * np.ptp(before[-1])  # one big beat among normal ones stays big


class _Beat:
    def __init__(self, x, rr):
        self.model_input, self.rr = x, rr


def test_judge_learns_for_its_window_then_judges_by_the_patient(record_100):
    beats, _, _ = record_100
    judge = BeatJudge(adapt_s=300)
    verdicts = [judge.judge(0.0, -1.0, _Beat(x, rr)) for x, rr in zip(beats.X, beats.rr_before, strict=True)]
    modes = np.array([v.mode for v in verdicts])
    assert set(modes[beats.time < 300]) == {"learning"} and set(modes[beats.time > 302]) == {"adapted"}
    adapted = modes == "adapted"
    flagged = np.array([v.anomaly for v in verdicts])
    assert np.mean(flagged[adapted & (beats.aami == "N")]) < 0.01
    assert np.mean(flagged[adapted & (beats.aami == "SVEB")]) > 0.5
    assert not flagged[~adapted].any()
    assert judge.state_to_save() is not None and judge.state_to_save() is None  # saved once, then only when changed
    with pytest.raises(ValueError, match="not both"):
        BeatJudge(calibration_beats=10, adapt_s=300)
    with pytest.raises(ValueError, match="needs each beat"):
        BeatJudge(adapt_s=300).judge(0.0, -1.0)


def test_a_learning_verdict_carries_the_seconds_the_judge_still_learns(record_100):
    """What the page shows: every beat counts for its RR interval (at most MAX_RR_S), noisy ones too (not learnt)."""
    beats, _, _ = record_100
    judge = BeatJudge(adapt_s=60)
    noise = np.where((np.arange(len(beats)) >= 40) & (np.arange(len(beats)) < 50), 1.0, 0.0)  # a noisy stretch
    verdicts = [
        judge.judge(0.0, -1.0, BeatView(x, float(rr), int(sample), noise=float(level)))
        for x, rr, sample, level in zip(beats.X, beats.rr_before, beats.sample, noise, strict=True)
    ]
    learning = [v for v in verdicts if v.mode == "learning"]
    clean = np.array([v.quality == "ok" for v in learning])
    rr = np.minimum(np.nan_to_num(beats.rr_before[: len(learning)]), MAX_RR_S)
    np.testing.assert_allclose([v.learning_left_s for v in learning], np.maximum(0.0, 60 - np.cumsum(rr)))
    assert (~clean).sum() >= 10 and all(v.learning_left_s is None for v in verdicts[len(learning) :])
    assert len(learning) == np.searchsorted(np.cumsum(rr), 60) + 1  # the first 60 s of signal, noise and all
    assert BeatJudge(calibration_beats=5).judge(0.0, -1.0).learning_left_s is None


def test_a_memory_on_the_qrs_judges_only_its_columns_and_keeps_them_across_a_restart(record_100):
    import io

    beats, shapes, ratios = record_100
    learn = beats.time < 300
    columns = POPULATION_FORMAT.columns(0.10, 0.14)
    memory = _memory(shapes[learn], ratios[learn], np.ones(learn.sum(), bool), columns=columns)
    later = shapes[~learn][:50].copy()
    before = memory.distances(later, np.ones(50))[0]
    later[:, : columns[0]] += 5.0  # a P wave and a T wave far from the patient's: the QRS judge does not see them
    later[:, columns[1] :] -= 5.0
    np.testing.assert_allclose(memory.distances(later, np.ones(50))[0], before, rtol=1e-5)
    buffer = io.BytesIO()  # as the bridge's SQLite keeps it: an .npz archive without pickle
    np.savez(buffer, **{k: np.asarray(v) for k, v in memory.state().items()})
    with np.load(io.BytesIO(buffer.getvalue()), allow_pickle=False) as archive:
        resumed = PatientMemory.from_state({k: archive[k] for k in archive.files})
    assert resumed.columns == columns and resumed.accepted_share == memory.accepted_share == 1.0
    old = {k: v for k, v in memory.state().items() if k not in ("columns", "accepted_share")}  # saved before them
    assert PatientMemory.from_state(old).columns is None and np.isnan(PatientMemory.from_state(old).accepted_share)
    with pytest.raises(ValueError, match="columns"):
        PatientMemory(columns=(30, 10))
