"""Post-processing: decide from cross-validation predictions whether keeping only the largest connected component
helps, per label and for all foreground together, save the decision as JSON and apply it to new predictions."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from autounet.errors import AutounetError
from autounet.evaluation import dice, find_label_files
from autounet.io import read_image
from autounet.jsonio import read_json, write_json
from autounet.layout import POSTPROCESSING_FILE
from autounet.typing import PathType

logger = logging.getLogger(__name__)

#: Version of the postprocessing.json layout.
POSTPROCESSING_VERSION = 1


class PostprocessingError(AutounetError, ValueError):
    """A post-processing file cannot be used."""


@dataclass(frozen=True)
class PostprocessingDecision:
    """Which largest-component filters to apply, with the cross-validation Dice that justified them.

    Parameters
    ----------
    keep_largest_foreground : bool
        Keep only the largest connected component of all foreground labels together (applied first).
    keep_largest_labels : tuple of int
        Labels for which only the largest connected component of that label is kept (applied after the
        foreground filter, in this order).
    dice_before, dice_after : dict of str to float
        Mean Dice per label (``"1"``, ``"2"``, ...) and ``"foreground_mean"`` over the cross-validation cases
        without and with the chosen post-processing.
    configurations : tuple of str
        The configuration(s) whose predictions the decision was made on (an ensemble lists several).
    source : str
        Folder of the cross-validation predictions.
    num_cases : int
        Cases the decision is based on.

    Notes
    -----
    Components use full connectivity (26-neighbourhood in 3D, 8 in 2D), as nnU-Net's
    ``remove_all_but_largest_component``; components tied for the largest size are all kept.
    """

    keep_largest_foreground: bool = False
    keep_largest_labels: tuple[int, ...] = ()
    dice_before: dict[str, float] = field(default_factory=dict)
    dice_after: dict[str, float] = field(default_factory=dict)
    configurations: tuple[str, ...] = ()
    source: str = ""
    num_cases: int = 0

    @property
    def changes_anything(self) -> bool:
        return self.keep_largest_foreground or bool(self.keep_largest_labels)

    def describe(self) -> str:
        steps = []
        if self.keep_largest_foreground:
            steps.append("largest foreground component")
        if self.keep_largest_labels:
            steps.append("largest component of label(s) " + ", ".join(str(v) for v in self.keep_largest_labels))
        if not steps:
            return "no post-processing (keeping the largest component did not improve the cross-validation Dice)"
        before, after = self.dice_before.get("foreground_mean"), self.dice_after.get("foreground_mean")
        change = f" (mean foreground Dice {before:.4f} -> {after:.4f})" if before is not None and after is not None else ""
        return "keep only the " + "; then the ".join(steps) + change

    def to_dict(self) -> dict[str, Any]:
        return {
            "postprocessing_version": POSTPROCESSING_VERSION,
            "keep_largest_foreground": self.keep_largest_foreground,
            "keep_largest_labels": list(self.keep_largest_labels),
            "connectivity": "full",
            "configurations": list(self.configurations),
            "source": self.source,
            "num_cases": self.num_cases,
            "dice_before": {k: _none_if_nan(v) for k, v in self.dice_before.items()},
            "dice_after": {k: _none_if_nan(v) for k, v in self.dice_after.items()},
            "description": self.describe(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = POSTPROCESSING_FILE) -> "PostprocessingDecision":
        version = data.get("postprocessing_version")
        if not isinstance(version, int) or version > POSTPROCESSING_VERSION:
            raise PostprocessingError(
                f"{source}: postprocessing_version {version!r} is not one this autounet reads (up to "
                f"{POSTPROCESSING_VERSION}); upgrade autounet or re-run \"autounet find-best\""
            )
        try:
            labels = tuple(int(v) for v in data["keep_largest_labels"])
            keep_foreground = data["keep_largest_foreground"]
        except (KeyError, TypeError, ValueError) as err:
            raise PostprocessingError(
                f"{source}: expected 'keep_largest_foreground' (true/false) and 'keep_largest_labels' (list of int) "
                f"({err}); fix the file or re-run \"autounet find-best\""
            ) from None
        if not isinstance(keep_foreground, bool):
            raise PostprocessingError(f"{source}: 'keep_largest_foreground' must be true or false, got {keep_foreground!r}")
        return cls(
            keep_largest_foreground=keep_foreground,
            keep_largest_labels=labels,
            dice_before={k: _nan_if_none(v) for k, v in dict(data.get("dice_before", {})).items()},
            dice_after={k: _nan_if_none(v) for k, v in dict(data.get("dice_after", {})).items()},
            configurations=tuple(str(c) for c in data.get("configurations", ())),
            source=str(data.get("source", "")),
            num_cases=int(data.get("num_cases", 0)),
        )

    def save(self, path: PathType) -> Path:
        """Write the decision as JSON (atomically); ``path`` may be a folder."""
        path = Path(path)
        if path.suffix.lower() != ".json":
            path = path / POSTPROCESSING_FILE
        write_json(path, self.to_dict())
        return path


def load_postprocessing(path: PathType) -> PostprocessingDecision:
    """Read a ``postprocessing.json`` (or the one in a folder).

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    PostprocessingError
        If the file is not a post-processing decision this version understands.
    """
    path = Path(path)
    if path.is_dir():
        path = path / POSTPROCESSING_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no post-processing decision; run \"autounet find-best\" first")
    data = read_json(path)
    if not isinstance(data, dict):
        raise PostprocessingError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return PostprocessingDecision.from_dict(data, source=str(path))


def keep_largest_component(segmentation: np.ndarray, labels: int | Sequence[int]) -> np.ndarray:
    """Keep only the largest connected component of the union of ``labels``; their other voxels become background.

    Parameters
    ----------
    segmentation : ndarray of int, shape (z, y, x) (2D: (1, y, x))
        A label map; it is not modified.
    labels : int or sequence of int
        One label, or several labels treated as one mask (all foreground).

    Returns
    -------
    ndarray
        A copy of ``segmentation`` (same dtype) with the voxels outside the largest component set to 0.

    Examples
    --------
    >>> seg = np.array([[[1, 1, 0, 2, 0, 1]]])
    >>> keep_largest_component(seg, 1).tolist()
    [[[1, 1, 0, 2, 0, 0]]]
    >>> keep_largest_component(seg, [1, 2]).tolist()
    [[[1, 1, 0, 0, 0, 0]]]
    """
    values = [int(labels)] if isinstance(labels, (int, np.integer)) else [int(v) for v in labels]
    mask = np.isin(segmentation, values)
    result = segmentation.copy()
    if not mask.any():
        return result
    structure = ndimage.generate_binary_structure(mask.ndim, mask.ndim)
    components, count = ndimage.label(mask, structure=structure)
    if count <= 1:
        return result
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    keep = np.flatnonzero(sizes == sizes.max())
    result[mask & ~np.isin(components, keep)] = 0
    return result


def apply_postprocessing(segmentation: np.ndarray, decision: PostprocessingDecision | None, labels: Sequence[int] | None = None) -> np.ndarray:
    """Apply a post-processing decision to a label map (returns a new array; ``None`` returns the input).

    ``labels`` are the foreground labels used by the foreground filter; default: every non-zero value present.
    """
    if decision is None or not decision.changes_anything:
        return segmentation
    if decision.keep_largest_foreground:
        foreground = [int(v) for v in (labels if labels is not None else np.unique(segmentation)) if v != 0]
        if foreground:
            segmentation = keep_largest_component(segmentation, foreground)
    for label in decision.keep_largest_labels:
        segmentation = keep_largest_component(segmentation, label)
    return segmentation


def determine_postprocessing(
    cases: Iterable[tuple[str, np.ndarray, np.ndarray]],
    labels: Sequence[int],
    configurations: Sequence[str] = (),
    source: str = "",
) -> PostprocessingDecision:
    """Decide which largest-component filters improve the mean Dice of cross-validation predictions.

    Parameters
    ----------
    cases : iterable of (case_id, reference, prediction)
        Label maps of one shape per case; read one at a time (a generator keeps memory to one case).
    labels : sequence of int
        Foreground label values.
    configurations, source : optional
        Recorded in the decision.

    Returns
    -------
    PostprocessingDecision

    Notes
    -----
    nnU-Net's ``determine_postprocessing``: first, keeping the largest component of all foreground together is
    chosen if it raises the mean foreground Dice and lowers no label's mean Dice; then, for each label (when there is
    more than one), keeping the largest component of that label is chosen if it raises that label's mean Dice on the
    predictions as they are after the first step. The second step only removes voxels of its own label, so it
    cannot make another label worse. Means skip cases where a label is absent in both reference and prediction.

    Examples
    --------
    >>> ref = np.zeros((1, 1, 9), np.uint8); ref[0, 0, 1:4] = 1
    >>> pred = ref.copy(); pred[0, 0, 7] = 1  # a spurious island
    >>> determine_postprocessing([("a", ref, pred)], labels=[1]).keep_largest_foreground
    True
    """
    labels = [int(v) for v in labels if int(v) != 0]
    variants = ("base", "fg") + tuple(f"base_{v}" for v in labels) + tuple(f"fg_{v}" for v in labels)
    table: dict[str, dict[int, list[float]]] = {name: {v: [] for v in labels} for name in variants}
    num_cases = 0
    for case_id, reference, prediction in cases:
        reference, prediction = np.asarray(reference), np.asarray(prediction)
        if reference.shape != prediction.shape:
            raise ValueError(
                f"case {case_id}: reference shape {reference.shape} differs from prediction shape {prediction.shape}; "
                "predictions must be in the reference geometry"
            )
        num_cases += 1
        foreground = keep_largest_component(prediction, labels)
        for name, segmentation in (("base", prediction), ("fg", foreground)):
            for value in labels:
                table[name][value].append(dice(reference == value, segmentation == value))
                if len(labels) > 1:
                    filtered = keep_largest_component(segmentation, value)
                    table[f"{name}_{value}"][value].append(dice(reference == value, filtered == value))
    if num_cases == 0:
        raise ValueError("no cross-validation cases to decide the post-processing on")

    def mean(name: str, value: int) -> float:
        values = np.asarray(table[name][value], dtype=float)
        return float(np.nanmean(values)) if np.any(~np.isnan(values)) else math.nan

    before = {str(v): mean("base", v) for v in labels}
    with_foreground = {str(v): mean("fg", v) for v in labels}
    use_foreground = _better(_mean(with_foreground.values()), _mean(before.values())) and not any(
        _better(before[k], with_foreground[k]) for k in before
    )
    stage = "fg" if use_foreground else "base"
    current = with_foreground if use_foreground else before
    chosen = []
    if len(labels) > 1:
        for value in labels:
            after_label = mean(f"{stage}_{value}", value)
            if _better(after_label, current[str(value)]):
                chosen.append(value)
                current = {**current, str(value): after_label}
    before["foreground_mean"] = _mean(v for k, v in before.items())
    current["foreground_mean"] = _mean(v for k, v in current.items() if k != "foreground_mean")
    decision = PostprocessingDecision(
        keep_largest_foreground=use_foreground,
        keep_largest_labels=tuple(chosen),
        dice_before=before,
        dice_after=current,
        configurations=tuple(configurations),
        source=source,
        num_cases=num_cases,
    )
    logger.info("post-processing for %s: %s", ", ".join(configurations) or source, decision.describe())
    return decision


def determine_postprocessing_for_folder(
    reference_dir: PathType,
    prediction_dir: PathType,
    labels: Sequence[int],
    configurations: Sequence[str] = (),
    output: PathType | None = None,
    file_ending: str | None = None,
) -> PostprocessingDecision:
    """:func:`determine_postprocessing` on a folder of predictions (e.g. ``<configuration>/crossval``).

    Every prediction needs a reference of the same case id in ``reference_dir``; the decision is written to
    ``output`` (a folder or ``.json`` path) when given.
    """
    references = find_label_files(reference_dir, file_ending)
    predictions = find_label_files(prediction_dir)
    missing = sorted(set(predictions) - set(references))
    if missing:
        raise FileNotFoundError(
            f"{reference_dir}: no reference for {len(missing)} prediction(s) in {prediction_dir} "
            f"({', '.join(missing[:5])}); pass the folder of the training labels"
        )
    if not predictions:
        raise FileNotFoundError(f"{prediction_dir}: no predictions to decide the post-processing on")

    def pairs() -> Iterable[tuple[str, np.ndarray, np.ndarray]]:
        for case_id, path in sorted(predictions.items()):
            yield case_id, read_image(references[case_id]).data[0], read_image(path).data[0]

    decision = determine_postprocessing(pairs(), labels, configurations, source=str(prediction_dir))
    if output is not None:
        decision.save(output)
    return decision


def _better(new: float, old: float) -> bool:
    """``new > old``, where a defined value beats an undefined (NaN) one."""
    if math.isnan(new):
        return False
    return math.isnan(old) or new > old


def _mean(values: Iterable[float]) -> float:
    array = np.asarray(list(values), dtype=float)
    return float(np.nanmean(array)) if np.any(~np.isnan(array)) else math.nan


def _none_if_nan(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _nan_if_none(value: Any) -> float:
    return math.nan if value is None else float(value)
