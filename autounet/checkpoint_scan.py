"""Inspect a checkpoint file before ``torch.load``: a crafted file cannot make loading allocate more than the model.

``torch.load(weights_only=True)`` never runs code, but it does allocate whatever the file declares: a 22 MB file can
hold a deflate-compressed 1 GiB tensor under an extra key. A checkpoint is a zip archive whose ``data.pkl`` describes
the objects and whose ``data/<n>`` entries hold the tensor bytes. :func:`scan_checkpoint` reads only the zip
directory and the (small) ``data.pkl`` and refuses, before anything is allocated:

* compressed entries (``torch.save`` stores every entry uncompressed, so the bytes loaded are bytes on disk);
* entries whose recorded sizes do not fit in the file;
* top-level keys an autounet checkpoint does not have (found by walking the pickle's opcodes with ``pickletools``,
  which executes nothing);
* more tensor bytes than the planned network can need: :data:`SIZE_FACTOR` times its float32 weights (weights plus
  the optimiser's momentum, with room for another network family) plus :data:`SLACK_BYTES`.
"""

from __future__ import annotations

import pickletools
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from autounet.errors import AutounetError
from autounet.typing import PathType

#: Top-level keys of the checkpoints autounet writes (the trainer's state and the run's metadata).
ALLOWED_KEYS = frozenset({
    "network_weights", "optimizer_state", "grad_scaler_state", "epoch", "iteration", "trainer_state", "log", "rng",
    "configuration", "fold", "plans_version", "autounet_plans_version", "network", "network_description",
    "configuration_plan", "in_channels", "context_slices", "num_classes", "label_values", "loss", "training_config",
    "resampling_backend", "inference_mirror_axes", "mirror_axes",
})
#: Largest ``data.pkl`` (the object description without tensor bytes): a 1000-epoch log is well below 1 MB.
MAX_PICKLE_BYTES = 64 * 1024**2
#: Tensor bytes allowed per byte of the network's float32 weights: the weights and SGD's momentum buffer are 2; the
#: rest is room for a topology the trainer re-derived for another patch size.
SIZE_FACTOR = 4.0
#: Tensor bytes allowed besides (RNG state, grad scaler, small buffers).
SLACK_BYTES = 64 * 1024**2
_FLOAT32_BYTES = 4


class CheckpointScanError(AutounetError, ValueError):
    """A checkpoint file is refused before loading (crafted, repacked or for a much larger model)."""


@dataclass
class CheckpointLayout:
    """What the zip directory and ``data.pkl`` of a checkpoint say, without loading it.

    Attributes
    ----------
    keys : list of str
        Top-level keys of the checkpoint dict, in file order.
    key_bytes : dict of str to int
        Tensor bytes reachable from each top-level key.
    tensor_bytes : int
        All tensor bytes in the file.
    texts : dict of str to str
        Top-level entries whose value is a text (``"network": "unet"``).
    """

    keys: list[str] = field(default_factory=list)
    key_bytes: dict[str, int] = field(default_factory=dict)
    tensor_bytes: int = 0
    texts: dict[str, str] = field(default_factory=dict)


def _gib(num_bytes: float) -> str:
    return f"{num_bytes / 1024**3:.2f} GiB" if num_bytes >= 1024**3 else f"{num_bytes / 1024**2:.1f} MiB"


def scan_checkpoint(
    path: PathType,
    expected_parameters: int | Callable[[CheckpointLayout], int | None] | None = None,
    *,
    allowed_keys: frozenset[str] = ALLOWED_KEYS,
    size_factor: float = SIZE_FACTOR,
    slack_bytes: int = SLACK_BYTES,
    max_pickle_bytes: int = MAX_PICKLE_BYTES,
) -> CheckpointLayout:
    """Refuse a checkpoint whose loading would allocate more than its model needs, or that holds unknown keys.

    Parameters
    ----------
    path : str or Path
        The ``.pt`` file.
    expected_parameters : int or callable, optional
        Parameter and buffer count of the network the checkpoint is for, or a function of the layout giving it (e.g.
        from the network family the file names); without it only the other checks run.
    allowed_keys : frozenset of str
        Top-level keys accepted.
    size_factor, slack_bytes : float, int
        Tensor bytes allowed: ``size_factor * 4 * expected_parameters + slack_bytes``.
    max_pickle_bytes : int
        Largest accepted ``data.pkl``.

    Returns
    -------
    CheckpointLayout

    Raises
    ------
    CheckpointScanError
        Naming the file, what is wrong and what to do.
    """
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise CheckpointScanError(f"{path}: damaged or not a torch checkpoint ({err}); delete it and train again, or "
                                  "ask its author for the original") from None
    with archive:
        entries = archive.infolist()
        _check_entries(path, entries)
        pickles = [e for e in entries if e.filename.endswith("/data.pkl") and e.filename.count("/") == 1]
        if len(pickles) != 1:
            raise CheckpointScanError(f"{path}: damaged or not a torch checkpoint (no single data.pkl in the archive)")
        prefix = pickles[0].filename[: -len("data.pkl")]
        if pickles[0].file_size > max_pickle_bytes:
            raise _refused(path, f"its object record data.pkl is {_gib(pickles[0].file_size)} (at most "
                                 f"{_gib(max_pickle_bytes)} for a checkpoint)")
        record = archive.read(pickles[0])
        storage_bytes = {e.filename[len(prefix) + len("data/"):]: e.file_size for e in entries
                         if e.filename.startswith(prefix + "data/")}
    layout = _layout(path, record, storage_bytes)
    unknown = [key for key in layout.keys if key not in allowed_keys]
    if unknown:
        listed = ", ".join(f"{key!r} ({_gib(layout.key_bytes.get(key, 0))} of tensors)" for key in unknown[:5])
        raise _refused(path, f"it is not an autounet checkpoint: it holds key(s) autounet never writes: {listed}")
    if callable(expected_parameters):
        expected_parameters = expected_parameters(layout)
    if expected_parameters is not None:
        limit = size_factor * _FLOAT32_BYTES * expected_parameters + slack_bytes
        if layout.tensor_bytes > limit:
            largest = max(layout.key_bytes, key=layout.key_bytes.get, default="?")
            raise _refused(path, f"its tensors take {_gib(layout.tensor_bytes)} ({largest!r}: "
                                 f"{_gib(layout.key_bytes.get(largest, 0))}) but the planned network has "
                                 f"{expected_parameters:,} parameters and buffers, so at most {_gib(limit)} are plausible")
    return layout


def _refused(path: Path, reason: str) -> CheckpointScanError:
    return CheckpointScanError(
        f"{path}: refused to load: {reason}. The file was not written by autounet for this model (or was altered): "
        "only use checkpoints written by autounet from a source you trust"
    )


def _check_entries(path: Path, entries: list[zipfile.ZipInfo]) -> None:
    """Stored entries only, and their recorded sizes fit in the file."""
    compressed = [e for e in entries if e.compress_type != zipfile.ZIP_STORED]
    if compressed:
        entry = max(compressed, key=lambda e: e.file_size)
        raise _refused(path, f"{len(compressed)} archive entr{'y is' if len(compressed) == 1 else 'ies are'} "
                             f"compressed ({entry.filename}: {_gib(entry.compress_size)} unpacking to "
                             f"{_gib(entry.file_size)}), which torch.save never does")
    stored = sum(e.file_size for e in entries)
    on_disk = path.stat().st_size
    if stored > on_disk or any(e.compress_size != e.file_size for e in entries):
        raise CheckpointScanError(f"{path}: damaged or not a torch checkpoint (its entries claim {stored} bytes but the "
                                  f"file has {on_disk}); delete it and train again")


class _Item:
    """One object on the simulated pickle stack: a string's value or a tuple's items, and the storages it holds."""

    __slots__ = ("text", "items", "storages", "is_root")

    def __init__(self, text: str | None = None, items: tuple = (), storages: frozenset = frozenset(),
                 is_root: bool = False) -> None:
        self.text, self.items, self.storages, self.is_root = text, items, storages, is_root


_MARK = object()
#: Opcodes that fill the object below their arguments and leave it on the stack.
_MUTATORS = frozenset({"SETITEM", "SETITEMS", "APPEND", "APPENDS", "BUILD", "ADDITEMS"})


def _layout(path: Path, record: bytes, storage_bytes: dict[str, int]) -> CheckpointLayout:
    """Walk the pickle's opcodes (nothing is executed) to find the top-level keys and the storages under each."""
    layout = CheckpointLayout(tensor_bytes=sum(storage_bytes.values()))
    stack: list = []
    memo: dict = {}
    malformed = CheckpointScanError(f"{path}: damaged or not a torch checkpoint (its object record is malformed)")
    try:
        for opcode, arg, _ in pickletools.genops(record):
            name = opcode.name
            if name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = stack[-1]
                continue
            if name == "MEMOIZE":
                memo[len(memo)] = stack[-1]
                continue
            if name in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo[arg])
                continue
            if name in ("SETITEM", "SETITEMS"):
                _record_items(stack, name, layout, storage_bytes)
            consumed = _pop(stack, opcode)
            storages = frozenset().union(*(item.storages for item in consumed if isinstance(item, _Item)))
            if name == "MARK":
                stack.append(_MARK)
            elif name == "STOP":
                break
            elif name in ("BINPERSID", "PERSID"):
                pid = consumed[0].items if name == "BINPERSID" else ()
                key = pid[2].text if len(pid) > 2 and isinstance(pid[2], _Item) else None
                stack.append(_Item(storages=storages | ({key} if key is not None else set())))
            elif name in _MUTATORS:  # the object below the mark, filled: keep it (the root dict stays the root)
                target = consumed[0]
                if isinstance(target, _Item):
                    target.storages = target.storages | storages
                stack.append(target)
            elif name == "EMPTY_DICT" and not stack:
                stack.append(_Item(is_root=True))
            elif name.startswith("TUPLE") or name == "EMPTY_TUPLE":
                stack.append(_Item(items=tuple(consumed), storages=storages))
            elif isinstance(arg, str) and opcode.stack_after and name not in ("GLOBAL", "INST"):
                stack.append(_Item(text=arg))
            else:
                stack.extend(_Item(storages=storages) for _ in opcode.stack_after)
    except (ValueError, KeyError, IndexError) as err:
        raise malformed from err
    if not layout.keys and not (stack and isinstance(stack[0], _Item) and stack[0].is_root):
        raise CheckpointScanError(f"{path}: not an autounet checkpoint (the file does not hold a dict)")
    return layout


def _pop(stack: list, opcode: pickletools.OpcodeInfo) -> list:
    """Remove what ``opcode`` consumes; return it (the slice above a mark, then the items below it)."""
    before = opcode.stack_before
    consumed: list = []
    if pickletools.markobject in before:
        mark = len(stack) - 1 - stack[::-1].index(_MARK)
        consumed = stack[mark + 1:]
        del stack[mark:]
        below = before.index(pickletools.markobject)
    else:
        below = len(before)
    if below > len(stack):
        raise IndexError("stack underflow")
    if below:
        consumed = stack[-below:] + consumed
        del stack[-below:]
    return consumed


def _record_items(stack: list, name: str, layout: CheckpointLayout, storage_bytes: dict[str, int]) -> None:
    """Before SETITEM(S) runs: if it fills the top-level dict, note each key and the tensor bytes of its value."""
    if name == "SETITEM":
        target, pairs = stack[-3], stack[-2:]
    else:
        mark = len(stack) - 1 - stack[::-1].index(_MARK)
        target, pairs = stack[mark - 1], stack[mark + 1:]
    if not (isinstance(target, _Item) and target.is_root):
        return
    for key, value in zip(pairs[0::2], pairs[1::2]):
        text = key.text if isinstance(key, _Item) and key.text is not None else repr(key)
        layout.keys.append(text)
        layout.key_bytes[text] = sum(storage_bytes.get(s, 0) for s in getattr(value, "storages", ()))
        if isinstance(value, _Item) and value.text is not None:
            layout.texts[text] = value.text
