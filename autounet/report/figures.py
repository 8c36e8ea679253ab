"""Report figures as PNG bytes (matplotlib Agg, no global pyplot state): training curves and Dice box plots."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: Resolution of every report figure; 80 dpi keeps a page with dozens of figures to a few megabytes.
FIGURE_DPI = 80


def new_figure(figsize: tuple[float, float]) -> Any:
    """A matplotlib ``Figure`` drawn by the Agg backend, independent of ``pyplot`` (safe in threads and servers)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, dpi=FIGURE_DPI)
    FigureCanvasAgg(figure)
    return figure


def figure_to_png(figure: Any) -> bytes:
    """The PNG file content of a figure."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=FIGURE_DPI)
    return buffer.getvalue()


def _points(log: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    pairs = [(r["epoch"], r[key]) for r in log if _finite(r.get(key)) and "epoch" in r]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def plot_training_curves(log: Sequence[Mapping[str, Any]], title: str) -> bytes:
    """Losses, pseudo Dice per label (and its moving average) and learning rate against the epoch.

    Parameters
    ----------
    log : sequence of mapping
        ``training_log.json``'s ``epochs``: records with ``epoch``, ``train_loss``, ``val_loss``,
        ``dice_per_label`` (label name -> Dice), ``ema_dice`` and ``lr``; missing values are skipped.
    title : str
        Figure title.

    Returns
    -------
    bytes
        PNG.
    """
    figure = new_figure(figsize=(13.0, 3.4))
    loss_axis, dice_axis, lr_axis = figure.subplots(1, 3)
    marker = "o" if len(log) < 20 else None  # single epochs stay visible as points
    for key, color, name in (("train_loss", "tab:blue", "train loss"), ("val_loss", "tab:red", "validation loss")):
        epochs, values = _points(log, key)
        if values:
            loss_axis.plot(epochs, values, color=color, marker=marker, label=name)
    loss_axis.set_title("loss", fontsize=10)
    labels = sorted({name for r in log for name in (r.get("dice_per_label") or {})})
    for label in labels:
        pairs = [(r["epoch"], r["dice_per_label"][label]) for r in log
                 if _finite((r.get("dice_per_label") or {}).get(label))]
        if pairs:
            dice_axis.plot(*zip(*pairs), marker=marker, linestyle=":", label=str(label))
    epochs, ema = _points(log, "ema_dice")
    if ema:
        dice_axis.plot(epochs, ema, color="black", marker=marker, label="moving average")
    dice_axis.set_ylim(0, 1)
    dice_axis.set_title("pseudo Dice (validation patches)", fontsize=10)
    epochs, lr = _points(log, "lr")
    if lr:
        lr_axis.plot(epochs, lr, color="tab:purple", marker=marker)
    lr_axis.set_title("learning rate (epoch end)", fontsize=10)
    for axis in (loss_axis, dice_axis, lr_axis):
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8)
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    return figure_to_png(figure)


def plot_dice_boxes(dice: Mapping[str, Mapping[str, Sequence[float]]], title: str = "") -> bytes:
    """Box plots of per-case Dice: one panel per configuration, one box per label, each case as a dot.

    Parameters
    ----------
    dice : mapping
        ``{configuration: {label name: [Dice per case]}}``; NaN values (undefined Dice) are left out.
    title : str
        Figure title.

    Returns
    -------
    bytes
        PNG.
    """
    configurations = list(dice)
    width = sum(1.5 + 1.1 * max(len(dice[c]), 1) for c in configurations)
    figure = new_figure(figsize=(max(width, 4.0), 3.8))
    axes = figure.subplots(1, len(configurations), squeeze=False, sharey=True)[0]
    rng = np.random.default_rng(0)  # fixed jitter: the same data draws the same picture
    for axis, configuration in zip(axes, configurations):
        names = list(dice[configuration])
        values = [np.array([v for v in dice[configuration][n] if _finite(v)], dtype=float) for n in names]
        drawn = [v if v.size else np.array([np.nan]) for v in values]
        axis.boxplot(drawn, showfliers=False, widths=0.6)
        for position, points in enumerate(values, start=1):
            jitter = rng.uniform(-0.15, 0.15, size=points.size)
            axis.scatter(position + jitter, points, s=9, alpha=0.6, color="tab:blue", zorder=3)
        axis.set_xticks(range(1, len(names) + 1))
        axis.set_xticklabels(names, rotation=20, fontsize=8)
        axis.set_title(configuration, fontsize=10)
        axis.set_ylim(-0.02, 1.02)
        axis.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("Dice per case")
    if title:
        figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    return figure_to_png(figure)
