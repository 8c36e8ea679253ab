"""2.5D input of the 2D configuration: each slice is fed with its ``k`` neighbours on either side as extra channels.

One module holds the whole convention so that training and inference cannot disagree about it:

* :func:`check_context_slices` says which values a configuration may have;
* :func:`context_slice_indices` says which slices surround slice ``z`` (clamped at the volume's edges, so the first
  and last slices see themselves repeated, like replicate padding);
* :func:`stack_context_slices` cuts that stack out of a ``(C, z, y, x)`` volume as ``C * (2k + 1)`` channels;
* :func:`expand_channel_indices` maps per-image-channel facts (which channels are normalised inside the mask) onto
  the stacked channels.

Stacked channels are ordered image channel first: channel ``c * (2k + 1) + i`` is image channel ``c`` of slice
``z - k + i``, so the centre slice of channel ``c`` is ``c * (2k + 1) + k``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from autounet.errors import PlansError

ArrayT = TypeVar("ArrayT")


def check_context_slices(context_slices: int, ndim: int, configuration: str = "this configuration") -> int:
    """Refuse a negative or fractional number of context slices, and any context for a 3D configuration.

    Parameters
    ----------
    context_slices : int
        Neighbouring slices on each side of the predicted slice (``k``); 0 is plain 2D.
    ndim : int
        Patch axes of the configuration (2 for ``2d``).
    configuration : str
        Name used in the error message.

    Returns
    -------
    int

    Raises
    ------
    PlansError
        For a value below 0, a non-integer or context slices on a 3D configuration.

    Examples
    --------
    >>> check_context_slices(2, ndim=2)
    2
    >>> check_context_slices(-1, ndim=2)
    Traceback (most recent call last):
    ...
    autounet.errors.PlansError: context_slices must be a whole number >= 0 (slices on each side), got -1
    >>> check_context_slices(1, ndim=3, configuration="3d_fullres")
    Traceback (most recent call last):
    ...
    autounet.errors.PlansError: context_slices=1 was given for 3d_fullres, a 3D configuration; neighbouring slices are only extra channels of the 2d configuration (set it to 0 there)
    """
    if isinstance(context_slices, bool) or int(context_slices) != context_slices or context_slices < 0:
        raise PlansError(f"context_slices must be a whole number >= 0 (slices on each side), got {context_slices}")
    if context_slices > 0 and ndim != 2:
        raise PlansError(
            f"context_slices={context_slices} was given for {configuration}, a {ndim}D configuration; neighbouring "
            "slices are only extra channels of the 2d configuration (set it to 0 there)"
        )
    return int(context_slices)


def context_slice_indices(index: int, num_slices: int, context_slices: int) -> np.ndarray:
    """Slices ``index - k .. index + k`` of a volume with ``num_slices`` slices, clamped to the volume.

    Examples
    --------
    >>> context_slice_indices(5, 10, 2).tolist()
    [3, 4, 5, 6, 7]
    >>> context_slice_indices(0, 10, 2).tolist()
    [0, 0, 0, 1, 2]
    >>> context_slice_indices(9, 10, 1).tolist()
    [8, 9, 9]
    """
    if not 0 <= index < num_slices:
        raise IndexError(f"slice {index} is outside a volume of {num_slices} slices")
    offsets = np.arange(-context_slices, context_slices + 1)
    return np.clip(index + offsets, 0, num_slices - 1)


def stack_context_slices(volume: ArrayT, index: int, context_slices: int) -> ArrayT:
    """Slice ``index`` of ``volume`` with its neighbours as channels.

    Parameters
    ----------
    volume : ndarray or Tensor of shape (C, z, *in_plane)
        A preprocessed case (a memory map is fine: only the needed slices are read).
    index : int
        The centre slice.
    context_slices : int
        ``k``; 0 returns ``volume[:, index]``.

    Returns
    -------
    ndarray or Tensor of shape (C * (2k + 1), *in_plane)
        Channel ``c * (2k + 1) + i`` is ``volume[c, clamp(index - k + i)]``.

    Examples
    --------
    >>> volume = np.arange(4)[None, :, None, None] * np.ones((1, 4, 2, 2))
    >>> stack_context_slices(volume, 0, 1)[:, 0, 0].tolist()
    [0.0, 0.0, 1.0]
    """
    if context_slices == 0:
        return volume[:, index]  # type: ignore[index]
    indices = context_slice_indices(index, volume.shape[1], context_slices)  # type: ignore[attr-defined]
    stacked = volume[:, indices]  # type: ignore[index]
    return stacked.reshape(stacked.shape[0] * len(indices), *stacked.shape[2:])  # type: ignore[no-any-return]


def expand_channel_indices(channels: Sequence[int], context_slices: int) -> tuple[int, ...]:
    """Stacked channels that come from the given image channels.

    Examples
    --------
    >>> expand_channel_indices((1,), 1)
    (3, 4, 5)
    >>> expand_channel_indices((0, 1), 0)
    (0, 1)
    """
    width = 2 * context_slices + 1
    return tuple(c * width + i for c in channels for i in range(width))
