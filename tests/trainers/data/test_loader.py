"""Patch sampling, foreground oversampling, padding, augmentation plans and replayable batches."""

from __future__ import annotations

import numpy as np
import pytest

from autounet.trainers.data import (
    BatchStream,
    PatchLoader,
    crop_with_padding,
    default_num_workers,
    forced_foreground_slots,
    plan_augmentation,
    sample_patch_start,
)


class ArraySource:
    """Cases in memory with the store's interface."""

    def __init__(self, cases: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        self.cases = cases

    @property
    def case_ids(self):
        return sorted(self.cases)

    def load(self, case_id, mmap=True):
        data, seg = self.cases[case_id]
        return data, seg, {}

    def foreground_locations(self, case_id):
        seg = self.cases[case_id][1][0]
        return {label: np.argwhere(seg == label) for label in (1, 2)}

    def properties(self, case_id):
        return {}


def _source(shape=(12, 20, 20), count=3, seed=0) -> ArraySource:
    rng = np.random.default_rng(seed)
    cases = {}
    for index in range(count):
        data = rng.normal(size=(1, *shape)).astype(np.float32)
        seg = np.zeros((1, *shape), np.int8)
        seg[0, 2:4, 3:5, 15:17] = 1  # a small object near a corner: random patches usually miss it
        seg[0, 9, 17, 2] = 2
        cases[f"case_{index}"] = (data, seg)
    return ArraySource(cases)


@pytest.mark.parametrize("batch_size, fraction, expected", [(7, 1 / 3, 2), (2, 1 / 3, 1), (4, 0.0, 0), (3, 1.0, 3)])
def test_forced_foreground_slots(batch_size, fraction, expected):
    slots = forced_foreground_slots(batch_size, fraction)
    assert sum(slots) == expected and slots == sorted(slots)


def test_foreground_patch_contains_the_chosen_voxel():
    rng = np.random.default_rng(1)
    shape, patch = (12, 20, 20), (8, 8, 8)
    points = np.array([[0, 0, 0], [11, 19, 19], [6, 10, 10]])
    for _ in range(50):
        start = sample_patch_start(shape, patch, rng, {1: points})
        assert any(all(s <= p < s + w for p, s, w in zip(point, start, patch)) for point in points)


def test_small_image_is_padded_and_random_patches_stay_mostly_inside():
    rng = np.random.default_rng(2)
    for _ in range(50):
        start = sample_patch_start((4, 30), (8, 8), rng)
        assert start[0] == -2  # centred padding along the short axis
        assert 0 <= start[1] <= 22
    with pytest.raises(ValueError, match="one per spatial axis"):
        sample_patch_start((4, 30), (8,), rng)


def test_crop_with_padding_pads_with_value():
    array = np.arange(12).reshape(1, 3, 4)
    out = crop_with_padding(array, (-1, 2), (3, 4), -1)
    assert out.tolist() == [[[-1, -1, -1, -1], [2, 3, -1, -1], [6, 7, -1, -1]]]


def test_batches_have_the_patch_size_and_forced_samples_hold_foreground():
    source = _source()
    loader = PatchLoader(source, source.case_ids, 6, plan_augmentation((8, 8, 8), augment=False), seed=3)
    for iteration in range(5):
        batch = loader.batch(iteration)
        assert batch["data"].shape == (6, 1, 8, 8, 8) and batch["data"].dtype == np.float32
        assert batch["seg"].shape == (6, 1, 8, 8, 8) and batch["seg"].min() >= 0
        assert all((batch["seg"][i] > 0).any() for i in (4, 5))  # the last third is forced onto foreground


def test_batches_replay_from_seed_and_iteration_in_process_and_in_workers():
    source = _source()
    augmentation = plan_augmentation((8, 12, 12))
    loader = PatchLoader(source, source.case_ids, 3, augmentation, seed=5, start_iteration=4)
    expected = [loader.batch(i) for i in range(4, 8)]
    for workers in (0, 2):
        with BatchStream(PatchLoader(source, source.case_ids, 3, augmentation, seed=5, start_iteration=4), workers) as stream:
            got = [next(stream) for _ in range(4)]
        for a, b in zip(expected, got):
            assert a["iteration"] == b["iteration"]
            np.testing.assert_array_equal(a["data"], b["data"])
            np.testing.assert_array_equal(a["seg"], b["seg"])
    other_seed = PatchLoader(source, source.case_ids, 3, augmentation, seed=6).batch(4)
    assert not np.array_equal(other_seed["data"], expected[0]["data"])


def test_in_process_batches_leave_global_random_state_alone():
    source = _source()
    loader = PatchLoader(source, source.case_ids, 2, plan_augmentation((8, 8, 8)), seed=0)
    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    loader.batch(0)
    assert np.random.random() == before


@pytest.mark.parametrize(
    "patch, in_plane, rotation",
    [((40, 56, 40), False, (30.0, 30.0, 30.0)), ((8, 160, 160), True, (180.0, 0.0, 0.0)), ((64, 64), False, (180.0,)),
     ((32, 96), False, (15.0,))],
)
def test_augmentation_plan_follows_nnunet(patch, in_plane, rotation):
    plan = plan_augmentation(patch)
    assert plan.in_plane_only is in_plane and plan.rotation_degrees == rotation
    assert all(i >= p for i, p in zip(plan.initial_patch_size, patch))
    if in_plane:
        assert plan.initial_patch_size[0] == patch[0]


def test_anisotropic_augmentation_keeps_slices_apart():
    """In-plane augmentation never mixes slices: a label on slice 3 stays on slice 3 (or 2 when z is mirrored)."""
    shape = (6, 40, 40)
    seg = np.zeros((1, *shape), np.int8)
    seg[0, 3, 10:30, 10:30] = 1
    data = (seg * 5.0).astype(np.float32)
    source = ArraySource({"a": (data, seg)})
    loader = PatchLoader(source, ["a"], 4, plan_augmentation((6, 32, 32)), seed=0)
    assert loader.augmentation.in_plane_only
    for iteration in range(10):
        batch = loader.batch(iteration)
        assert batch["data"].shape == (4, 1, 6, 32, 32)
        labelled = np.unique(np.nonzero(batch["seg"][:, 0])[1])
        assert set(labelled.tolist()) <= {2, 3}


def test_default_workers_per_device():
    assert default_num_workers("cpu", 2) == 0
    assert default_num_workers("cuda", 2) == 1
    assert default_num_workers("cuda", 64) == 12


def test_label_values_with_gaps_become_class_indices():
    source = _source()
    for data, seg in source.cases.values():
        seg[seg == 2] = 4  # labels 0, 1, 4
    loader = PatchLoader(source, source.case_ids, 6, plan_augmentation((8, 8, 8), augment=False), seed=0,
                         label_values=(0, 1, 4))
    values = set()
    for iteration in range(10):
        values |= set(np.unique(loader.batch(iteration)["seg"]).tolist())
    assert values <= {0, 1, 2} and 2 in values


def test_augmentation_scale_zero_leaves_only_mirroring():
    plan = plan_augmentation((8, 12, 12), probability_scale=0.0)
    assert plan.initial_patch_size == (8, 12, 12) and plan.enabled
    from autounet.trainers.data import build_transforms

    rng = np.random.default_rng(0)
    data = rng.normal(size=(4, 1, 8, 12, 12)).astype(np.float32)
    out = build_transforms(plan)(data=data.copy(), seg=np.zeros((4, 1, 8, 12, 12), np.float32))["data"]
    for original, augmented in zip(data, out):  # the same voxels, possibly flipped
        flips = [np.flip(original, axes) for axes in [(), (1,), (2,), (3,), (1, 2), (1, 3), (2, 3), (1, 2, 3)]]
        assert any(np.array_equal(f, augmented) for f in flips)
    with pytest.raises(ValueError, match="probability_scale"):
        plan_augmentation((8, 8, 8), probability_scale=1.5)


@pytest.mark.parametrize("context_slices", [1, 2])
def test_2d_patches_stack_neighbouring_slices_as_channels(context_slices):
    k, channels, num_slices = context_slices, 2, 4
    # voxel value = 100 * channel + slice (constant in-plane); label = slice index, so the centre slice is known
    data = (100 * np.arange(channels)[:, None, None, None] + np.arange(num_slices)[None, :, None, None])
    data = np.broadcast_to(data, (channels, num_slices, 12, 12)).astype(np.float32)
    seg = np.broadcast_to(np.arange(num_slices)[None, :, None, None], (1, num_slices, 12, 12)).astype(np.int8)
    source = ArraySource({"case": (data, seg)})
    loader = PatchLoader(source, ["case"], 8, plan_augmentation((8, 8), augment=False), context_slices=k)
    width = 2 * k + 1
    centres = set()
    for iteration in range(4):
        batch = loader.batch(iteration)
        assert batch["data"].shape == (8, channels * width, 8, 8)
        for sample, label in zip(batch["data"], batch["seg"]):
            z = int(label[0, 0, 0])
            centres.add(z)
            assert (label == z).all()
            for c in range(channels):
                for i in range(width):
                    expected = 100 * c + min(max(z - k + i, 0), num_slices - 1)
                    assert (sample[c * width + i] == expected).all(), (z, c, i)
    assert {0, num_slices - 1} <= centres  # both edges were sampled, so the clamping was checked


def test_augmented_2d_patches_keep_the_stacked_channels():
    source = _source(shape=(12, 20, 20))
    loader = PatchLoader(source, source.case_ids, 3, plan_augmentation((16, 16)), context_slices=1)
    assert loader.batch(0)["data"].shape == (3, 3, 16, 16)


def test_context_slices_need_a_2d_patch():
    from autounet.errors import PlansError

    source = _source()
    with pytest.raises(PlansError, match="only extra channels of the 2d configuration"):
        PatchLoader(source, source.case_ids, 2, plan_augmentation((8, 8, 8)), context_slices=1)
