"""Sliding-window prediction: tile an image, predict the tiles in batches with mirroring, blend with Gaussian weights.

The same function serves the trainer's final validation and :class:`~autounet.inference.predictor.Predictor`.
It takes any callable that maps ``(N, C, *patch)`` to logits ``(N, K, *patch)`` (an ``nn.Module`` or a fake
predictor in tests), so the stitching can be checked exactly with identity-like models.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Literal, Union

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from torch import nn

from autounet.networks.cpu_speed import cpu_has_native_bfloat16
from autounet.planners.context_slices import stack_context_slices
from autounet.progress import progress_bar

logger = logging.getLogger(__name__)

#: Gaussian sigma as a fraction of the patch edge (nnU-Net: ``sigma_scale = 1/8``).
SIGMA_SCALE = 1.0 / 8
#: Fraction of the patch between tile starts (nnU-Net's default ``tile_step_size``).
DEFAULT_STEP_SIZE = 0.5
#: Voxels per forward batch when ``tile_batch_size`` is not given. Measured on a 2-core Xeon (AMX, bfloat16,
#: channels-last): the 4-stage Hippocampus U-Net runs 8 patches of 40x56x40 in 0.32 s in batches of 1-3 but in
#: 0.41 s in batches of 4 and 0.48 s in one batch of 8 (activations fall out of the caches), so batches stay small.
TILE_BATCH_VOXELS = 2**18
#: Upper bound of the automatic tile batch size (small 2D patches would otherwise give huge batches).
MAX_AUTO_TILE_BATCH = 32
#: Fraction of the free CUDA memory the accumulators may take before they are kept on the CPU instead.
DEVICE_ACCUMULATOR_FRACTION = 0.5

#: Smallest Gaussian weight with float16 accumulators (float16 keeps ~3 digits above 6e-5; weights near 1e-11 in
#: the corners of a 128**3 patch would underflow to zero and give 0/0 where only one tile covers a voxel).
HALF_MIN_WEIGHT = 1e-3

AutocastDtype = Union[torch.dtype, None, Literal["auto"]]
Predictor = Callable[[torch.Tensor], Union[torch.Tensor, Sequence[torch.Tensor]]]


def gaussian_importance_map(patch_size: Sequence[int], sigma_scale: float = SIGMA_SCALE) -> np.ndarray:
    """Weights of one tile's voxels when overlapping tiles are blended: high in the centre, low at the border.

    Parameters
    ----------
    patch_size : sequence of int
        Tile shape in array axis order.
    sigma_scale : float
        Gaussian sigma per axis as a fraction of the patch edge.

    Returns
    -------
    ndarray of shape ``patch_size``, float32
        Maximum 1 at the centre voxel ``patch_size // 2``; zeros (far corners of large patches) are replaced by the
        smallest positive weight so that every voxel of the image receives a non-zero total weight.
        The returned array is cached and read-only.

    Notes
    -----
    nnU-Net, ``compute_gaussian`` in ``inference/sliding_window_prediction.py`` (an impulse filtered with
    ``scipy.ndimage.gaussian_filter`` in ``constant`` mode, normalised to its maximum).

    Examples
    --------
    >>> weights = gaussian_importance_map((8, 8))
    >>> weights.shape, float(weights.max()), float(weights[4, 4])
    ((8, 8), 1.0, 1.0)
    >>> bool(weights.min() > 0)
    True
    """
    return _gaussian(tuple(int(s) for s in patch_size), float(sigma_scale))


@functools.lru_cache(maxsize=16)
def _gaussian(patch_size: tuple[int, ...], sigma_scale: float) -> np.ndarray:
    impulse = np.zeros(patch_size, dtype=np.float64)
    impulse[tuple(s // 2 for s in patch_size)] = 1
    weights = gaussian_filter(impulse, [s * sigma_scale for s in patch_size], 0, mode="constant", cval=0)
    weights /= weights.max()
    weights = weights.astype(np.float32)
    positive = weights > 0
    weights[~positive] = weights[positive].min()
    weights.setflags(write=False)
    return weights


@functools.lru_cache(maxsize=16)
def _gaussian_tensor(patch_size: tuple[int, ...], device: str, dtype: torch.dtype) -> torch.Tensor:
    """The Gaussian on ``device`` in ``dtype``, created once per patch, device and dtype (never written to).

    In float16 the far corners of large patches underflow to zero and tiny weights leave too few bits for the
    weighted logits, so the weights are raised to at least :data:`HALF_MIN_WEIGHT` there.
    """
    weights = torch.tensor(_gaussian(patch_size, SIGMA_SCALE))
    if dtype == torch.float16:
        weights = weights.clamp_min(HALF_MIN_WEIGHT)
    return weights.to(device=device, dtype=dtype)


def compute_tile_starts(image_shape: Sequence[int], patch_size: Sequence[int], step_size: float = DEFAULT_STEP_SIZE) -> list[list[int]]:
    """Start index of the tiles along each axis, evenly spread so the first tile starts at 0 and the last one ends at
    the image border.

    Parameters
    ----------
    image_shape, patch_size : sequence of int
        Spatial shapes in array axis order; every image axis must be at least as long as the patch.
    step_size : float
        Largest distance between tile starts as a fraction of the patch, in (0, 1].

    Returns
    -------
    list of list of int
        One list of start indices per axis.

    Notes
    -----
    nnU-Net, ``compute_steps_for_sliding_window``: the number of steps is ``ceil((size - patch) / (patch * step)) + 1``
    and the actual step is ``(size - patch) / (steps - 1)``, rounded.

    Examples
    --------
    >>> compute_tile_starts((110, 64), (64, 64), 0.5)
    [[0, 23, 46], [0]]
    """
    if not 0 < step_size <= 1:
        raise ValueError(f"step_size must be in (0, 1] (a fraction of the patch), got {step_size}")
    if len(image_shape) != len(patch_size):
        raise ValueError(f"image shape {tuple(image_shape)} and patch size {tuple(patch_size)} differ in axes")
    starts = []
    for size, patch in zip(image_shape, patch_size):
        if size < patch:
            raise ValueError(f"image shape {tuple(image_shape)} is smaller than the patch {tuple(patch_size)}; pad it first")
        num_steps = int(math.ceil((size - patch) / (patch * step_size))) + 1
        if num_steps == 1:
            starts.append([0])
            continue
        actual_step = (size - patch) / (num_steps - 1)
        starts.append([int(round(actual_step * i)) for i in range(num_steps)])
    return starts


def resolve_autocast_dtype(autocast_dtype: AutocastDtype, device: torch.device) -> torch.dtype | None:
    """The autocast dtype to use: ``"auto"`` picks bfloat16 on CPUs with native bfloat16 and float16 on CUDA.

    ``None`` or ``torch.float32`` mean full precision (returns None).
    """
    if autocast_dtype == "auto":
        if device.type == "cuda":
            return torch.float16
        if device.type == "cpu" and cpu_has_native_bfloat16():
            return torch.bfloat16
        return None
    if autocast_dtype is None or autocast_dtype == torch.float32:
        return None
    if not isinstance(autocast_dtype, torch.dtype):
        raise TypeError(f"autocast_dtype must be a torch dtype, None or 'auto', got {autocast_dtype!r}")
    return autocast_dtype


def default_tile_batch_size(patch_size: Sequence[int]) -> int:
    """Tiles per forward batch so that one batch holds about :data:`TILE_BATCH_VOXELS` voxels.

    Examples
    --------
    >>> default_tile_batch_size((40, 56, 40)), default_tile_batch_size((128, 128, 128))
    (3, 1)
    """
    voxels = int(np.prod(patch_size))
    return int(max(1, min(MAX_AUTO_TILE_BATCH, round(TILE_BATCH_VOXELS / voxels))))


def predict_logits(
    network: nn.Module | Predictor,
    data: np.ndarray | torch.Tensor,
    patch_size: Sequence[int],
    *,
    step_size: float = DEFAULT_STEP_SIZE,
    mirror_axes: Sequence[int] | Literal["all"] | None = "all",
    tile_batch_size: int | None = None,
    device: torch.device | str | None = None,
    autocast_dtype: AutocastDtype = "auto",
    accumulate_dtype: torch.dtype = torch.float32,
    progress: bool = False,
    context_slices: int = 0,
) -> torch.Tensor:
    """Predict a whole (preprocessed) image with overlapping tiles and return the blended logits.

    Parameters
    ----------
    network : nn.Module or callable
        Maps a batch ``(N, C, *patch_size)`` to logits ``(N, K, *patch_size)`` (a list, as with deep supervision,
        uses its first element). An ``nn.Module`` is put in eval mode with ``deep_supervision`` off for the call and
        restored afterwards.
    data : ndarray or Tensor of shape (C, *spatial)
        The preprocessed image. With a 2D ``patch_size`` and 3D ``data`` ``(C, z, y, x)`` the image is predicted
        slice by slice along ``z`` (the 2D configuration on a volume).
    patch_size : sequence of int
        Tile shape in array axis order (the configuration's ``patch_size``).
    step_size : float
        Largest distance between tile starts as a fraction of the patch, in (0, 1].
    mirror_axes : sequence of int, "all" or None
        Test-time augmentation: the prediction is averaged over all combinations of flips along these axes of the
        patch (0 = first spatial axis). ``"all"`` mirrors every patch axis (2**ndim forward passes per tile);
        ``None`` or ``()`` switches mirroring off.
    tile_batch_size : int, optional
        Inputs per forward pass (tiles times mirrorings); default :func:`default_tile_batch_size` (about
        :data:`TILE_BATCH_VOXELS` voxels per pass).
    device : torch.device or str, optional
        Where the network runs; default the device of its parameters (CPU for plain callables).
    autocast_dtype : torch.dtype, None or "auto"
        Autocast dtype of the forward pass. ``"auto"``: bfloat16 on CPUs with native bfloat16 (AVX512-BF16/AMX),
        float16 on CUDA, float32 otherwise. ``None`` or ``torch.float32``: full precision.
    accumulate_dtype : torch.dtype
        dtype of the running sums (``torch.float16`` halves their memory on a GPU).
    progress : bool
        Show a progress bar over the tiles.
    context_slices : int
        2.5D models (slice by slice only): each slice ``z`` is fed with slices ``z - k .. z + k`` (clamped at the
        volume's edges) as ``C * (2k + 1)`` channels, exactly as the training loader stacks them
        (:func:`autounet.planners.context_slices.stack_context_slices`). 0 feeds the slice alone.

    Returns
    -------
    Tensor of shape (K, *spatial), float32 on the CPU
        Gaussian-weighted mean logits over tiles (and mirrorings).

    Raises
    ------
    ValueError
        If the shapes of ``data``, ``patch_size`` and ``mirror_axes`` disagree, ``step_size`` is out of range or
        ``context_slices`` is given for a patch that is not predicted slice by slice.

    Notes
    -----
    The running sums live on ``device`` when it is a CUDA device with enough free memory, otherwise on the CPU
    (the tiles then travel back after each batch). Their size is ``(K + 1) * prod(spatial)`` values of
    ``accumulate_dtype``; see ``docs/inference.md`` for the whole memory bound.

    Examples
    --------
    >>> image = torch.rand(2, 20, 30)
    >>> logits = predict_logits(lambda x: x * 2, image, (16, 16), autocast_dtype=None)
    >>> logits.shape, bool(torch.allclose(logits, image * 2, atol=1e-6))
    (torch.Size([2, 20, 30]), True)
    """
    patch = tuple(int(p) for p in patch_size)
    tensor = torch.as_tensor(data)
    if tensor.dtype != torch.float32:
        tensor = tensor.float()
    spatial = tuple(tensor.shape[1:])
    slice_mode = len(spatial) == len(patch) + 1
    if len(spatial) != len(patch) and not slice_mode:
        raise ValueError(
            f"data of shape {tuple(tensor.shape)} (C, *spatial) does not fit a patch of {len(patch)} axes {patch}; "
            "pass channel-first data with one spatial axis per patch axis (or a volume for a 2D patch)"
        )
    if context_slices and not slice_mode:
        raise ValueError(
            f"context_slices={context_slices} needs a 2D patch on a volume (slice by slice), but the patch {patch} "
            f"has as many axes as the data {tuple(tensor.shape)}; pass context_slices=0"
        )
    tile_shape = (1, *patch) if slice_mode else patch
    flips = _flip_combinations(mirror_axes, len(patch), offset=1 if slice_mode else 0)
    device = _resolve_device(network, device)
    autocast = resolve_autocast_dtype(autocast_dtype, device)
    batch_size = int(tile_batch_size) if tile_batch_size else default_tile_batch_size(patch)
    if batch_size < 1:
        raise ValueError(f"tile_batch_size must be at least 1, got {tile_batch_size}")

    padded, unpad = _pad_to_at_least(tensor, tile_shape)
    starts = compute_tile_starts(tuple(padded.shape[1:]), tile_shape, 1.0 if slice_mode else step_size)
    if slice_mode:
        starts[0] = list(range(padded.shape[1]))  # every slice, no overlap along the slice axis
    tiles = [
        tuple(slice(s, s + p) for s, p in zip(corner, tile_shape)) for corner in itertools.product(*starts)
    ]
    weights = _gaussian_tensor(tile_shape, str(device), accumulate_dtype)

    with _inference_state(network), torch.no_grad():
        blender = _Blender(tuple(padded.shape[1:]), accumulate_dtype, device)
        group = max(1, batch_size // len(flips))
        bar = progress_bar(len(tiles), "tiles", unit="tile", enabled=progress, detail=True)
        try:
            for first in range(0, len(tiles), group):
                chunk = tiles[first : first + group]
                batch = torch.stack([_tile_input(padded, tile, context_slices) for tile in chunk])
                batch = batch.to(device, non_blocking=True)
                logits = _predict_mirrored(network, batch, flips, batch_size, autocast, device, slice_mode)
                for tile, tile_logits in zip(chunk, logits):
                    blender.add(tile, tile_logits, weights)
                bar.update(len(chunk))
        finally:
            bar.close()
        return blender.result(unpad)


def _tile_input(padded: torch.Tensor, tile: tuple[slice, ...], context_slices: int) -> torch.Tensor:
    """The network input of one tile ``(C', *tile)``; a 2.5D slice tile ``(C, 1, y, x)`` becomes
    ``(C * (2k + 1), 1, y, x)`` with the neighbouring slices (along the unpadded slice axis) as channels."""
    if not context_slices:
        return padded[(slice(None), *tile)]
    in_plane = padded[(slice(None), slice(None), *tile[1:])]
    return stack_context_slices(in_plane, tile[0].start, context_slices).unsqueeze(1)


def _flip_combinations(mirror_axes: Sequence[int] | str | None, ndim: int, offset: int) -> list[tuple[int, ...]]:
    """Every subset of the mirror axes as dims of a batch ``(N, C, *tile)``; the empty subset comes first."""
    if mirror_axes is None:
        axes: tuple[int, ...] = ()
    elif isinstance(mirror_axes, str):
        if mirror_axes != "all":
            raise ValueError(f"mirror_axes must be a sequence of axes, 'all' or None, got {mirror_axes!r}")
        axes = tuple(range(ndim))
    else:
        axes = tuple(int(a) for a in mirror_axes)
        bad = [a for a in axes if not 0 <= a < ndim]
        if bad or len(set(axes)) != len(axes):
            raise ValueError(
                f"mirror_axes {tuple(mirror_axes)} must be distinct patch axes in 0..{ndim - 1}; "
                "use () or None to switch mirroring off"
            )
    dims = [a + 2 + offset for a in sorted(axes)]
    return [combo for k in range(len(dims) + 1) for combo in itertools.combinations(dims, k)]


def _resolve_device(network: object, device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    if isinstance(network, nn.Module):
        parameter = next(network.parameters(), None)
        if parameter is not None:
            return parameter.device
    return torch.device("cpu")


def _pad_to_at_least(tensor: torch.Tensor, tile_shape: tuple[int, ...]) -> tuple[torch.Tensor, tuple[slice, ...]]:
    """Zero-pad (centred, like nnU-Net) every spatial axis shorter than the tile; return the slices that undo it."""
    spatial = tensor.shape[1:]
    before = [max(0, p - s) // 2 for s, p in zip(spatial, tile_shape)]
    after = [max(0, p - s) - b for s, p, b in zip(spatial, tile_shape, before)]
    unpad = tuple(slice(b, b + s) for b, s in zip(before, spatial))
    if not any(before) and not any(after):
        return tensor, unpad
    padding = [value for b, a in zip(reversed(before), reversed(after)) for value in (b, a)]
    return torch.nn.functional.pad(tensor, padding, mode="constant", value=0.0), unpad


@contextlib.contextmanager
def _inference_state(network: object) -> Iterator[None]:
    """Eval mode and no deep supervision for the call; the previous state is restored afterwards."""
    if not isinstance(network, nn.Module):
        yield
        return
    was_training = network.training
    had_deep_supervision = getattr(network, "deep_supervision", None)
    network.eval()
    if had_deep_supervision:
        setattr(network, "deep_supervision", False)
    try:
        yield
    finally:
        network.train(was_training)
        if had_deep_supervision:
            setattr(network, "deep_supervision", True)


def _forward(network: Predictor, batch: torch.Tensor, autocast: torch.dtype | None, device: torch.device) -> torch.Tensor:
    context = torch.autocast(device.type, dtype=autocast) if autocast is not None else contextlib.nullcontext()
    with context:
        output = network(batch)
    if isinstance(output, (list, tuple)):
        return output[0]
    assert isinstance(output, torch.Tensor), f"the network returned {type(output).__name__}, not logits"
    return output


def _predict_mirrored(
    network: Predictor,
    batch: torch.Tensor,
    flips: list[tuple[int, ...]],
    batch_size: int,
    autocast: torch.dtype | None,
    device: torch.device,
    slice_mode: bool,
) -> torch.Tensor:
    """Mean logits over all flips of ``batch`` ``(G, C, *tile)``; flipped copies share forward passes."""
    inputs = torch.cat([batch.flip(dims) if dims else batch for dims in flips]) if len(flips) > 1 else batch
    if slice_mode:
        inputs = inputs.squeeze(2)
    outputs = [_forward(network, inputs[i : i + batch_size], autocast, device) for i in range(0, len(inputs), batch_size)]
    logits = torch.cat(outputs) if len(outputs) > 1 else outputs[0]
    if slice_mode:
        logits = logits.unsqueeze(2)
    # one pass from the network's dtype and layout (bfloat16, channels-last) to contiguous float32: flipping and
    # blending strided tensors is several times slower
    logits = logits.to(torch.float32, memory_format=torch.contiguous_format)
    group = batch.shape[0]
    total = logits[:group].clone() if len(flips) > 1 else logits
    for index, dims in enumerate(flips[1:], start=1):
        total += logits[index * group : (index + 1) * group].flip(dims)
    if len(flips) > 1:
        total /= len(flips)
    return total


class _Blender:
    """Running Gaussian-weighted sums of tile logits and of the weights; allocated at the first tile."""

    def __init__(self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> None:
        self.shape = shape
        self.dtype = dtype
        self.device = device
        self.sums: torch.Tensor | None = None
        self.weight_sum: torch.Tensor | None = None

    def _allocate(self, num_classes: int) -> None:
        storage = _accumulator_device(self.device, (num_classes + 1) * int(np.prod(self.shape)), self.dtype)
        try:
            self.sums = torch.zeros((num_classes, *self.shape), dtype=self.dtype, device=storage)
            self.weight_sum = torch.zeros(self.shape, dtype=self.dtype, device=storage)
        except torch.OutOfMemoryError:
            if storage.type == "cpu":
                raise
            logger.info("not enough device memory for the accumulators of %s; keeping them on the CPU", self.shape)
            self.sums = self.weight_sum = None
            torch.cuda.empty_cache()
            self.sums = torch.zeros((num_classes, *self.shape), dtype=self.dtype)
            self.weight_sum = torch.zeros(self.shape, dtype=self.dtype)

    def add(self, tile: tuple[slice, ...], logits: torch.Tensor, weights: torch.Tensor) -> None:
        if self.sums is None:
            self._allocate(int(logits.shape[0]))
        assert self.sums is not None and self.weight_sum is not None
        weighted = (logits * weights).to(self.sums.device, self.dtype)
        self.sums[(slice(None), *tile)] += weighted
        self.weight_sum[tile] += weights.to(self.weight_sum.device)

    def result(self, unpad: tuple[slice, ...]) -> torch.Tensor:
        assert self.sums is not None and self.weight_sum is not None, "no tile was predicted"
        sums = self.sums[(slice(None), *unpad)]
        weight_sum = self.weight_sum[unpad]
        if self.dtype == torch.float32 and sums.device.type == "cpu":
            sums.div_(weight_sum)  # in place: no second copy of the largest array
            return sums if sums.is_contiguous() else sums.contiguous()
        out = torch.empty(sums.shape, dtype=torch.float32)
        for index in range(sums.shape[1]):  # one slab at a time keeps the float32 copy the only large new array
            out[:, index] = (sums[:, index].float() / weight_sum[index].float()).cpu()
        return out


def _accumulator_device(device: torch.device, values: int, dtype: torch.dtype) -> torch.device:
    """``device`` if it is a CUDA device with room for the accumulators, else the CPU."""
    if device.type != "cuda":
        return torch.device("cpu")
    needed = values * torch.empty((), dtype=dtype).element_size()
    free, _total = torch.cuda.mem_get_info(device)
    if needed > DEVICE_ACCUMULATOR_FRACTION * free:
        logger.info("accumulators need %.1f GB, more than half the free device memory; keeping them on the CPU", needed / 1e9)
        return torch.device("cpu")
    return device
