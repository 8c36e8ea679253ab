"""Write a case's predictions: segmentation in the input's format and geometry, optional probabilities (``.npz``, no
pickle) and uncertainty maps; every file atomically, so a killed run never leaves a half-written output."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from autounet.inference.ensemble import (
    labels_from_probabilities,
    segmentation_to_original,
    softmax_,
    to_original_geometry,
)
from autounet.io import Geometry, write_image
from autounet.io.formats import PIL_EXTENSIONS, file_extension
from autounet.jsonio import save_npz
from autounet.planners.plans import Plans
from autounet.preprocessing.properties import CaseProperties
from autounet.typing import PathType

#: Sub-folder of the output folder for uncertainty maps (kept apart so that evaluating the output folder only sees
#: segmentations).
UNCERTAINTY_FOLDER = "uncertainty"
#: Format of uncertainty maps of flat inputs (PNG, BMP, ...): they hold float values, which only TIFF keeps.
FLAT_UNCERTAINTY_EXTENSION = ".tif"


@dataclass(frozen=True)
class OutputPaths:
    """Files written for one case."""

    segmentation: Path
    probabilities: Path
    entropy: Path
    disagreement: Path

    def expected(self, save_probabilities: bool, save_uncertainty: bool, with_disagreement: bool) -> list[Path]:
        """The files a finished case has with these options (the segmentation is written last)."""
        paths = [self.segmentation]
        if save_probabilities:
            paths.append(self.probabilities)
        if save_uncertainty:
            paths.append(self.entropy)
            if with_disagreement:
                paths.append(self.disagreement)
        return paths

    def is_complete(self, save_probabilities: bool, save_uncertainty: bool, with_disagreement: bool) -> bool:
        """True when every expected file exists (files appear only complete, by atomic rename)."""
        return all(p.is_file() and p.stat().st_size > 0 for p in self.expected(save_probabilities, save_uncertainty, with_disagreement))


def output_paths(output_dir: PathType, case_id: str, extension: str) -> OutputPaths:
    """Where the outputs of ``case_id`` go: ``CASE.ext``, ``CASE.npz``, ``uncertainty/CASE_entropy.ext`` and
    ``uncertainty/CASE_disagreement.ext`` (``.tif`` for flat image formats).

    Examples
    --------
    >>> paths = output_paths("out", "case_01", ".nii.gz")
    >>> str(paths.segmentation), str(paths.probabilities), str(paths.entropy)
    ('out/case_01.nii.gz', 'out/case_01.npz', 'out/uncertainty/case_01_entropy.nii.gz')
    """
    output_dir = Path(output_dir)
    map_extension = FLAT_UNCERTAINTY_EXTENSION if extension in PIL_EXTENSIONS else extension
    return OutputPaths(
        segmentation=output_dir / f"{case_id}{extension}",
        probabilities=output_dir / f"{case_id}.npz",
        entropy=output_dir / UNCERTAINTY_FOLDER / f"{case_id}_entropy{map_extension}",
        disagreement=output_dir / UNCERTAINTY_FOLDER / f"{case_id}_disagreement{map_extension}",
    )


def write_segmentation(path: PathType, segmentation: np.ndarray, geometry: Geometry) -> None:
    """Write a label map ``(z, y, x)`` with the input's geometry, in the format the extension names (atomic)."""
    write_image(path, segmentation, geometry)


def write_probabilities(path: PathType, probabilities: np.ndarray, label_values: tuple[int, ...]) -> None:
    """Save class probabilities ``(K, z, y, x)`` float32 in the input geometry as ``.npz`` (compressed, no pickle).

    The file holds ``probabilities`` and ``labels`` (the label value of each channel); read it with
    :func:`read_probabilities` or ``np.load(path, allow_pickle=False)``.
    """
    if probabilities.shape[0] != len(label_values):
        raise ValueError(f"{probabilities.shape[0]} probability channels but {len(label_values)} label values")
    save_npz(path, probabilities=probabilities.astype(np.float32, copy=False), labels=np.asarray(label_values, np.int64))


def read_probabilities(path: PathType) -> tuple[np.ndarray, tuple[int, ...]]:
    """Read a file written by :func:`write_probabilities`: ``(probabilities (K, z, y, x) float32, label values)``."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return data["probabilities"], tuple(int(v) for v in data["labels"])
    except (KeyError, ValueError, OSError) as err:
        raise ValueError(
            f"{path}: not a probabilities file written by autounet ({err}); re-run the prediction with "
            "--save-probabilities"
        ) from None


def entropy_map(probabilities: np.ndarray) -> np.ndarray:
    """Normalised entropy of class probabilities ``(K, *spatial)``: 0 = certain, 1 = uniform over the K classes.

    Examples
    --------
    >>> entropy_map(np.array([[1.0, 0.5], [0.0, 0.5]])).round(3).tolist()
    [0.0, 1.0]
    """
    num_classes = probabilities.shape[0]
    if num_classes < 2:
        return np.zeros(probabilities.shape[1:], np.float32)
    total = np.zeros(probabilities.shape[1:], np.float64)
    for channel in probabilities:  # one channel at a time: no (K, *spatial) float64 temporary
        p = np.clip(channel, 1e-12, 1.0)
        total -= channel * np.log(p)
    return (total / np.log(num_classes)).astype(np.float32)


def write_map(path: PathType, values: np.ndarray, geometry: Geometry) -> None:
    """Write a float map ``(z, y, x)`` (uncertainty) with the input's geometry (atomic)."""
    write_image(path, values.astype(np.float32, copy=False), geometry)


def export_prediction(
    logits: torch.Tensor | np.ndarray,
    properties: CaseProperties,
    plans: Plans,
    configuration: str,
    output_file: PathType,
    *,
    save_probabilities: bool = False,
) -> np.ndarray:
    """Write one case's prediction from logits in a configuration's preprocessed space (the trainer's final validation).

    Parameters
    ----------
    logits : Tensor or ndarray of shape (K, *preprocessed spatial)
        From :func:`~autounet.inference.sliding_window.predict_logits` (consumed: turned into probabilities in place).
    properties : CaseProperties
        From :func:`~autounet.preprocessing.case.preprocess_case` (or the preprocessed store's ``<case_id>.json``).
    plans, configuration
        The plans and the configuration the logits were predicted in.
    output_file : str or Path
        Segmentation file, e.g. ``fold_0/validation/CASE.nii.gz``; the extension picks the format.
    save_probabilities : bool
        Also write ``CASE.npz`` beside it with the probabilities on the input grid (needed by ``autounet find-best``
        to evaluate ensembles).

    Returns
    -------
    ndarray of shape (z, y, x)
        The segmentation that was written (label values, on the input grid).
    """
    output_file = Path(output_file)
    probabilities = softmax_(torch.as_tensor(logits, dtype=torch.float32)).numpy()
    if save_probabilities:
        restored = to_original_geometry(probabilities, properties, plans, configuration)
        segmentation = labels_from_probabilities(restored, plans.label_values)
        name = output_file.name[: len(output_file.name) - len(file_extension(output_file))]
        write_probabilities(output_file.with_name(f"{name}.npz"), restored, plans.label_values)
    else:
        segmentation = segmentation_to_original(probabilities, properties, plans, configuration)
    write_segmentation(output_file, segmentation, properties.geometry)
    return segmentation

