"""Write checkpoints atomically and read them back safely (``weights_only=True``) with checks that explain mismatches.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts (docs/architecture.md, "Checkpoints"):
``network_weights``, ``optimizer_state``, ``grad_scaler_state``, ``epoch``, ``iteration``, ``configuration``,
``fold``, ``plans_version``, ``network``, ``training_config``, ``log``, ``rng`` and the trainer's bookkeeping.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from autounet.checkpoint_scan import CheckpointLayout, CheckpointScanError, scan_checkpoint
from autounet.errors import AutounetError
from autounet.jsonio import atomic_path
from autounet.typing import PathType

#: Keys every autounet checkpoint has.
REQUIRED_KEYS = ("network_weights", "epoch", "iteration", "configuration", "plans_version", "network")


class CheckpointError(AutounetError, ValueError):
    """A checkpoint cannot be used: unsafe content, damaged file or a different model."""


def save_checkpoint(path: PathType, checkpoint: Mapping[str, Any]) -> Path:
    """Write ``checkpoint`` to ``path`` atomically and durably (a killed run or a power loss leaves the previous file
    intact, never an empty one)."""
    path = Path(path)
    with atomic_path(path, expected_bytes=_tensor_bytes(checkpoint), durable=True) as tmp:
        torch.save(dict(checkpoint), tmp)
    return path


def _tensor_bytes(value: Any) -> int:
    """Bytes of all tensors in a nested checkpoint: about the size of the file."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, Mapping):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(v) for v in value)
    return 0


def load_checkpoint(
    path: PathType,
    map_location: str | torch.device = "cpu",
    expected_parameters: int | Callable[[CheckpointLayout], int | None] | None = None,
) -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)``: no code in the file is ever run.

    The file is inspected first (:func:`autounet.checkpoint_scan.scan_checkpoint`): compressed entries, unknown keys
    and more tensor bytes than the network can need are refused before anything is allocated.

    Parameters
    ----------
    path : str or Path
        The ``.pt`` file.
    map_location : str or torch.device
        Where the tensors go.
    expected_parameters : int or callable, optional
        Parameter count of the network the checkpoint is for, or a function of the file's layout giving it (bounds
        the tensor bytes accepted).

    Raises
    ------
    FileNotFoundError
        When there is no file.
    CheckpointError
        When the file holds anything but tensors and plain data (possibly malicious), is damaged, or lacks
        the keys of an autounet checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint; train the fold first (autounet train)")
    try:
        scan_checkpoint(path, expected_parameters)
    except CheckpointScanError as err:
        raise CheckpointError(str(err)) from None
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path}: refused to load: the file holds Python objects other than tensors and plain data, which could "
            f"run code ({blocked_global(err)}). Only use checkpoints written by autounet from a source you trust."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: damaged or not a torch checkpoint ({err}); delete it and train again") from None
    if not isinstance(checkpoint, dict) or any(key not in checkpoint for key in REQUIRED_KEYS):
        found = sorted(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(
            f"{path}: not an autounet checkpoint (expected keys {', '.join(REQUIRED_KEYS)}; found {found})"
        )
    return checkpoint


def blocked_global(err: BaseException) -> str:
    """What torch's ``weights_only`` unpickler refused, from its message, without its advice to load unsafely.

    Parameters
    ----------
    err : BaseException
        The ``pickle.UnpicklingError`` of ``torch.load(weights_only=True)``.

    Examples
    --------
    >>> blocked_global(Exception("Weights only load failed. ... Re-running `torch.load` with `weights_only` set to "
    ...     "`False` will likely succeed ...\\n\\nTrying to load unsupported GLOBAL posix.system whose module posix is "
    ...     "blocked."))
    'Unsupported global: GLOBAL posix.system'
    >>> blocked_global(Exception("WeightsUnpickler error: Unsupported global: GLOBAL torch.nn.Conv3d was not an "
    ...                          "allowed global by default."))
    'Unsupported global: GLOBAL torch.nn.Conv3d'
    >>> blocked_global(Exception("Weights only load failed. Re-running with weights_only=False will likely succeed"))
    'a blocked Python object'
    """
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))  # torch colours part of its message
    found = re.search(r"(?:Unsupported global: |unsupported )GLOBAL ([\w.]+)", text)
    return f"Unsupported global: GLOBAL {found.group(1)}" if found else "a blocked Python object"


def check_compatible(
    checkpoint: Mapping[str, Any],
    path: PathType,
    *,
    plans_version: int,
    configuration: str,
    network: str,
    model_state: Mapping[str, torch.Tensor] | None = None,
) -> None:
    """Refuse a checkpoint made for other plans, another configuration, network family or shapes.

    Parameters
    ----------
    checkpoint : mapping
        From :func:`load_checkpoint`.
    path : path
        Used in messages.
    plans_version, configuration, network : int, str, str
        What the current run uses.
    model_state : mapping of str to Tensor, optional
        ``model.state_dict()`` of the network the weights go into; names and shapes must match.

    Raises
    ------
    CheckpointError
        Naming what differs and what to do.
    """
    expected = {"plans_version": plans_version, "configuration": configuration, "network": network}
    for key, value in expected.items():
        if checkpoint[key] != value:
            raise CheckpointError(
                f"{path} was written for {key} {checkpoint[key]!r} but this run uses {value!r}; "
                "train from scratch (without --resume), or use the plans/configuration the checkpoint was made with"
            )
    if model_state is None:
        return
    weights = checkpoint["network_weights"]
    if not isinstance(weights, Mapping) or not all(isinstance(w, torch.Tensor) for w in weights.values()):
        raise CheckpointError(f"{path}: 'network_weights' is not a dict of tensors; the file is not an autounet "
                              "checkpoint (or was edited): train from scratch without --resume")
    missing = [name for name in model_state if name not in weights]
    unexpected = [name for name in weights if name not in model_state]
    wrong = [
        f"{name} {tuple(weights[name].shape)} vs {tuple(tensor.shape)}"
        for name, tensor in model_state.items()
        if name in weights and tuple(weights[name].shape) != tuple(tensor.shape)
    ]
    if missing or unexpected or wrong:
        details = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing[:3])}" if missing else "",
                f"unexpected {', '.join(unexpected[:3])}" if unexpected else "",
                f"shape checkpoint vs network: {', '.join(wrong[:3])}" if wrong else "",
            )
            if part
        )
        raise CheckpointError(
            f"{path} does not fit the network built from the plans ({details}); the plans changed since it was "
            "written: train from scratch or restore the plans it was made with"
        )
