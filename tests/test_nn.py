"""The score's building blocks: frames, local patches and the distance to them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecgedge.nn import BeatAutoencoder, local_patches, patch_distance


@pytest.fixture
def beats():
    return torch.as_tensor(np.random.default_rng(0).normal(size=(40, 30)))


def test_frames_pad_with_the_last_sample_and_reconstruct_every_sample():
    autoencoder = BeatAutoencoder(frame_size=4).double()
    x = torch.arange(10, dtype=torch.float64).reshape(1, 10)
    frames = autoencoder.frames(x)
    assert frames.shape == (1, 3, 4)
    assert frames.flatten().tolist() == [*range(10), 9.0, 9.0]
    assert autoencoder(x).shape == (1, 10)


def test_point_patches_give_the_distance_to_the_nearest_beats(beats):
    centres, basis, members = local_patches(beats, patch_size=1, ridge=0.1)
    assert basis.shape == (40, 0, 30)
    assert torch.equal(members[:, 0], torch.arange(40))
    queries = beats[:5] + 0.3
    expected = torch.cdist(queries, beats).topk(2, largest=False).values.mean(dim=1)
    torch.testing.assert_close(patch_distance(queries, centres, basis, n_neighbors=2), expected)


def test_a_beat_between_two_patch_members_lies_on_the_patch(beats):
    centres, basis, members = local_patches(beats, patch_size=2, ridge=0.0)
    a, b = beats[members[7, 0]], beats[members[7, 1]]
    between = (0.3 * a + 0.7 * b).unsqueeze(0)
    distances = patch_distance(between, centres[7:8], basis[7:8], n_neighbors=1)
    assert distances.item() == pytest.approx(0.0, abs=1e-6)
    # a ridge shrinks the patch towards its centre: the same beat is no longer on it
    centres, basis, _ = local_patches(beats, patch_size=2, ridge=10.0)
    assert patch_distance(between, centres[7:8], basis[7:8], n_neighbors=1).item() > 0.1


def test_leave_one_out_skips_the_patches_a_beat_belongs_to(beats):
    centres, basis, members = local_patches(beats, patch_size=3, ridge=0.0)  # members lie on their patches
    exclude = torch.zeros(40, 40, dtype=torch.bool)
    exclude[members, torch.arange(40).unsqueeze(1)] = True
    assert patch_distance(beats, centres, basis, 1).max().item() == pytest.approx(0.0, abs=1e-6)
    loo = patch_distance(beats, centres, basis, 1, exclude)
    assert torch.all(loo > 0.5)
    # every patch excluded: the farthest patch stands in, never infinity
    everything = patch_distance(beats[:2], centres, basis, 1, torch.ones(2, 40, dtype=torch.bool))
    assert torch.all(torch.isfinite(everything)) and torch.all(everything >= loo[:2])


def test_patches_never_fill_the_beat_space():
    two_samples = torch.as_tensor(np.random.default_rng(1).normal(size=(10, 2)))
    _, basis, _ = local_patches(two_samples, patch_size=4, ridge=0.1)
    assert basis.shape == (10, 1, 2)
