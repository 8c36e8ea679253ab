"""Draw ``progress.png`` from the per-epoch training log (matplotlib, Agg backend, written atomically)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from autounet.jsonio import atomic_path
from autounet.typing import PathType


def plot_progress(log: Sequence[Mapping[str, Any]], path: PathType) -> Path:
    """Plot losses and pseudo Dice (top), learning rate (middle) and epoch time (bottom) against the epoch.

    Parameters
    ----------
    log : sequence of mapping
        Epoch records with ``epoch``, ``train_loss``, ``val_loss``, ``dice_per_label``, ``ema_dice``, ``lr`` and
        ``epoch_seconds`` (missing values are skipped).
    path : path
        Output PNG.

    Returns
    -------
    Path
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    epochs = [r["epoch"] for r in log]
    figure = Figure(figsize=(10, 11), dpi=80)
    axes = figure.subplots(3, 1, sharex=True)
    loss_axis, lr_axis, time_axis = axes
    loss_axis.plot(epochs, [r.get("train_loss") for r in log], color="tab:blue", label="train loss")
    val = [(r["epoch"], r["val_loss"]) for r in log if r.get("val_loss") is not None]
    if val:
        loss_axis.plot(*zip(*val), color="tab:red", label="val loss")
    loss_axis.set_ylabel("loss")
    dice_axis = loss_axis.twinx()
    labels = sorted({label for r in log for label in (r.get("dice_per_label") or {})})
    for label in labels:
        points = [(r["epoch"], r["dice_per_label"][label]) for r in log if label in (r.get("dice_per_label") or {})]
        dice_axis.plot(*zip(*points), linestyle=":", label=f"pseudo Dice {label}")
    ema = [(r["epoch"], r["ema_dice"]) for r in log if r.get("ema_dice") is not None]
    if ema:
        dice_axis.plot(*zip(*ema), color="tab:green", label="pseudo Dice (EMA)")
    dice_axis.set_ylabel("pseudo Dice")
    dice_axis.set_ylim(0, 1)
    handles = loss_axis.get_legend_handles_labels()[0] + dice_axis.get_legend_handles_labels()[0]
    names = loss_axis.get_legend_handles_labels()[1] + dice_axis.get_legend_handles_labels()[1]
    loss_axis.legend(handles, names, loc="center right", fontsize=8)
    lr_axis.plot(epochs, [r.get("lr") for r in log], color="tab:purple")
    lr_axis.set_ylabel("learning rate (epoch end)")
    time_axis.plot(epochs, [r.get("epoch_seconds") for r in log], color="tab:gray")
    time_axis.set_ylabel("epoch time (s)")
    time_axis.set_xlabel("epoch")
    figure.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    return path
