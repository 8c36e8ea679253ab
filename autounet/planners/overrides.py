"""User overrides of planned values, and the checks that refuse the ones that cannot work."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from autounet.errors import PlansError
from autounet.planners.plans import CONFIGURATION_NAMES
from autounet.planners.topology import MIN_FEATURE_MAP_SIZE, NetworkTopology, plan_topology

#: Spacing of the placeholder first axis of 2D images ``(1, y, x)`` (``autounet.io.PLACEHOLDER_2D_SPACING``).
PLACEHOLDER_2D_SPACING = 999.0


@dataclass(frozen=True)
class PlanOverrides:
    """Values the user fixes; everything else is re-derived around them.

    Attributes
    ----------
    patch_size : tuple of int, optional
        Patch in voxels, plans axis order (after transposition). Three values apply to the 3D configurations,
        two to ``2d``. Rounded up to the network's total stride, with a note.
    batch_size : int, optional
        Batch size of every planned configuration (>= 1). Without a patch override the patch shrinks until this
        many samples fit the memory budget.
    spacing : tuple of float, optional
        Full-resolution target spacing in mm, in the *input* array axis order (z, y, x), before transposition;
        the transposition, 2D spacing and low-resolution search follow from it. 2D data may give two values.
    configurations : tuple of str, optional
        Configurations to plan (``2d``, ``3d_fullres``, ``3d_lowres``, ``3d_cascade_fullres``).
    network : str, optional
        Network family registry name (default ``"unet"``); selects the memory estimate.
    network_kwargs : dict
        Family-specific arguments stored in the plans and passed to the memory estimate.
    use_mask_for_norm : bool, optional
        Force normalisation inside the non-zero mask on or off (nnU-Net's ``use_mask_for_norm`` in dataset.json).
    context_slices : int, optional
        2.5D: neighbouring slices on each side fed to the ``2d`` configuration as extra input channels (3D data
        only; 0 is plain 2D).
    """

    patch_size: tuple[int, ...] | None = None
    batch_size: int | None = None
    spacing: tuple[float, ...] | None = None
    configurations: tuple[str, ...] | None = None
    network: str | None = None
    network_kwargs: dict[str, Any] = field(default_factory=dict)
    use_mask_for_norm: bool | None = None
    context_slices: int | None = None

    def describe(self) -> list[str]:
        """One ``name=value`` string per override that is set (for the plans' notes).

        Examples
        --------
        >>> PlanOverrides(batch_size=4, spacing=(2.0, 1.0, 1.0)).describe()
        ['batch_size=4', 'spacing=[2.0, 1.0, 1.0]']
        """
        out = []
        for name in (
            "patch_size", "batch_size", "spacing", "configurations", "network", "use_mask_for_norm", "context_slices"
        ):
            value = getattr(self, name)
            if value is not None:
                out.append(f"{name}={list(value) if isinstance(value, tuple) else value}")
        if self.network_kwargs:
            out.append(f"network_kwargs={self.network_kwargs}")
        return out


def check_batch_size(batch_size: int) -> int:
    """Refuse a batch size below 1.

    Examples
    --------
    >>> check_batch_size(4)
    4
    >>> check_batch_size(0)
    Traceback (most recent call last):
    ...
    autounet.errors.PlansError: batch size must be at least 1, got 0; pass e.g. --batch-size 2
    """
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise PlansError(f"batch size must be at least 1, got {batch_size}; pass e.g. --batch-size 2")
    return int(batch_size)


def check_spacing(spacing: Sequence[float], is_2d: bool) -> tuple[float, ...]:
    """Validate a spacing override (input axis order); two values are accepted for 2D data.

    Examples
    --------
    >>> check_spacing([2.0, 1.0, 1.0], is_2d=False)
    (2.0, 1.0, 1.0)
    >>> check_spacing([0.5, 0.5], is_2d=True)
    (999.0, 0.5, 0.5)
    >>> check_spacing([1.0, 1.0], is_2d=False)
    Traceback (most recent call last):
    ...
    autounet.errors.PlansError: spacing has 2 values but this 3D dataset needs 3 (z, y, x in mm)
    """
    values = tuple(float(s) for s in spacing)
    if is_2d and len(values) == 2:
        values = (PLACEHOLDER_2D_SPACING, *values)
    if len(values) != 3:
        expected = "2 (y, x) or 3" if is_2d else "3 (z, y, x in mm)"
        kind = "2D" if is_2d else "3D"
        raise PlansError(f"spacing has {len(spacing)} values but this {kind} dataset needs {expected}")
    if any(not s > 0 for s in values):
        raise PlansError(f"spacing must be positive (mm), got {list(spacing)}")
    return values


def check_configurations(names: Sequence[str], available: Sequence[str]) -> tuple[str, ...]:
    """Validate requested configuration names against those this dataset can have.

    Examples
    --------
    >>> check_configurations(["3d_fullres"], ["2d", "3d_fullres"])
    ('3d_fullres',)
    >>> check_configurations(["3d_fulres"], ["2d", "3d_fullres"])
    Traceback (most recent call last):
    ...
    autounet.errors.PlansError: unknown configuration '3d_fulres'; choose from 2d, 3d_fullres, 3d_lowres, 3d_cascade_fullres. Did you mean '3d_fullres'?
    """
    if not names:
        raise PlansError("no configurations requested; name at least one of " + ", ".join(available))
    for name in names:
        if name not in CONFIGURATION_NAMES:
            close = difflib.get_close_matches(name, CONFIGURATION_NAMES, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise PlansError(f"unknown configuration {name!r}; choose from {', '.join(CONFIGURATION_NAMES)}.{hint}")
        if name not in available:
            raise PlansError(
                f"configuration {name!r} is not available for this dataset (available: {', '.join(available)}); "
                "2D data has only '2d'"
            )
    return tuple(dict.fromkeys(names))


def check_patch_size(
    patch_size: Sequence[int], spacing: Sequence[float], min_feature_map_size: int = MIN_FEATURE_MAP_SIZE
) -> NetworkTopology:
    """Validate a patch override and plan the topology that follows from it.

    Refused: a wrong number of axes, an axis smaller than the minimum feature-map size (4 voxels), and a patch
    too small for even one pooling (the U-Net needs at least two stages). A patch not divisible by the total
    stride comes back rounded up in ``topology.patch_size``; the caller notes it.

    Examples
    --------
    >>> check_patch_size((30, 64, 64), (1.0, 1.0, 1.0)).patch_size
    (32, 64, 64)
    >>> check_patch_size((64, 64), (1.0, 1.0, 1.0))
    Traceback (most recent call last):
    ...
    autounet.errors.PlansError: patch_size has 2 axes but the 3D configurations need 3; pass one value per spatial axis (z y x after transposition)
    >>> check_patch_size((2, 64, 64), (1.0, 1.0, 1.0))
    Traceback (most recent call last):
    ...
    autounet.errors.PlansError: patch_size [2, 64, 64] has an axis smaller than the minimum feature-map size of 4 voxels; use at least 4 per axis
    """
    values = [int(p) for p in patch_size]
    ndim = len(spacing)
    if len(values) != ndim:
        axes = "z y x after transposition" if ndim == 3 else "y x"
        raise PlansError(
            f"patch_size has {len(values)} axes but the {ndim}D configurations need {ndim}; "
            f"pass one value per spatial axis ({axes})"
        )
    if any(p != q for p, q in zip(values, patch_size)):
        raise PlansError(f"patch_size must be whole voxels, got {list(patch_size)}")
    if min(values) < min_feature_map_size:
        raise PlansError(
            f"patch_size {values} has an axis smaller than the minimum feature-map size of {min_feature_map_size} "
            f"voxels; use at least {min_feature_map_size} per axis"
        )
    topology = plan_topology(spacing, values, min_feature_map_size)
    if topology.n_stages < 2:
        raise PlansError(
            f"patch_size {values} is too small for even one pooling at spacing {[round(s, 4) for s in spacing]}: "
            f"an axis needs at least {2 * min_feature_map_size} voxels (within 2x of the finest spacing); "
            "use a larger patch"
        )
    return topology
