"""Write a case's predictions: segmentation in the input's format and geometry, optional probabilities (``.npz``, no
pickle) and uncertainty maps; every file atomically, so a killed run never leaves a half-written output."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from autounet.inference.ensemble import (
    labels_from_probabilities,
    segmentation_to_original,
    softmax_,
    to_original_geometry,
)
from autounet.dicom.seg_writer import SegOptions
from autounet.errors import DatasetError
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
#: Extension of DICOM Segmentation outputs.
DICOM_SEG_EXTENSION = ".dcm"

OutputFormat = Literal["auto", "nifti", "dicom-seg", "both"]
OUTPUT_FORMATS: tuple[str, ...] = ("auto", "nifti", "dicom-seg", "both")


@dataclass(frozen=True)
class OutputOptions:
    """What a case's segmentation is written as.

    Parameters
    ----------
    output_format : {"auto", "nifti", "dicom-seg", "both"}
        ``nifti``: an image file (the input's format; ``.nii.gz`` for DICOM input). ``dicom-seg``: a DICOM
        Segmentation ``CASE.dcm`` of the source series (DICOM input only). ``both``: the two. ``auto``: ``dicom-seg``
        for DICOM input, else ``nifti``.
    seg : SegOptions
        Segmentation type, segment codes and algorithm identification (model name and checksum are filled in from
        the model when empty).
    dicom_resample : bool
        Resample DICOM series with irregular slice gaps or gantry tilt onto a regular grid instead of refusing them.
    """

    output_format: OutputFormat = "auto"
    seg: SegOptions = field(default_factory=SegOptions)
    dicom_resample: bool = False

    def __post_init__(self) -> None:
        if self.output_format not in OUTPUT_FORMATS:
            raise ValueError(f"output_format {self.output_format!r}; choose one of {', '.join(OUTPUT_FORMATS)}")

    def outputs(self, is_dicom: bool, case: str = "case") -> tuple[bool, bool]:
        """``(image file, DICOM Segmentation)`` to write for a case; an error for a Segmentation of non-DICOM input.

        Examples
        --------
        >>> OutputOptions("auto").outputs(is_dicom=True), OutputOptions("both").outputs(is_dicom=True)
        ((False, True), (True, True))
        >>> OutputOptions("auto").outputs(is_dicom=False)
        (True, False)
        """
        if self.output_format == "auto":
            return (not is_dicom, is_dicom)
        if self.output_format == "nifti":
            return (True, False)
        if not is_dicom:
            raise DatasetError(
                f"{case}: --output-format {self.output_format} needs DICOM input (a Segmentation references its source "
                "series), but this case is an image file; use --output-format nifti, or predict on the DICOM series"
            )
        return (self.output_format == "both", True)


def model_checksum(files: Iterable[Path]) -> str:
    """SHA-256 over the model's weight files (sorted by path): identifies the model in a Segmentation."""
    digest = hashlib.sha256()
    for path in sorted(Path(f) for f in files):
        with open(path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class OutputPaths:
    """Files written for one case."""

    segmentation: Path
    probabilities: Path
    entropy: Path
    disagreement: Path
    dicom_seg: Path | None = None

    def expected(self, save_probabilities: bool, save_uncertainty: bool, with_disagreement: bool,
                 image_file: bool = True, dicom_seg: bool = False) -> list[Path]:
        """The files a finished case has with these options (the segmentation is written last)."""
        paths = [self.segmentation] if image_file else []
        if dicom_seg and self.dicom_seg is not None:
            paths.append(self.dicom_seg)
        if save_probabilities:
            paths.append(self.probabilities)
        if save_uncertainty:
            paths.append(self.entropy)
            if with_disagreement:
                paths.append(self.disagreement)
        return paths

    def is_complete(self, save_probabilities: bool, save_uncertainty: bool, with_disagreement: bool,
                    image_file: bool = True, dicom_seg: bool = False) -> bool:
        """True when every expected file exists (files appear only complete, by atomic rename)."""
        expected = self.expected(save_probabilities, save_uncertainty, with_disagreement, image_file, dicom_seg)
        return all(p.is_file() and p.stat().st_size > 0 for p in expected)


def output_paths(output_dir: PathType, case_id: str, extension: str) -> OutputPaths:
    """Where the outputs of ``case_id`` go: ``CASE.ext``, ``CASE.npz``, ``uncertainty/CASE_entropy.ext``,
    ``uncertainty/CASE_disagreement.ext`` (``.tif`` for flat image formats) and ``CASE.dcm`` (DICOM Segmentation).

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
        dicom_seg=output_dir / f"{case_id}{DICOM_SEG_EXTENSION}",
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

