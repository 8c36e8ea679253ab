"""Overlay figures: a validation case's image with its ground-truth and predicted contours, through the structure.

Cases are chosen by mean foreground Dice (best, median, worst); slices are the ones holding the most foreground.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autounet.report.collect import CaseScore
from autounet.report.figures import figure_to_png, new_figure

logger = logging.getLogger(__name__)

#: Contour colours: ground truth and prediction (blue and amber stay apart with colour blindness; each line also
#: has a dark outline and its own style, so it shows on grey and colour images alike).
REFERENCE_COLOR = "#00C8FF"
PREDICTION_COLOR = "#FFB000"
CONTOUR_OUTLINE = "black"
#: Intensity window of the grey image: these percentiles of the case's first channel (robust to outliers).
WINDOW_PERCENTILES = (0.5, 99.5)
#: Array axis names; a panel is titled by the axis held fixed ("z = 12"). Anatomical names (axial, ...) would
#: depend on the image direction, which the arrays do not follow.
AXIS_NAMES = ("z", "y", "x")


@dataclass(frozen=True)
class Overlay:
    """One rendered case: its role(s) in the selection, its score and the PNG."""

    roles: tuple[str, ...]
    score: CaseScore
    png: bytes
    caption: str


def select_cases(scores: Sequence[CaseScore]) -> list[tuple[tuple[str, ...], CaseScore]]:
    """The best, median and worst case by mean foreground Dice; a case filling several roles appears once.

    Cases whose Dice is undefined for every label (empty reference and prediction) are left out.

    Examples
    --------
    >>> from pathlib import Path
    >>> s = [CaseScore("3d", "0", c, {"1": d}, Path(".")) for c, d in [("a", 0.9), ("b", 0.5), ("c", 0.1)]]
    >>> [(roles, score.case_id) for roles, score in select_cases(s)]
    [(('best',), 'a'), (('median',), 'b'), (('worst',), 'c')]
    >>> [(roles, score.case_id) for roles, score in select_cases(s[:1])]
    [(('best', 'median', 'worst'), 'a')]
    """
    ranked = sorted((s for s in scores if not math.isnan(s.mean_dice)), key=lambda s: (-s.mean_dice, s.case_id))
    if not ranked:
        return []
    picks = [("best", ranked[0]), ("median", ranked[(len(ranked) - 1) // 2]), ("worst", ranked[-1])]
    merged: dict[str, tuple[list[str], CaseScore]] = {}
    for role, score in picks:
        merged.setdefault(score.case_id, ([], score))[0].append(role)
    return [(tuple(roles), score) for roles, score in merged.values()]


def foreground_slices(reference: np.ndarray, prediction: np.ndarray | None = None) -> list[tuple[int, int]]:
    """``(axis, index)`` of the slice with the most foreground in each plane of a ``(z, y, x)`` label map.

    Foreground is the reference's; where the reference is empty, the prediction's; where both are, the middle
    slice. An axis of length 1 (2D data) is the only plane returned.

    Examples
    --------
    >>> label = np.zeros((4, 5, 6), dtype=np.uint8)
    >>> label[1, 2:4, 1:3] = 1
    >>> label[2, 3, 1] = 2
    >>> foreground_slices(label)
    [(0, 1), (1, 3), (2, 1)]
    >>> foreground_slices(np.zeros((1, 5, 6)))
    [(0, 0)]
    """
    if reference.shape[0] == 1:
        return [(0, 0)]
    source = reference if np.any(reference > 0) else prediction
    slices = []
    for axis in range(3):
        if source is None or not np.any(source > 0):
            slices.append((axis, reference.shape[axis] // 2))
            continue
        others = tuple(a for a in range(3) if a != axis)
        counts = np.count_nonzero(source > 0, axis=others)
        slices.append((axis, int(np.argmax(counts))))
    return slices


def _plane(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    return np.take(volume, index, axis=axis)


def _plane_aspect(spacing: Sequence[float], axis: int) -> float:
    """Height/width of one pixel of the plane, so that millimetres look square."""
    rows, columns = [s for a, s in enumerate(spacing) if a != axis]
    return float(rows) / float(columns) if columns > 0 else 1.0


def _display_image(image: np.ndarray, rgb: bool) -> np.ndarray:
    """Image values scaled to [0, 1]: channel 0 windowed to percentiles, or three channels as colour."""
    if rgb:
        colour = np.moveaxis(image[:3].astype(np.float64), 0, -1)
        top = float(colour.max()) or 1.0
        return np.clip(colour / (255.0 if top > 1.0 else top), 0.0, 1.0)
    grey = image[0].astype(np.float64)
    finite = grey[np.isfinite(grey)]
    low, high = np.percentile(finite, WINDOW_PERCENTILES) if finite.size else (0.0, 1.0)
    if high <= low:
        high = low + 1.0
    return np.clip((grey - low) / (high - low), 0.0, 1.0)


def render_overlay(
    image: np.ndarray,
    spacing: Sequence[float],
    reference: np.ndarray,
    prediction: np.ndarray,
    title: str,
    rgb: bool = False,
) -> bytes:
    """PNG of the image with ground-truth and prediction contours, one panel per plane through the structure.

    Parameters
    ----------
    image : ndarray of shape (C, z, y, x)
        The case's input; channel 0 is shown in grey (all three channels as colour when ``rgb``).
    spacing : sequence of 3 float
        Voxel spacing in mm, array axis order (sets the pixel aspect of each plane).
    reference, prediction : ndarray of shape (z, y, x), integer labels
        Ground truth and prediction on the image's grid.
    title : str
        Figure title (plain text).
    rgb : bool
        Show the first three channels as a colour image (2D RGB data).

    Returns
    -------
    bytes
        The PNG file content.
    """
    from matplotlib import patheffects
    from matplotlib.lines import Line2D

    outline = [patheffects.Stroke(linewidth=3.0, foreground=CONTOUR_OUTLINE), patheffects.Normal()]
    shown = _display_image(image, rgb)  # (z, y, x) or (z, y, x, 3)
    slices = foreground_slices(reference, prediction)
    figure = new_figure(figsize=(3.6 * len(slices), 4.0) if len(slices) > 1 else (5.0, 5.4))
    axes = figure.subplots(1, len(slices), squeeze=False)[0]
    labels = sorted(int(v) for v in np.union1d(np.unique(reference), np.unique(prediction)) if v > 0)
    for ax, (axis, index) in zip(axes, slices):
        aspect = 1.0 if reference.shape[0] == 1 else _plane_aspect(spacing, axis)
        background = _plane(shown, axis, index)
        ax.imshow(background, cmap=None if rgb else "gray", vmin=0.0, vmax=1.0, aspect=aspect, interpolation="nearest")
        for volume, color, style in ((reference, REFERENCE_COLOR, "solid"), (prediction, PREDICTION_COLOR, "dashed")):
            plane = _plane(volume, axis, index)
            for value in labels:
                mask = plane == value
                if mask.any() and not mask.all():
                    lines = ax.contour(
                        mask.astype(np.float32), levels=[0.5], colors=[color], linewidths=1.5, linestyles=style
                    )
                    lines.set(path_effects=outline)
        ax.set_title("image" if reference.shape[0] == 1 else f"slice {AXIS_NAMES[axis]} = {index}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [
        Line2D([], [], color=REFERENCE_COLOR, linewidth=2, linestyle="solid", label="ground truth", path_effects=outline),
        Line2D([], [], color=PREDICTION_COLOR, linewidth=2, linestyle="dashed", label="prediction", path_effects=outline),
    ]
    figure.legend(handles=handles, loc="lower center", ncol=2, fontsize=9, frameon=False)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout(rect=(0, 0.07, 1, 0.95))
    return figure_to_png(figure)


def make_overlays(
    scores: Sequence[CaseScore], dataset_root: Path | None, label_names: dict[str, str]
) -> tuple[list[Overlay], str]:
    """Overlays of the best, median and worst case of one configuration.

    Returns
    -------
    list of Overlay, str
        The overlays, and a note on what could not be drawn (empty when everything was).
    """
    selection = select_cases(scores)
    if not selection:
        return [], "no validation case has a defined Dice yet"
    if dataset_root is None:
        return [], "the raw dataset folder is unknown (no validation summary or preprocessing manifest names it)"
    from autounet.dataset import load_dataset

    try:
        dataset = load_dataset(dataset_root)
    except Exception as err:
        return [], f"cannot open the raw dataset {dataset_root}: {err}"
    overlays, notes = [], []
    for roles, score in selection:
        try:
            overlays.append(_overlay_for_case(dataset, roles, score, label_names))
        except Exception as err:  # one unreadable case must not hide the others
            logger.warning("report: no overlay for %s: %s", score.case_id, err)
            notes.append(f"{score.case_id}: {err}")
    return overlays, "; ".join(notes)


def _overlay_for_case(dataset: Any, roles: tuple[str, ...], score: CaseScore, label_names: dict[str, str]) -> Overlay:
    from autounet.evaluation import find_label_files
    from autounet.io import read_image

    case = dataset.case(score.case_id)
    image = dataset.read_images(case)
    reference = dataset.read_label(case)
    predictions = find_label_files(score.prediction_dir)
    if score.case_id not in predictions:
        raise FileNotFoundError(f"no prediction file for {score.case_id} in {score.prediction_dir}")
    prediction = read_image(predictions[score.case_id])
    if prediction.spatial_shape != reference.spatial_shape:
        raise ValueError(
            f"prediction shape {prediction.spatial_shape} differs from the reference {reference.spatial_shape}"
        )
    rgb = bool(image.geometry.is_2d and image.data.shape[0] == 3)
    dice_text = ", ".join(f"{label_names.get(k, k)} {_fmt(v)}" for k, v in score.dice.items())
    title = f"{' / '.join(roles)}: {score.case_id} (fold {score.fold}), mean Dice {_fmt(score.mean_dice)}"
    png = render_overlay(
        np.asarray(image.data), image.geometry.spacing, np.asarray(reference.data[0]), np.asarray(prediction.data[0]),
        title, rgb=rgb,
    )
    channel = "colour image" if rgb else f"channel 0 ({dataset.description.channel_names[0]})"
    return Overlay(roles, score, png, f"{title}; Dice {dice_text}; {channel}")


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4f}"
