"""nnU-Net's default data augmentation, planned as plain numbers and built from batchgenerators transforms.

:func:`plan_augmentation` is the rule (patch size in, rotation ranges, in-plane-only flag, mirror axes and the
larger patch to cut before rotating out). :func:`build_transforms` turns such a plan into a batchgenerators
``Compose`` that works on ``{"data": (B, C, *spatial) float32, "seg": (B, 1, *spatial)}`` dictionaries.
The transforms draw from NumPy's global random state; :class:`~autounet.trainers.data.loader.PatchLoader`
seeds it per batch so every batch can be replayed from ``(seed, rank, iteration)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from batchgenerators.augmentations.utils import rotate_coords_2d, rotate_coords_3d  # type: ignore[import-untyped]
from batchgenerators.transforms.abstract_transforms import AbstractTransform, Compose  # type: ignore[import-untyped]
from batchgenerators.transforms.color_transforms import (  # type: ignore[import-untyped]
    BrightnessMultiplicativeTransform,
    ContrastAugmentationTransform,
    GammaTransform,
)
from batchgenerators.transforms.noise_transforms import GaussianBlurTransform, GaussianNoiseTransform  # type: ignore[import-untyped]
from batchgenerators.transforms.resample_transforms import SimulateLowResolutionTransform  # type: ignore[import-untyped]
from batchgenerators.transforms.spatial_transforms import MirrorTransform, SpatialTransform  # type: ignore[import-untyped]

from autounet.trainers.data.cascade_transforms import previous_stage_transforms

# nnU-Net v2 defaults (nnUNetTrainer.configure_rotation_dummyDA_mirroring_and_inital_patch_size and
# get_training_transforms); the names say what each number is.
ANISOTROPY_THRESHOLD = 3.0
"""Patch aspect ``max(patch) / patch[0]`` above which 3D data gets in-plane ("dummy 2D") spatial augmentation."""
ROTATION_3D_DEGREES = 30.0
"""Rotation range around each axis for isotropic-enough 3D data: +-30 degrees."""
ROTATION_2D_DEGREES = 180.0
"""In-plane rotation range for 2D data and in-plane 3D augmentation: +-180 degrees."""
ROTATION_2D_ELONGATED_DEGREES = 15.0
"""2D rotation range when the 2D patch is elongated (aspect > 1.5): +-15 degrees."""
ELONGATED_2D_ASPECT = 1.5
SCALE_RANGE = (0.7, 1.4)
"""Zoom factor range of the spatial transform (applied to the sampling grid)."""
INITIAL_PATCH_SCALE_RANGE = (0.85, 1.25)
"""Scale range nnU-Net uses to enlarge the patch cut before the spatial transform."""
P_ROTATION, P_SCALE = 0.2, 0.2
P_NOISE, NOISE_VARIANCE = 0.1, (0.0, 0.1)
P_BLUR, P_BLUR_CHANNEL, BLUR_SIGMA = 0.2, 0.5, (0.5, 1.0)
P_BRIGHTNESS, BRIGHTNESS_RANGE = 0.15, (0.75, 1.25)
P_CONTRAST, CONTRAST_RANGE = 0.15, (0.75, 1.25)
P_LOW_RESOLUTION, P_LOW_RESOLUTION_CHANNEL, LOW_RESOLUTION_ZOOM = 0.25, 0.5, (0.5, 1.0)
P_GAMMA_INVERTED, P_GAMMA, GAMMA_RANGE = 0.1, 0.3, (0.7, 1.5)
P_MIRROR_PER_AXIS = 0.5  # batchgenerators' MirrorTransform flips each axis with probability 1/2
DATA_ORDER, SEG_ORDER = 1, 1
"""Interpolation order of the spatial transform for images and (per label) for segmentations: linear for both, as
nnU-Net v2 does since it moved to batchgeneratorsv2 (``SpatialTransform`` with ``grid_sample`` bilinear; nnU-Net
v2 before 2.5 used cubic for images). Cubic costs 60% more time per batch here (docs/benchmarks.md)."""
LOW_RESOLUTION_UPSAMPLE_ORDER = 1
"""Upsampling order of the low-resolution simulation: linear, as batchgeneratorsv2 (cubic in batchgenerators v1)."""


@dataclass(frozen=True)
class AugmentationPlan:
    """What the augmentation does for one configuration; derived by :func:`plan_augmentation`.

    Attributes
    ----------
    patch_size : tuple of int
        Final patch size the network sees.
    initial_patch_size : tuple of int
        Larger patch cut from the case so that rotation and zoom-out rarely sample outside it.
    rotation_degrees : tuple of float
        Symmetric rotation range around each rotation axis (one for 2D, three for 3D; zero means none).
    in_plane_only : bool
        Spatial augmentation runs slice by slice on the last two axes (strongly anisotropic 3D data).
    mirror_axes : tuple of int
        Spatial axes (0-based, array order) that may be flipped.
    enabled : bool
        False turns every random transform off (validation batches, tests).
    mask_channels : tuple of int
        Channels normalised inside the non-zero mask: they are set to 0 where the label is -1.
    probability_scale : float
        Multiplies the probability of every random transform except mirroring (1 = nnU-Net's; 0 = mirroring
        only). Short training runs converge faster with less augmentation (docs/training.md, "Wall-clock budget").
    previous_stage_classes : int
        For a cascade stage, the number of classes (background included) of the previous stage's segmentation,
        which arrives as label channel 1 and leaves as ``previous_stage_classes - 1`` one-hot input channels
        (:mod:`autounet.trainers.data.cascade_transforms`); 0 otherwise.
    """

    patch_size: tuple[int, ...]
    initial_patch_size: tuple[int, ...]
    rotation_degrees: tuple[float, ...]
    in_plane_only: bool
    mirror_axes: tuple[int, ...]
    enabled: bool = True
    mask_channels: tuple[int, ...] = field(default_factory=tuple)
    probability_scale: float = 1.0
    previous_stage_classes: int = 0


def enlarged_patch_size(
    patch_size: Sequence[int], rotation_degrees: Sequence[float], scale_range: Sequence[float] = INITIAL_PATCH_SCALE_RANGE
) -> tuple[int, ...]:
    """Patch to cut so that rotating by up to ``rotation_degrees`` (per axis, one at a time) and zooming out by
    ``min(scale_range)`` stays inside it: nnU-Net's ``get_patch_size``.

    Examples
    --------
    >>> enlarged_patch_size((40, 56, 40), (30, 30, 30))
    (73, 80, 64)
    >>> enlarged_patch_size((64, 64), (0,))
    (75, 75)
    >>> enlarged_patch_size((56, 40), (180,))
    (65, 65)
    """
    corner = np.asarray(patch_size, dtype=float)
    extent = corner.copy()
    # nnU-Net evaluates the box at the largest angle only, capped at 90 degrees; we do the same to match it.
    angles = [min(math.radians(abs(d)), math.pi / 2) for d in rotation_degrees]
    if len(corner) == 2:
        extent = np.maximum(extent, np.abs(rotate_coords_2d(corner, angles[0])))
    else:
        for axis, angle in enumerate(angles):
            single = [0.0, 0.0, 0.0]
            single[axis] = angle
            extent = np.maximum(extent, np.abs(rotate_coords_3d(corner, *single)))
    return tuple(int(e) for e in extent / min(scale_range))


def plan_augmentation(
    patch_size: Sequence[int],
    augment: bool = True,
    mask_channels: Sequence[int] = (),
    probability_scale: float = 1.0,
    previous_stage_classes: int = 0,
) -> AugmentationPlan:
    """nnU-Net's rule for rotation ranges, in-plane-only augmentation, mirroring and the enlarged patch.

    Parameters
    ----------
    patch_size : sequence of int
        Network patch size, 2 or 3 axes in array order (coarse axis first for anisotropic data).
    augment : bool
        False plans no augmentation (the patch is cut at its final size).
    mask_channels : sequence of int
        Channels normalised inside the non-zero mask.
    probability_scale : float
        Factor on the probability of every random transform except mirroring, within [0, 1].
    previous_stage_classes : int
        Classes of a cascade's previous stage (see :class:`AugmentationPlan`); 0 for other configurations.

    Returns
    -------
    AugmentationPlan

    Notes
    -----
    3D data whose patch is more than 3x longer in-plane than along axis 0 (``max(patch) / patch[0] > 3``) is
    augmented in-plane only: rotation +-180 degrees around axis 0, scaling of the last two axes. Other 3D data is
    rotated +-30 degrees around every axis. 2D patches rotate +-180 degrees, or +-15 when elongated (aspect > 1.5).
    All axes may be mirrored. Source: nnU-Net v2 ``nnUNetTrainer.configure_rotation_dummyDA_mirroring_and_inital_patch_size``.

    Examples
    --------
    >>> plan = plan_augmentation((40, 56, 40))
    >>> plan.rotation_degrees, plan.in_plane_only, plan.initial_patch_size
    ((30.0, 30.0, 30.0), False, (73, 80, 64))
    >>> plan = plan_augmentation((8, 160, 160))
    >>> plan.in_plane_only, plan.rotation_degrees, plan.initial_patch_size
    (True, (180.0, 0.0, 0.0), (8, 188, 188))
    """
    patch = tuple(int(p) for p in patch_size)
    if not 0.0 <= probability_scale <= 1.0:
        raise ValueError(f"probability_scale must be within [0, 1], got {probability_scale}")
    if len(patch) not in (2, 3):
        raise ValueError(f"patch_size must have 2 or 3 axes, got {patch}")
    mirror_axes = tuple(range(len(patch)))
    if not augment:
        zero = (0.0,) * (1 if len(patch) == 2 else 3)
        return AugmentationPlan(patch, patch, zero, False, mirror_axes, enabled=False, mask_channels=tuple(mask_channels),
                                previous_stage_classes=previous_stage_classes)
    if len(patch) == 2:
        degrees = ROTATION_2D_ELONGATED_DEGREES if max(patch) / min(patch) > ELONGATED_2D_ASPECT else ROTATION_2D_DEGREES
        rotation: tuple[float, ...] = (degrees,)
        in_plane = False
        initial = enlarged_patch_size(patch, rotation)
    elif max(patch) / patch[0] > ANISOTROPY_THRESHOLD:
        in_plane = True
        rotation = (ROTATION_2D_DEGREES, 0.0, 0.0)
        initial = (patch[0], *enlarged_patch_size(patch[1:], (ROTATION_2D_DEGREES,)))
    else:
        in_plane = False
        rotation = (ROTATION_3D_DEGREES,) * 3
        initial = enlarged_patch_size(patch, rotation)
    if probability_scale == 0.0:  # mirroring only: no rotation or zoom, so no larger patch is needed
        initial = patch
    return AugmentationPlan(
        patch, initial, rotation, in_plane, mirror_axes, True, tuple(mask_channels), probability_scale, previous_stage_classes
    )


class _MergeAxisIntoChannels(AbstractTransform):
    """(B, C, Z, Y, X) -> (B, C * Z, Y, X) so 2D transforms act on every slice alike (nnU-Net's Convert3DTo2D)."""

    def __call__(self, **batch):
        for key in ("data", "seg"):
            array = batch[key]
            batch[f"_shape_{key}"] = array.shape
            batch[key] = array.reshape(array.shape[0], array.shape[1] * array.shape[2], *array.shape[3:])
        return batch


class _SplitChannelsIntoAxis(AbstractTransform):
    """Undo :class:`_MergeAxisIntoChannels`; the in-plane size may have changed."""

    def __call__(self, **batch):
        for key in ("data", "seg"):
            shape = batch.pop(f"_shape_{key}")
            array = batch[key]
            batch[key] = array.reshape(shape[0], shape[1], shape[2], *array.shape[2:])
        return batch


class _CenterCrop(AbstractTransform):
    """Cut the centre ``patch_size`` of data and seg (used when augmentation is off)."""

    def __init__(self, patch_size: Sequence[int]) -> None:
        self.patch_size = tuple(patch_size)

    def __call__(self, **batch):
        for key in ("data", "seg"):
            array = batch[key]
            index = [slice(None), slice(None)]
            for size, target in zip(array.shape[2:], self.patch_size):
                begin = (size - target) // 2
                index.append(slice(begin, begin + target))
            batch[key] = array[tuple(index)]
        return batch


class _MaskOutside(AbstractTransform):
    """Set masked-normalised channels to 0 where the label is -1 (outside the non-zero mask), then label -1 -> 0."""

    def __init__(self, mask_channels: Sequence[int]) -> None:
        self.mask_channels = tuple(mask_channels)

    def __call__(self, **batch):
        seg = batch["seg"]
        outside = seg[:, 0] < 0
        if self.mask_channels and outside.any():
            data = batch["data"]
            for channel in self.mask_channels:
                data[:, channel][outside] = 0
        if outside.any():
            seg[seg < 0] = 0
        return batch


def seg_pad_value(plan: AugmentationPlan) -> int:
    """Label outside the image: -1 when some channel is normalised inside the non-zero mask (so that the mask step
    can zero it), else 0 (one label fewer to interpolate: the spatial transform resamples each label separately)."""
    return -1 if plan.mask_channels else 0


def build_transforms(plan: AugmentationPlan) -> Compose:
    """batchgenerators transforms for ``plan``: the spatial transform, intensity transforms, mirroring, masking.

    The pipeline maps ``{"data": (B, C, *initial_patch_size) float32, "seg": (B, 1, *initial_patch_size)}`` to
    ``(B, C, *patch_size)`` float32 data and ``(B, 1, *patch_size)`` labels with no value below 0. Spatial
    transforms use cubic interpolation for images and per-label linear interpolation for labels; outside the
    image, data is 0 and labels are :func:`seg_pad_value` until the last step sets them to 0.

    Examples
    --------
    >>> plan = plan_augmentation((8, 8, 8), augment=False)
    >>> batch = build_transforms(plan)(data=np.ones((2, 1, 8, 8, 8), np.float32), seg=-np.ones((2, 1, 8, 8, 8)))
    >>> batch["data"].shape, int(batch["seg"].min())
    ((2, 1, 8, 8, 8), 0)
    """
    cascade = (
        previous_stage_transforms(plan.previous_stage_classes, plan.enabled, plan.probability_scale)
        if plan.previous_stage_classes
        else []
    )
    if not plan.enabled:
        return Compose([_CenterCrop(plan.patch_size), _MaskOutside(plan.mask_channels), *cascade])
    transforms: list[AbstractTransform] = []
    scale = plan.probability_scale
    radians = [math.radians(d) for d in plan.rotation_degrees] + [0.0, 0.0]
    spatial_patch = plan.patch_size[1:] if plan.in_plane_only else plan.patch_size
    if plan.in_plane_only:
        transforms.append(_MergeAxisIntoChannels())
    transforms.append(
        SpatialTransform(
            spatial_patch,
            patch_center_dist_from_border=None,
            do_elastic_deform=False,
            do_rotation=True,
            angle_x=(-radians[0], radians[0]),
            angle_y=(-radians[1], radians[1]),
            angle_z=(-radians[2], radians[2]),
            p_rot_per_axis=1,
            do_scale=True,
            scale=SCALE_RANGE,
            border_mode_data="constant",
            border_cval_data=0,
            order_data=DATA_ORDER,
            border_mode_seg="constant",
            border_cval_seg=seg_pad_value(plan),
            order_seg=SEG_ORDER,
            random_crop=False,
            p_el_per_sample=0,
            p_scale_per_sample=P_SCALE * scale,
            p_rot_per_sample=P_ROTATION * scale,
            independent_scale_for_each_axis=False,
        )
    )
    if plan.in_plane_only:
        transforms.append(_SplitChannelsIntoAxis())
    transforms += [
        GaussianNoiseTransform(noise_variance=NOISE_VARIANCE, p_per_sample=P_NOISE * scale),
        GaussianBlurTransform(BLUR_SIGMA, different_sigma_per_channel=True, p_per_sample=P_BLUR * scale, p_per_channel=P_BLUR_CHANNEL),
        BrightnessMultiplicativeTransform(multiplier_range=BRIGHTNESS_RANGE, p_per_sample=P_BRIGHTNESS * scale),
        ContrastAugmentationTransform(contrast_range=CONTRAST_RANGE, p_per_sample=P_CONTRAST * scale),
        SimulateLowResolutionTransform(
            zoom_range=LOW_RESOLUTION_ZOOM,
            per_channel=True,
            p_per_channel=P_LOW_RESOLUTION_CHANNEL,
            order_downsample=0,
            order_upsample=LOW_RESOLUTION_UPSAMPLE_ORDER,
            p_per_sample=P_LOW_RESOLUTION * scale,
            # Never resample the coarse axis of in-plane-augmented data (nnU-Net's ignore_axes).
            ignore_axes=(0,) if plan.in_plane_only else None,
        ),
        GammaTransform(GAMMA_RANGE, invert_image=True, per_channel=True, retain_stats=True, p_per_sample=P_GAMMA_INVERTED * scale),
        GammaTransform(GAMMA_RANGE, invert_image=False, per_channel=True, retain_stats=True, p_per_sample=P_GAMMA * scale),
    ]
    if plan.mirror_axes:
        transforms.append(MirrorTransform(plan.mirror_axes))
    transforms.append(_MaskOutside(plan.mask_channels))
    return Compose([*transforms, *cascade])
