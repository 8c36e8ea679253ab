"""Sliding window: fake predictors with known outputs show the tiles are stitched, mirrored and weighted exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from autounet.inference.sliding_window import (
    compute_tile_starts,
    default_tile_batch_size,
    gaussian_importance_map,
    predict_logits,
    resolve_autocast_dtype,
)


def _times_three(batch: torch.Tensor) -> torch.Tensor:
    return batch * 3


def _with_position(axis: int):
    """Channel 0 copies the input; channel 1 is the voxel's index along ``axis`` *within the tile*.

    Channel 0 is only reproduced if every flipped tile is flipped back; channel 1 averages to the patch centre
    when that axis is mirrored (index + mirrored index = patch - 1) and is a ramp otherwise.
    """

    def predict(batch: torch.Tensor) -> torch.Tensor:
        size = batch.shape[2 + axis]
        shape = [1] * (batch.ndim - 2)
        shape[axis] = size
        ramp = torch.arange(size, dtype=batch.dtype).reshape(shape).expand(batch.shape[2:])
        return torch.stack([batch[:, 0], ramp.expand(batch.shape[0], *batch.shape[2:])], dim=1)

    return predict


@pytest.mark.parametrize(
    "shape, patch, step, mirror_axes, batch",
    [
        ((1, 20, 30, 25), (8, 16, 12), 0.5, "all", 4),
        ((2, 20, 30, 25), (8, 16, 12), 0.33, (0, 2), 1),
        ((1, 5, 9, 7), (8, 16, 12), 0.5, "all", 8),  # smaller than the patch: padded and cropped back
        ((1, 40, 12, 12), (16, 12, 12), 1.0, None, 3),
        ((3, 31, 47), (16, 16), 0.5, "all", 5),
    ],
)
def test_identity_like_model_reproduces_the_input(shape, patch, step, mirror_axes, batch):
    data = torch.rand(shape)
    logits = predict_logits(
        _times_three, data, patch, step_size=step, mirror_axes=mirror_axes, tile_batch_size=batch, autocast_dtype=None
    )
    assert logits.shape == data.shape and logits.dtype == torch.float32 and logits.device.type == "cpu"
    torch.testing.assert_close(logits, data * 3, atol=1e-5, rtol=1e-5)


def test_numpy_input_of_other_dtype_is_accepted():
    data = np.arange(2 * 10 * 10, dtype=np.int16).reshape(2, 10, 10)
    logits = predict_logits(_times_three, data, (8, 8), autocast_dtype=None)
    np.testing.assert_allclose(logits.numpy(), data * 3.0, rtol=1e-5)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_mirrored_tiles_are_flipped_back(axis):
    data = torch.rand(1, 12, 14, 10)
    patch = (8, 10, 6)
    mirrored = predict_logits(_with_position(axis), data, patch, mirror_axes=(axis,), autocast_dtype=None)
    torch.testing.assert_close(mirrored[0], data[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mirrored[1], torch.full_like(mirrored[1], (patch[axis] - 1) / 2), atol=1e-5, rtol=1e-5)
    plain = predict_logits(_with_position(axis), data, patch, mirror_axes=None, autocast_dtype=None)
    assert plain[1].std() > 0.5  # without mirroring the ramp stays visible


def test_two_dimensional_patch_on_a_volume_predicts_slice_by_slice():
    data = torch.rand(1, 4, 20, 18)
    seen = []

    def record(batch):
        seen.append(tuple(batch.shape))
        return batch * 3

    logits = predict_logits(record, data, (16, 16), tile_batch_size=4, autocast_dtype=None)
    torch.testing.assert_close(logits, data * 3, atol=1e-5, rtol=1e-5)
    assert all(len(s) == 4 and s[2:] == (16, 16) for s in seen)


@pytest.mark.parametrize("mirror_axes", [None, "all"])
def test_context_slices_feed_each_slice_with_its_clamped_neighbours(mirror_axes):
    k, num_slices = 1, 5
    # channel 0 holds the slice index, channel 1 ten times it: the network sees which slices it was given
    ramp = torch.arange(num_slices, dtype=torch.float32)[:, None, None].expand(num_slices, 20, 18)
    data = torch.stack([ramp, 10 * ramp])
    seen = []

    def record(batch):
        seen.append(tuple(batch.shape))
        return batch

    logits = predict_logits(record, data, (16, 16), mirror_axes=mirror_axes, autocast_dtype=None, context_slices=k)
    assert logits.shape == (2 * (2 * k + 1), num_slices, 20, 18)
    assert all(s[1] == 2 * (2 * k + 1) for s in seen)
    for z in range(num_slices):
        neighbours = [min(max(z + offset, 0), num_slices - 1) for offset in range(-k, k + 1)]
        expected = torch.tensor([*neighbours, *(10 * n for n in neighbours)], dtype=torch.float32)
        torch.testing.assert_close(logits[:, z], expected[:, None, None].expand(-1, 20, 18), atol=1e-5, rtol=1e-5)


def test_context_slices_need_a_slice_by_slice_prediction():
    with pytest.raises(ValueError, match="context_slices=1 needs a 2D patch on a volume"):
        predict_logits(lambda x: x, torch.rand(1, 8, 8, 8), (8, 8, 8), context_slices=1)


def test_mirror_axes_of_a_slice_wise_prediction_are_the_patch_axes():
    data = torch.rand(1, 3, 12, 10)
    logits = predict_logits(_with_position(1), data, (12, 10), mirror_axes=(1,), autocast_dtype=None)
    torch.testing.assert_close(logits[1], torch.full_like(logits[1], 4.5))


def test_half_precision_accumulators_agree_with_float32():
    data = torch.rand(2, 30, 30, 30)
    full = predict_logits(_times_three, data, (16, 16, 16), mirror_axes=None, autocast_dtype=None)
    half = predict_logits(
        _times_three, data, (16, 16, 16), mirror_axes=None, autocast_dtype=None, accumulate_dtype=torch.float16
    )
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, full, atol=1e-2, rtol=1e-2)


class _TinyNet(nn.Module):
    """A conv net with a deep-supervision switch, like the real networks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 3, 3, padding=1)
        self.norm = nn.InstanceNorm3d(3, affine=True)
        self.deep_supervision = True

    def forward(self, x):
        y = self.norm(self.conv(x))
        return [y, y[:, :, ::2, ::2, ::2]] if self.deep_supervision else y


def test_network_state_is_restored_and_deep_supervision_is_off_during_the_call():
    net = _TinyNet().train()
    logits = predict_logits(net, torch.rand(1, 12, 12, 12), (8, 8, 8), autocast_dtype=None)
    assert logits.shape == (3, 12, 12, 12)
    assert net.training and net.deep_supervision


def test_bfloat16_autocast_stays_close_to_float32():
    torch.manual_seed(0)
    net = _TinyNet()
    data = torch.rand(1, 16, 16, 16)
    full = predict_logits(net, data, (8, 8, 8), autocast_dtype=None)
    bf16 = predict_logits(net, data, (8, 8, 8), autocast_dtype=torch.bfloat16)
    assert bf16.dtype == torch.float32
    assert (full.argmax(0) == bf16.argmax(0)).float().mean() > 0.97
    torch.testing.assert_close(bf16, full, atol=0.1, rtol=0.05)


def test_resolve_autocast_dtype():
    assert resolve_autocast_dtype(None, torch.device("cpu")) is None
    assert resolve_autocast_dtype(torch.float32, torch.device("cpu")) is None
    assert resolve_autocast_dtype("auto", torch.device("cuda")) == torch.float16
    assert resolve_autocast_dtype("auto", torch.device("cpu")) in (None, torch.bfloat16)
    with pytest.raises(TypeError, match="torch dtype"):
        resolve_autocast_dtype("bf16", torch.device("cpu"))


@pytest.mark.parametrize("patch", [(8, 8), (40, 56, 40), (7, 12, 5), (1, 16, 16)])
def test_gaussian_is_normalised_positive_and_symmetric(patch):
    weights = gaussian_importance_map(patch)
    assert weights.shape == patch and weights.dtype == np.float32
    assert weights.max() == 1.0 and weights[tuple(p // 2 for p in patch)] == 1.0
    assert weights.min() > 0
    assert not weights.flags.writeable
    # symmetric around the centre voxel (for odd sizes exactly; for even sizes the centre is p // 2)
    for axis, size in enumerate(patch):
        if size % 2 == 1:
            np.testing.assert_allclose(weights, np.flip(weights, axis), rtol=1e-6)


def test_gaussian_has_no_zeros_on_large_patches():
    weights = gaussian_importance_map((128, 128, 128))
    assert weights.min() > 0
    assert weights[0, 0, 0] == weights.min()


@pytest.mark.parametrize(
    "image, patch, step, expected",
    [
        ((110,), (64,), 0.5, [[0, 23, 46]]),
        ((64,), (64,), 0.5, [[0]]),
        ((65,), (64,), 0.5, [[0, 1]]),
        ((100, 40), (50, 40), 1.0, [[0, 50], [0]]),
        ((100,), (50,), 0.25, [[0, 12, 25, 38, 50]]),
    ],
)
def test_compute_tile_starts(image, patch, step, expected):
    assert compute_tile_starts(image, patch, step) == expected


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"step_size": 0}, ValueError, "step_size must be in"),
        ({"step_size": 1.5}, ValueError, "step_size must be in"),
        ({"mirror_axes": (3,)}, ValueError, "distinct patch axes"),
        ({"mirror_axes": (0, 0)}, ValueError, "distinct patch axes"),
        ({"mirror_axes": "some"}, ValueError, "'all' or None"),
        ({"tile_batch_size": -1}, ValueError, "at least 1"),
    ],
)
def test_bad_arguments_are_explained(kwargs, error, match):
    with pytest.raises(error, match=match):
        predict_logits(_times_three, torch.rand(1, 10, 10, 10), (8, 8, 8), autocast_dtype=None, **kwargs)


def test_patch_with_wrong_number_of_axes_is_explained():
    with pytest.raises(ValueError, match="does not fit a patch of 3 axes"):
        predict_logits(_times_three, torch.rand(1, 10, 10), (8, 8, 8))
    with pytest.raises(ValueError, match="smaller than the patch"):
        compute_tile_starts((10,), (12,))


def test_default_tile_batch_size_is_bounded():
    assert default_tile_batch_size((4, 4)) == 32
    assert default_tile_batch_size((256, 256, 256)) == 1
