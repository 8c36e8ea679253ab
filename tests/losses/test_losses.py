"""Contract tests over every registered loss, hand-computed values and the deep-supervision helpers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from autounet.losses import (
    DeepSupervisionLoss,
    create_loss,
    deep_supervision_scales,
    deep_supervision_weights,
    downsample_target,
    list_losses,
)
from autounet.losses.labels import split_target

EXPECTED_LOSSES = {"ce", "dice", "dice_ce", "dice_focal", "focal", "focal_tversky", "tversky", "tversky_ce"}


def _batch(spatial: tuple[int, ...] = (6, 8, 8), classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, classes, *spatial, generator=generator)
    target = torch.randint(0, classes, (2, 1, *spatial), generator=generator)
    return logits, target


def test_expected_losses_are_registered() -> None:
    assert EXPECTED_LOSSES <= set(list_losses())


@pytest.mark.parametrize("autocast", [False, True])
@pytest.mark.parametrize("name", list_losses())
def test_loss_is_finite_with_gradients(name: str, autocast: bool) -> None:
    logits, target = _batch()
    weight = torch.randn(3, 3, 1, 1, 1, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        # A conv makes the logits bfloat16 under autocast, like a network output.
        outputs = F.conv3d(logits, weight)
        loss = create_loss(name)(outputs, target)
    if autocast:
        assert outputs.dtype == torch.bfloat16
    assert loss.dtype == torch.float32
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert weight.grad is not None and torch.isfinite(weight.grad).all() and weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", list_losses())
def test_perfect_prediction_gives_near_minimal_loss(name: str) -> None:
    logits, target = _batch()
    perfect = 50.0 * F.one_hot(target[:, 0], 3).movedim(-1, 1).float()
    loss_fn = create_loss(name)
    assert float(loss_fn(perfect, target)) < 1e-3
    assert float(loss_fn(perfect, target)) < float(loss_fn(logits, target))


@pytest.mark.parametrize("name", list_losses())
def test_target_with_or_without_channel_axis_is_the_same(name: str) -> None:
    logits, target = _batch()
    loss_fn = create_loss(name)
    assert torch.allclose(loss_fn(logits, target), loss_fn(logits, target[:, 0]))


def test_dice_hand_computed() -> None:
    # Foreground probabilities 0.9, 0.8, 0.2, 0.1 against labels 1, 1, 0, 0:
    # tp = 1.7, predicted = 2.0, true = 2 -> dice = 3.4 / 4 = 0.85 -> loss 0.15.
    foreground = torch.tensor([0.9, 0.8, 0.2, 0.1])
    logits = torch.log(torch.stack([1 - foreground, foreground]))[None]
    target = torch.tensor([[1, 1, 0, 0]])
    smooth = 1e-5
    expected = 1 - (2 * 1.7 + smooth) / (4.0 + smooth)
    assert float(create_loss("dice")(logits, target)) == pytest.approx(expected, abs=1e-6)
    # With background: background dice = (2 * 1.7) / 4 as well.
    assert float(create_loss("dice", include_background=True)(logits, target)) == pytest.approx(expected, abs=1e-6)


def test_batch_dice_pools_images() -> None:
    # Image 0 has foreground, image 1 has none but predicts some: per-image Dice punishes image 1 fully.
    logits = torch.log(torch.tensor([[[0.5, 0.5], [0.5, 0.5]], [[0.5, 0.5], [0.5, 0.5]]]))
    target = torch.tensor([[1, 1], [0, 0]])
    per_image = float(create_loss("dice", smooth=0.0)(logits, target))
    pooled = float(create_loss("dice", batch_dice=True, smooth=0.0)(logits, target))
    assert per_image == pytest.approx(1 - (2 / 3 + 0.0) / 2)  # image 0: 2 * 1 / 3, image 1: 0
    assert pooled == pytest.approx(1 - 2 * 1.0 / (2.0 + 2.0))


def test_ignore_label_excludes_voxels() -> None:
    logits, target = _batch()
    ignored = target.clone()
    ignored[:, :, :3] = 255
    for name in list_losses():
        loss_fn = create_loss(name, ignore_label=255)
        # Changing the logits of ignored voxels changes nothing.
        changed = logits.clone()
        changed[:, :, :3] = torch.randn_like(changed[:, :, :3]) * 10
        assert torch.allclose(loss_fn(logits, ignored), loss_fn(changed, ignored)), name
    # Cross-entropy over the remaining voxels equals plain cross-entropy on them.
    ce = create_loss("ce", ignore_label=255)(logits, ignored)
    reference = F.cross_entropy(logits[:, :, 3:], target[:, 0, 3:])
    assert torch.allclose(ce, reference)


def test_tversky_with_equal_weights_is_dice_and_focal_gamma_zero_is_ce() -> None:
    logits, target = _batch()
    dice = create_loss("dice")(logits, target)
    assert torch.allclose(create_loss("tversky", alpha=0.5, beta=0.5)(logits, target), dice)
    assert torch.allclose(create_loss("focal", gamma=0.0)(logits, target), create_loss("ce")(logits, target))
    dice_ce = create_loss("dice_ce")(logits, target)
    assert torch.allclose(dice_ce, dice + create_loss("ce")(logits, target))


def test_create_loss_unknown_name_suggests_closest() -> None:
    with pytest.raises(KeyError, match='unknown loss "dcie".*Did you mean "dice"'):
        create_loss("dcie")


def test_target_shape_mismatch_says_what_to_do() -> None:
    logits, target = _batch()
    with pytest.raises(ValueError, match="downsample the target"):
        create_loss("dice_ce")(logits, target[..., ::2])
    with pytest.raises(ValueError, match="softmax losses need one channel per class"):
        create_loss("dice")(logits[:, :1], target)
    with pytest.raises(ValueError, match="target has 3 channels"):
        split_target(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4))


@pytest.mark.parametrize(
    ("n_levels", "expected"),
    [(1, [1.0]), (2, [1.0, 0.0]), (3, [2 / 3, 1 / 3, 0.0]), (4, [4 / 7, 2 / 7, 1 / 7, 0.0])],
)
def test_deep_supervision_weights(n_levels: int, expected: list[float]) -> None:
    weights = deep_supervision_weights(n_levels)
    assert weights == pytest.approx(expected)
    assert math.isclose(sum(weights), 1.0)


def test_deep_supervision_weights_rejects_zero_levels() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        deep_supervision_weights(0)


def test_deep_supervision_scales_from_strides() -> None:
    scales = deep_supervision_scales([[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2]])
    assert scales == [(1.0, 1.0, 1.0), (1.0, 0.5, 0.5), (0.5, 0.25, 0.25)]


@pytest.mark.parametrize("spatial", [(8, 12, 16), (9, 13, 17), (7, 16)])
def test_downsample_target_equals_nearest_exact_interpolation(spatial: tuple[int, ...]) -> None:
    target = torch.randint(0, 5, (2, 1, *spatial))
    n_axes = len(spatial)
    scales = [1.0, 0.5, (1.0,) * (n_axes - 1) + (0.25,), 1 / 3]
    for scale, level in zip(scales, downsample_target(target, scales)):
        per_axis = (scale,) * n_axes if isinstance(scale, float) else scale
        size = [round(n * s) for n, s in zip(spatial, per_axis)]
        reference = F.interpolate(target.float(), size=size, mode="nearest-exact").long()
        assert torch.equal(level, reference), scale


def test_downsample_target_keeps_layout_without_channel_axis() -> None:
    target = torch.randint(0, 3, (2, 8, 8), dtype=torch.uint8)
    levels = downsample_target(target, [1.0, 0.5])
    assert [tuple(t.shape) for t in levels] == [(2, 8, 8), (2, 4, 4)]
    assert all(t.dtype == torch.uint8 for t in levels)


def test_deep_supervision_loss_weights_levels_and_skips_zero_weight() -> None:
    logits, target = _batch(spatial=(8, 8))
    outputs = [logits, logits[..., ::2, ::2], logits[..., ::4, ::4]]
    targets = downsample_target(target, [1.0, 0.5, 0.25])
    ce = create_loss("ce")
    loss = DeepSupervisionLoss(ce)(outputs, targets)
    expected = 2 / 3 * ce(outputs[0], targets[0]) + 1 / 3 * ce(outputs[1], targets[1])
    assert torch.allclose(loss, expected)
    custom = DeepSupervisionLoss(ce, weights=[0.0, 0.0, 1.0])(outputs, targets)
    assert torch.allclose(custom, ce(outputs[2], targets[2]))
    # A single tensor (deep supervision off) passes straight through.
    assert torch.allclose(DeepSupervisionLoss(ce)(logits, target), ce(logits, target))


def test_deep_supervision_loss_mismatched_lists_raise() -> None:
    logits, target = _batch(spatial=(8, 8))
    with pytest.raises(ValueError, match="got 2 outputs but 1 targets"):
        DeepSupervisionLoss(create_loss("ce"))([logits, logits], [target])
    with pytest.raises(ValueError, match="got 2 outputs but 3 weights"):
        DeepSupervisionLoss(create_loss("ce"), weights=[1, 0, 0])([logits, logits], [target, target])
