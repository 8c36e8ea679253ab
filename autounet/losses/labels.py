"""Turn integer label maps into what the losses need: class indices, a valid-voxel mask and one-hot maps."""

from __future__ import annotations

import torch


def split_target(
    target: torch.Tensor, logits: torch.Tensor, ignore_label: int | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Return ``(labels, valid)``: int64 labels ``(N, *spatial)`` with ignored voxels set to 0, and their mask.

    Parameters
    ----------
    target : Tensor of shape (N, 1, *spatial) or (N, *spatial)
        Integer (or integral float) class labels.
    logits : Tensor of shape (N, C, *spatial)
        Only its shape is used, to check the target.
    ignore_label : int, optional
        Label of voxels that contribute to no loss.

    Returns
    -------
    labels : Tensor of shape (N, *spatial), int64
    valid : Tensor of shape (N, *spatial), bool, or None when there is no ignore label

    Raises
    ------
    ValueError
        When the target's shape does not match the logits.

    Examples
    --------
    >>> labels, valid = split_target(torch.tensor([[[0, 1, 255]]]), torch.zeros(1, 2, 3), ignore_label=255)
    >>> labels.tolist(), valid.tolist()
    ([[0, 1, 0]], [[True, True, False]])
    """
    if target.ndim == logits.ndim:
        if target.shape[1] != 1:
            raise ValueError(
                f"target has {target.shape[1]} channels; pass integer labels of shape (N, 1, *spatial) or (N, *spatial)"
            )
        target = target[:, 0]
    if target.shape[0] != logits.shape[0] or target.shape[1:] != logits.shape[2:]:
        raise ValueError(
            f"target shape {tuple(target.shape)} does not match logits {tuple(logits.shape)}; "
            "downsample the target to each output's resolution (see downsample_target)"
        )
    labels = target.long()
    if ignore_label is None:
        return labels, None
    valid = labels != ignore_label
    return labels * valid, valid


def one_hot(labels: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """One-hot encode ``(N, *spatial)`` labels to ``(N, num_classes, *spatial)`` with a single scatter.

    Examples
    --------
    >>> one_hot(torch.tensor([[0, 2]]), 3).tolist()
    [[[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]]
    """
    shape = (labels.shape[0], num_classes, *labels.shape[1:])
    encoded = torch.zeros(shape, dtype=dtype, device=labels.device)
    return encoded.scatter_(1, labels.unsqueeze(1), 1)
