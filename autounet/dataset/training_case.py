"""Refuse a training case whose image and label cannot be used together, with one message naming the file.

``autounet check`` reports every problem of a dataset at once; the stages that read training cases (fingerprint,
preprocess) call these functions instead and stop at the first problem of a case, so a broken file never turns
into a traceback deep in NumPy or into a silently wrong result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from autounet.dataset.check_case import geometry_mismatches
from autounet.dataset.dataset import Dataset
from autounet.errors import DatasetError
from autounet.io import Image
from autounet.io.nifti_raw import count_nonfinite_nifti
from autounet.typing import PathType


def require_usable_image(image: Image, files: Iterable[PathType]) -> None:
    """Raise :class:`DatasetError` unless the voxels are real numbers without NaN or Inf (also those ITK reads as 0).

    Parameters
    ----------
    image : Image
        The case's image as read, ``data`` of shape (C, *spatial).
    files : iterable of path
        The files it was read from (NIfTI files are scanned byte by byte: ITK turns NaN/Inf into 0).

    Examples
    --------
    >>> from autounet.io import Geometry
    >>> grid = Geometry(spacing=(1.0, 1.0, 1.0))
    >>> require_usable_image(Image(np.ones((1, 2, 2, 2), np.float32), grid), [])
    >>> require_usable_image(Image(np.full((1, 2, 2, 2), np.nan, np.float32), grid, source="a.png"), [])
    Traceback (most recent call last):
    ...
    autounet.errors.DatasetError: a.png: 8 NaN/Inf voxel(s); replace them (e.g. with the minimum intensity) and re-run
    """
    data = image.data
    if data.dtype.kind not in "biuf":
        raise DatasetError(
            f"{image.source}: voxel type {data.dtype} is not a real number type (complex, vector or text voxels); "
            "save the image with integer or floating-point voxels"
        )
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        count = int(data.size - np.count_nonzero(np.isfinite(data)))
        raise DatasetError(
            f"{image.source}: {count} NaN/Inf voxel(s); replace them (e.g. with the minimum intensity) and re-run"
        )
    if data.dtype.kind != "f":
        return  # integer voxels cannot have been NaN in the file
    for path in files:
        raw_count = count_nonfinite_nifti(path)
        if raw_count:
            raise DatasetError(
                f"{path}: {raw_count} NaN/Inf voxel(s), which the NIfTI reader turns into 0 (a silently different "
                "image); replace them (e.g. with the minimum intensity) and re-run"
            )


def require_label_on_image_grid(label: Image, image: Image, label_file: PathType) -> np.ndarray:
    """Return the label map of shape (*spatial) if it is one channel on the image's voxel grid, else raise.

    Shapes must match exactly; spacing, origin and direction within the tolerances of ``autounet check``
    (:func:`autounet.dataset.check_case.geometry_mismatches`).

    Raises
    ------
    DatasetError
        Naming ``label_file``, what differs (in z, y, x order) and how to fix it.
    """
    if label.num_channels != 1:
        raise DatasetError(
            f"{label_file}: the label map has {label.num_channels} channels (vector or RGB pixels); it must have "
            "one: save it as a single-channel integer image"
        )
    seg = label.data[0]
    if seg.shape != image.data.shape[1:]:
        raise DatasetError(
            f"{label_file}: label shape {seg.shape} differs from image shape {image.data.shape[1:]}; "
            'run "autounet check" for details and resample or re-export the label'
        )
    mismatches = geometry_mismatches(image.geometry, label.geometry)
    if mismatches:
        raise DatasetError(
            f"{label_file}: label {'; '.join(mismatches)} (z, y, x order; image {image.source}); the label must "
            "lie on the image's grid: copy the image header into it or resample it onto the image"
        )
    return seg


def require_declared_labels(label_voxels: dict[int, int], declared: Sequence[int], label_file: PathType) -> None:
    """Raise if a label map holds values that ``dataset.json`` does not declare.

    Examples
    --------
    >>> require_declared_labels({0: 10, 1: 3}, (0, 1, 2), "l.nii.gz")
    >>> require_declared_labels({0: 10, 7: 3}, (0, 1, 2), "l.nii.gz")
    Traceback (most recent call last):
    ...
    autounet.errors.DatasetError: l.nii.gz: label value(s) 7 (3 voxels) not declared in dataset.json (declared: 0, 1, 2); relabel these voxels, or add the values to 'labels' in dataset.json
    """
    undeclared = {value: count for value, count in label_voxels.items() if value not in set(declared)}
    if undeclared:
        listed = ", ".join(f"{value} ({count} voxels)" for value, count in sorted(undeclared.items())[:8])
        raise DatasetError(
            f"{label_file}: label value(s) {listed} not declared in dataset.json (declared: "
            f"{', '.join(str(v) for v in declared)}); relabel these voxels, or add the values to 'labels' in "
            "dataset.json"
        )


def require_one_dimensionality(case_is_2d: dict[str, bool], image_files: dict[str, Path]) -> None:
    """Raise if some cases are 2D and others 3D: one plan cannot resample both.

    Examples
    --------
    >>> require_one_dimensionality({"a": False, "b": False}, {})
    >>> require_one_dimensionality({"a": False, "b": True, "c": False}, {"b": Path("b.nii.gz")})
    Traceback (most recent call last):
    ...
    autounet.errors.DatasetError: b.nii.gz: 2D image(s) among 2 3D cases; a dataset must be all 2D or all 3D: remove the 2D case(s) or export them as volumes
    """
    flat = [case for case, is_2d in case_is_2d.items() if is_2d]
    if flat and len(flat) < len(case_is_2d):
        minority_2d = len(flat) <= len(case_is_2d) / 2
        odd = flat if minority_2d else [case for case in case_is_2d if case not in flat]
        files = ", ".join(str(image_files.get(case, case)) for case in odd[:5])
        more = f" and {len(odd) - 5} more" if len(odd) > 5 else ""
        majority = len(case_is_2d) - len(odd)
        raise DatasetError(
            f"{files}{more}: {'2D' if minority_2d else '3D'} image(s) among {majority} "
            f"{'3D' if minority_2d else '2D'} cases; a dataset must be all 2D or all 3D: remove the "
            f"{'2D' if minority_2d else '3D'} case(s) or export them as {'volumes' if minority_2d else 'slices'}"
        )


def require_matching_case_files(dataset: Dataset) -> None:
    """nnU-Net v2 layout: raise if ``imagesTr`` and ``labelsTr`` do not pair up as ``dataset.json`` says.

    A channel file beyond the declared channels is usually one the user meant to train with, and a label whose
    image files are all missing drops its case; either way the model would silently differ from the intended one
    (prediction refuses such cases too, and ``autounet check`` reports them).
    """
    if dataset.description.layout != "nnunet_v2":
        return  # MSD: dataset.json lists each case's files, which are read (and named if missing)
    ending = dataset.description.file_ending
    known = set(dataset.case_ids)
    extra = []
    for path in sorted((dataset.root / "imagesTr").glob(f"*_[0-9][0-9][0-9][0-9]{ending}")):
        case_id, channel = path.name[: -len(ending)].rsplit("_", 1)
        if case_id in known and int(channel) >= dataset.num_channels:
            extra.append(path)
    if extra:
        raise DatasetError(
            f"{_listed(extra)}: channel file(s) beyond the {dataset.num_channels} channel(s) dataset.json declares "
            "(channel_names); delete them, or declare the channel in channel_names and re-run"
        )
    orphans = [p for p in sorted((dataset.root / "labelsTr").glob(f"*{ending}")) if p.name[: -len(ending)] not in known]
    if orphans:
        expected = dataset.root / "imagesTr" / f"{orphans[0].name[: -len(ending)]}_0000{ending}"
        raise DatasetError(
            f"{_listed(orphans)}: label(s) without image files (expected e.g. {expected}); add the images, or move "
            "the labels out of labelsTr"
        )


def _listed(paths: Sequence[Path], limit: int = 5) -> str:
    return ", ".join(str(p) for p in paths[:limit]) + (f" and {len(paths) - limit} more" if len(paths) > limit else "")
