"""``autounet import``: turn a folder of 2D images and a folder of masks into an nnU-Net v2 layout dataset.

The result has ``dataset.json`` (``channel_names``, ``labels``, ``file_ending``, ``numTraining``),
``imagesTr/CASE_0000.png`` (one grey file per channel: an RGB image becomes ``_0000``, ``_0001``, ``_0002``
for R, G, B), ``labelsTr/CASE.png`` (values 0..K), optionally ``imagesTs/`` for unlabelled images and
``roiTr/CASE.png`` (0/1) for field-of-view masks. Values are kept exactly; images whose values do not fit
PNG (float, negative, more than 16 bits) are written as TIFF instead (``file_ending`` ``.tif``).
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from autounet.dataset.pairing import match_folder, natural_key, pair_folders
from autounet.errors import DatasetError, ImageReadError
from autounet.io import PLACEHOLDER_2D_SPACING, Geometry, read_image, write_image
from autounet.io.formats import file_extension
from autounet.jsonio import write_json
from autounet.parallel import auto_workers, map_with_progress
from autounet.separate_folders import require_separate_output
from autounet.typing import PathType

logger = logging.getLogger(__name__)

GEOMETRY_2D = Geometry(spacing=(PLACEHOLDER_2D_SPACING, 1.0, 1.0), is_2d=True)
#: Problems listed per error message before "... and N more".
MAX_LISTED = 10


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_2d_dataset` wrote, and what it left out."""

    output: Path
    num_training: int
    num_test: int
    channel_names: tuple[str, ...]
    labels: dict[str, int]
    value_map: dict[int, int]
    file_ending: str
    image_pattern: str
    mask_pattern: str
    unpaired_images: tuple[Path, ...] = ()
    unpaired_masks: tuple[Path, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class _Source:
    """One case to import (plain data: sent to worker processes)."""

    case_id: str
    image: Path
    mask: Path | None = None
    roi: Path | None = None


@dataclass(frozen=True)
class _Scanned:
    case_id: str
    channels: int
    image_fits_png: bool
    mask_values: tuple[int, ...] = ()
    errors: tuple[str, ...] = ()


def parse_value_map(items: Sequence[str] | str) -> dict[int, int]:
    """Parse ``"255:1"``, ``"0:1,255:0"`` or a list of such strings into ``{source: target}``.

    Examples
    --------
    >>> parse_value_map(["0:1,255:0"])
    {0: 1, 255: 0}
    >>> parse_value_map("128:1, 255:2")
    {128: 1, 255: 2}
    """
    items = [items] if isinstance(items, str) else list(items)
    mapping: dict[int, int] = {}
    for part in (p.strip() for item in items for p in item.split(",")):
        if not part:
            continue
        source, sep, target = part.partition(":")
        try:
            mapping[int(source)] = int(target)
        except ValueError:
            raise DatasetError(f"cannot read value mapping {part!r}; write SOURCE:TARGET, e.g. 255:1") from None
        if not sep:
            raise DatasetError(f"cannot read value mapping {part!r}; write SOURCE:TARGET, e.g. 255:1")
    return mapping


def import_2d_dataset(
    images: PathType,
    masks: PathType,
    output: PathType,
    *,
    name: str | None = None,
    image_pattern: str | None = None,
    mask_pattern: str | None = None,
    map_values: Mapping[int, int] | None = None,
    label_names: Sequence[str] | None = None,
    channel_names: Sequence[str] | None = None,
    test_images: PathType | None = None,
    test_pattern: str | None = None,
    roi_masks: PathType | None = None,
    roi_pattern: str | None = None,
    zero_outside_roi: bool = False,
    link: bool = False,
    overwrite: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> ImportResult:
    """Import 2D images and masks from two folders as an nnU-Net v2 layout dataset in ``output``.

    Parameters
    ----------
    images, masks : str or Path
        Folder of images (PNG, TIFF, BMP, GIF, JPEG; grey or RGB) and folder of label masks.
    output : str or Path
        Dataset folder to create; it must not exist or be empty unless ``overwrite``.
    name : str, optional
        Dataset name in ``dataset.json`` (default: the output folder name).
    image_pattern, mask_pattern, test_pattern, roi_pattern : str, optional
        File-name pattern with a ``{case}`` placeholder (glob, or a regex with ``(?P<case>...)``) that gives
        the case name shared by an image and its mask, e.g. ``"{case}_training.tif"``. Default: ``{case}``
        plus the suffix all files of the folder share.
    map_values : mapping of int to int, optional
        Mask value -> label value, applied at once (``{0: 1, 255: 0}`` swaps). Values not listed are kept.
        Default: masks holding only 0 and 255 get ``{255: 1}`` (with a note); others are kept as they are.
    label_names : sequence of str, optional
        Names of labels 0, 1, ...; default ``background``, ``foreground`` (binary) or ``label_K``.
    channel_names : sequence of str, optional
        One name per image channel (it selects the normalisation); default ``grey`` or ``R, G, B``.
    test_images : str or Path, optional
        Folder of unlabelled images, written to ``imagesTs/``.
    roi_masks : str or Path, optional
        Folder of field-of-view masks (e.g. DRIVE ``mask/``), written as 0/1 to ``roiTr/CASE.png``.
    zero_outside_roi : bool
        Also set image pixels outside the ROI to 0, so cropping to the non-zero region and normalisation
        inside the non-zero mask use the field of view. This changes image values; off by default.
    link : bool
        Symlink source files that need no conversion instead of copying them.
    overwrite : bool
        Replace an existing ``output`` folder (only after the new dataset is complete).

    Returns
    -------
    ImportResult

    Raises
    ------
    DatasetError
        If no pairs are found, an image and its mask differ in size, mask values are not mapped to labels,
        or images differ in channel count; the message lists every offending file.
    OutputFolderError
        If ``output`` is, is inside or contains an input folder (replacing it would delete the inputs).
    """
    output = Path(output)
    require_separate_output(output, {"--images": images, "--masks": masks, "--test-images": test_images,
                                     "--roi-masks": roi_masks})  # --overwrite must never delete the inputs
    _check_output(output, overwrite)
    matched_images = match_folder(Path(images), image_pattern)
    matched_masks = match_folder(Path(masks), mask_pattern)
    cases, unpaired_images, unpaired_masks = pair_folders(matched_images, matched_masks)
    notes: list[str] = []
    rois = match_folder(Path(roi_masks), roi_pattern).by_case if roi_masks is not None else {}
    without_roi = sorted(set(cases) - set(rois), key=natural_key) if roi_masks is not None else []
    if without_roi:
        notes.append(f"no ROI mask for {len(without_roi)} case(s): {', '.join(without_roi[:MAX_LISTED])}")
    sources = [_Source(c, matched_images.by_case[c], matched_masks.by_case[c], rois.get(c)) for c in cases]
    test_sources: list[_Source] = []
    if test_images is not None:
        matched_test = match_folder(Path(test_images), test_pattern)
        test_sources = [_Source(c, matched_test.by_case[c]) for c in sorted(matched_test.by_case, key=natural_key)]
        if matched_test.unmatched:
            notes.append(f"{len(matched_test.unmatched)} test file(s) do not match {matched_test.pattern!r} and were skipped")

    everything = sources + test_sources
    total_bytes = sum(os.path.getsize(f) for s in everything for f in (s.image, s.mask, s.roi) if f is not None)
    workers = auto_workers(total_bytes, workers)
    scanned = map_with_progress(_scan, everything, workers=workers, progress=progress, description="import: read")
    channels, fits_png = _check_scans(scanned)
    value_map, labels = _plan_labels(scanned[: len(sources)], sources, map_values, label_names, notes)
    channel_names = _channel_names(channels, channel_names)
    ending = ".png" if fits_png else ".tif"
    if not fits_png:
        notes.append("some image values do not fit PNG (float, negative or > 16 bit): all files are written as .tif")

    partial = output.parent / f".{output.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        jobs = [(s, str(partial), "Tr", ending, value_map, zero_outside_roi, link) for s in sources]
        jobs += [(s, str(partial), "Ts", ending, value_map, zero_outside_roi, link) for s in test_sources]
        map_with_progress(_write_case, jobs, workers=workers, progress=progress, description="import: write")
        provenance = {
            "images": str(Path(images).resolve()), "masks": str(Path(masks).resolve()),
            "image_pattern": matched_images.pattern, "mask_pattern": matched_masks.pattern,
            "value_map": {str(k): v for k, v in value_map.items()},
            "roi_folder": "roiTr" if rois else None, "zero_outside_roi": bool(zero_outside_roi and rois),
            "test_images": str(Path(test_images).resolve()) if test_images is not None else None,
            "transfer": "link" if link else "copy",
            "training_cases": {s.case_id: _source_files(s) for s in sources},
            "test_cases": {s.case_id: _source_files(s) for s in test_sources},
        }
        description = {
            "name": name or output.name,
            "description": f"2D dataset imported by 'autounet import' from {Path(images).resolve()}",
            "channel_names": {str(i): n for i, n in enumerate(channel_names)},
            "labels": labels,
            "numTraining": len(sources),
            "numTest": len(test_sources),
            "file_ending": ending,
            "autounet_import": provenance,
        }
        write_json(partial / "dataset.json", description, indent=2)
        _move_into_place(partial, output)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return ImportResult(
        output=output, num_training=len(sources), num_test=len(test_sources), channel_names=tuple(channel_names),
        labels=labels, value_map=value_map, file_ending=ending, image_pattern=matched_images.pattern,
        mask_pattern=matched_masks.pattern, unpaired_images=tuple(unpaired_images),
        unpaired_masks=tuple(unpaired_masks), notes=tuple(notes),
    )


def _source_files(source: _Source) -> dict[str, str]:
    return {k: str(v) for k, v in (("image", source.image), ("mask", source.mask), ("roi", source.roi)) if v}


def _check_output(output: Path, overwrite: bool) -> None:
    if output.exists() and not output.is_dir():
        raise DatasetError(f"{output} exists and is a file; choose a folder name for the dataset")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise DatasetError(f"{output} exists and is not empty; choose another folder or pass --overwrite")


def _move_into_place(partial: Path, output: Path) -> None:
    """Swap the complete new dataset in; an old folder is removed only afterwards."""
    old = None
    if output.is_dir():
        if any(output.iterdir()):
            old = output.parent / f".{output.name}.old-{os.getpid()}"
            output.rename(old)
        else:
            output.rmdir()
    partial.rename(output)
    if old is not None:
        shutil.rmtree(old)


def _read_mask(path: Path) -> np.ndarray:
    """Mask as ``(z, y, x)``; RGB masks whose channels are equal (grey saved as colour) are accepted."""
    image = read_image(path)
    data = image.data
    if data.shape[0] > 1:
        if not all(np.array_equal(data[0], channel) for channel in data[1:]):
            raise DatasetError(
                f"{path}: colour mask with {data.shape[0]} different channels; save masks as single-channel "
                "(grey or indexed/palette) images whose values are the labels"
            )
    return data[0]


def _scan(source: _Source) -> _Scanned:
    """Read one case and report everything the import needs to decide, or every error it finds."""
    errors = []
    try:
        image = read_image(source.image)
    except ImageReadError as err:
        return _Scanned(source.case_id, 0, True, errors=(str(err),))
    shape = image.spatial_shape
    if shape[0] != 1:
        errors.append(f"{source.image}: holds {shape[0]} slices; 'autounet import' is for 2D images, "
                      "write a NIfTI dataset for volumes")
    values: tuple[int, ...] = ()
    for path, what in ((source.mask, "mask"), (source.roi, "ROI mask")):
        if path is None:
            continue
        try:
            mask = _read_mask(path)
        except (DatasetError, ImageReadError) as err:
            errors.append(str(err))
            continue
        if mask.shape != shape:
            errors.append(f"{path}: {what} size {mask.shape[1:]} differs from image {source.image.name} size "
                          f"{shape[1:]} (y, x); the {what} must have the image's size")
        if what == "mask":
            if mask.dtype.kind == "f" and not np.all(np.mod(mask, 1) == 0):
                errors.append(f"{path}: mask holds non-integer values; save masks as integer images")
            else:
                values = tuple(int(v) for v in np.unique(mask))
    return _Scanned(source.case_id, image.num_channels, _fits_png(image.data), values, tuple(errors))


def _fits_png(data: np.ndarray) -> bool:
    """PNG holds unsigned integers up to 16 bits per channel exactly."""
    if data.dtype.kind == "b":
        return True
    return data.dtype.kind in "ui" and data.size > 0 and int(data.min()) >= 0 and int(data.max()) <= 65535


def _check_scans(scanned: list[_Scanned]) -> tuple[int, bool]:
    errors = [e for s in scanned for e in s.errors]
    counts: dict[int, list[str]] = {}
    for s in scanned:
        if not s.errors:
            counts.setdefault(s.channels, []).append(s.case_id)
    if len(counts) > 1:
        usual = max(counts, key=lambda c: len(counts[c]))
        for c, case_ids in counts.items():
            if c != usual:
                errors.append(f"cases {', '.join(case_ids[:MAX_LISTED])} have {c} channel(s) but most images have "
                              f"{usual}; convert them (e.g. grey <-> RGB) so all images have the same channels")
    if errors:
        raise DatasetError(_listing(f"{len(errors)} problem(s) found; nothing was written", errors))
    return next(iter(counts), 1), all(s.image_fits_png for s in scanned)


def _listing(headline: str, lines: list[str]) -> str:
    shown = lines[:MAX_LISTED] + ([f"... and {len(lines) - MAX_LISTED} more"] if len(lines) > MAX_LISTED else [])
    return headline + ":\n  " + "\n  ".join(shown)


def _plan_labels(
    scanned: list[_Scanned], sources: list[_Source], map_values: Mapping[int, int] | None,
    label_names: Sequence[str] | None, notes: list[str],
) -> tuple[dict[int, int], dict[str, int]]:
    """Choose the value map and the label declarations; raise if mask values stay unmapped."""
    found = sorted({v for s in scanned for v in s.mask_values})
    if map_values is None:
        value_map = {255: 1} if 255 in found and set(found) <= {0, 255} else {}
        if value_map:
            notes.append("binary 0/255 masks: mapped 255 -> 1 (the 255 pixels are the foreground); pass "
                         "--map-values 0:1,255:0 to make the 0 pixels the foreground instead")
    else:
        value_map = {int(k): int(v) for k, v in map_values.items()}
    final = sorted({value_map.get(v, v) for v in found})
    if label_names is not None:
        allowed = set(range(len(label_names)))
        expected = f"the {len(label_names)} label names ({', '.join(label_names)}) declare values 0..{len(label_names) - 1}"
    else:
        allowed = set(range(final[-1] + 1)) if final and final[0] >= 0 else set()
        allowed = allowed if allowed == set(final) else set()
        expected = "without --label-names the mask values must become 0, 1, ..., K"
    bad_sources = {v for v in found if value_map.get(v, v) not in allowed}
    if bad_sources:
        lines = [
            f"value {v} (-> {value_map.get(v, v)}) in {len(files)} mask(s): {', '.join(files[:4])}"
            + (", ..." if len(files) > 4 else "")
            for v in sorted(bad_sources)
            for files in [[src.mask.name for src, s in zip(sources, scanned) if v in s.mask_values and src.mask]]
        ]
        suggestion = ",".join(f"{v}:{i}" for i, v in enumerate(found))
        raise DatasetError(_listing(
            f"mask values are not mapped to labels ({expected}); found values {found}. Map them with "
            f"--map-values (e.g. --map-values {suggestion}) or name them with --label-names", lines,
        ))
    num_labels = len(label_names) if label_names is not None else (final[-1] + 1 if final else 1)
    names = list(label_names) if label_names is not None else _default_label_names(num_labels)
    if len(set(names)) != len(names):
        raise DatasetError(f"label names {names} repeat a name; give each label a different name")
    return value_map, {n: i for i, n in enumerate(names)}


def _default_label_names(num_labels: int) -> list[str]:
    if num_labels == 2:
        return ["background", "foreground"]
    return ["background"] + [f"label_{i}" for i in range(1, num_labels)]


def _channel_names(channels: int, given: Sequence[str] | None) -> list[str]:
    if given is not None:
        if len(given) != channels:
            raise DatasetError(f"{len(given)} channel name(s) given ({', '.join(given)}) but the images have "
                               f"{channels} channel(s); pass one name per channel")
        return list(given)
    return ["R", "G", "B"] if channels == 3 else ["grey"] if channels == 1 else [f"channel_{c}" for c in range(channels)]


def _transfer(source: Path, target: Path, link: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if link:
        os.symlink(source.resolve(), target)
    else:
        shutil.copy2(source, target)


def _write_case(job: tuple) -> None:
    source, root, split, ending, value_map, zero_outside_roi, link = job
    root = Path(root)
    roi = _read_mask(source.roi) != 0 if source.roi is not None else None
    if roi is not None and split == "Tr":
        write_image(root / "roiTr" / f"{source.case_id}{ending}", roi.astype(np.uint8)[None], GEOMETRY_2D)
    reusable = file_extension(source.image) == ending and not (zero_outside_roi and roi is not None)
    image = read_image(source.image)
    if reusable and image.num_channels == 1:
        _transfer(source.image, root / f"images{split}" / f"{source.case_id}_0000{ending}", link)
    else:
        data = image.data
        if zero_outside_roi and roi is not None:
            data = np.where(roi[None], data, np.zeros((), dtype=data.dtype))
        for channel, plane in enumerate(data):
            write_image(root / f"images{split}" / f"{source.case_id}_{channel:04d}{ending}", plane[None], GEOMETRY_2D)
    if source.mask is None:
        return
    mask = _read_mask(source.mask)
    present = np.unique(mask)
    if file_extension(source.mask) == ending and read_image(source.mask).num_channels == 1 and all(
        value_map.get(int(v), int(v)) == int(v) for v in present
    ):
        _transfer(source.mask, root / "labelsTr" / f"{source.case_id}{ending}", link)
        return
    targets = np.array([value_map.get(int(v), int(v)) for v in present], dtype=np.int64)
    labels = targets[np.searchsorted(present, mask)]  # every value mapped at once, so 0:1,255:0 swaps
    dtype = np.uint8 if labels.max() <= 255 else np.uint16
    write_image(root / "labelsTr" / f"{source.case_id}{ending}", labels.astype(dtype)[None], GEOMETRY_2D)
