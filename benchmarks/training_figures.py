"""The figures of a trained fold for a benchmark record, in the keys the tables read (benchmarks/tables/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def fold_figures(result: Any) -> dict[str, Any]:
    """Dice on the held-back cases, iterations, wall time and pseudo Dice per epoch of a ``train_fold`` result.

    Parameters
    ----------
    result : autounet.trainers.FoldResult
        What ``train_fold`` returned; its ``training_log.json`` gives the per-epoch figures and what was trained.

    Returns
    -------
    dict
        ``dice`` (label name -> Dice of the final validation), ``mean_fg_dice``, ``iterations``, ``epochs``,
        ``training_s`` and ``fold_min`` (wall time of the fold, final validation included), ``pseudo_dice_per_epoch``
        (mean over labels), ``pseudo_dice_first_epoch`` (per label) and, from the log's header, ``features_per_stage``,
        ``batch_size``, ``patch_size``, ``precision`` and ``augmentation_scale``.
    """
    validation = result.validation or {}
    log_path = Path(result.fold_dir) / "training_log.json"
    log = json.loads(log_path.read_text(encoding="utf-8")) if log_path.is_file() else {}
    epochs = [e for e in log.get("epochs", []) if isinstance(e, dict)]
    figures: dict[str, Any] = {
        "dice": validation.get("mean_dice"),
        "mean_fg_dice": validation.get("foreground_mean_dice"),
        "iterations": result.iterations,
        "epochs": result.epochs,
        "training_s": round(result.elapsed_seconds, 1),
        "fold_min": result.elapsed_seconds / 60,
        "pseudo_dice_per_epoch": [round(e["mean_dice"], 4) for e in epochs if e.get("mean_dice") is not None],
        "pseudo_dice_first_epoch": epochs[0].get("dice_per_label") if epochs else None,
    }
    for key in ("features_per_stage", "batch_size", "patch_size", "precision", "augmentation_scale"):
        if key in log:
            figures[key] = log[key]
    return figures
