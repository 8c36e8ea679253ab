"""Write a label map as a DICOM Segmentation of its source series with highdicom; prove its geometry before keeping it."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from autounet import __version__
from autounet.dicom.codes import SegmentCode, segment_codes_for
from autounet.dicom.geometry_proof import SegmentCheck, prove_seg_geometry
from autounet.dicom.headers import DICOM_EXTRA_HINT, import_pydicom
from autounet.dicom.series import DicomVolume
from autounet.errors import AutounetError, ImageReadError
from autounet.jsonio import atomic_path
from autounet.typing import PathType

logger = logging.getLogger(__name__)

SegType = Literal["binary", "labelmap"]
#: Added to the source's SeriesNumber for the Segmentation's series, so viewers list it after its source.
SERIES_NUMBER_OFFSET = 1000
#: Manufacturer written into every Segmentation (the software that made it, as the standard asks).
MANUFACTURER = "autounet"


@dataclass(frozen=True)
class SegOptions:
    """How Segmentations are written.

    Parameters
    ----------
    seg_type : {"binary", "labelmap"}
        BINARY (one bit-packed frame per segment and slice; the widest viewer support) or LABELMAP (one frame per
        slice holding segment numbers; DICOM 2024 Label Map Segmentation, smaller, newer).
    user_codes : mapping, optional
        Segment codes per label name or value (see :func:`~autounet.dicom.codes.segment_codes_for`).
    algorithm_name : str
        Name of the model (shown as the segment's algorithm).
    model_checksum : str
        SHA-256 of the model's weights, written as an algorithm parameter.
    series_description : str
        SeriesDescription of the Segmentation.
    """

    seg_type: SegType = "binary"
    user_codes: Mapping[str, Any] | None = None
    algorithm_name: str = "autounet"
    model_checksum: str = ""
    series_description: str = "autounet segmentation"
    parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SegWriteResult:
    """A written Segmentation: its path, UIDs and the geometry proof of every segment."""

    path: Path
    sop_instance_uid: str
    series_instance_uid: str
    checks: tuple[SegmentCheck, ...]


def write_dicom_seg(
    path: PathType,
    label_map: np.ndarray,
    volume: DicomVolume,
    labels: Mapping[str, int],
    options: SegOptions = SegOptions(),
) -> SegWriteResult:
    """Write ``label_map`` as a DICOM Segmentation of ``volume``'s series; atomic, and only after the geometry proof.

    The Segmentation references every source instance, keeps the source's patient, study and frame of reference,
    names each segment after its label with a coded category and type, and identifies the algorithm (autounet
    version, model name and weights checksum). A label that is absent from the map is still described (it has no
    frames); an all-empty map is written with every frame, as the standard needs at least one.

    Parameters
    ----------
    path : str or Path
        The ``.dcm`` file to write.
    label_map : ndarray of shape (z, y, x)
        Label values on ``volume``'s grid.
    volume : DicomVolume
        The source series as :func:`~autounet.dicom.series.read_dicom_series` returned it.
    labels : mapping of str to int
        Label name -> value (dataset.json); every non-zero value becomes one segment, numbered 1.. in value order.
    options : SegOptions
        Segmentation type, codes, algorithm identification.

    Returns
    -------
    SegWriteResult

    Raises
    ------
    GeometryProofError
        If a segment of the written file is not where the label map has it (nothing is written).
    ValueError
        If the label map's shape is not the volume's or it holds undeclared values.
    """
    hd = _import_highdicom()
    pydicom = import_pydicom()
    path = Path(path)
    label_map = np.asarray(label_map)
    if label_map.shape != volume.image.spatial_shape:
        raise ValueError(f"{path.name}: label map shape {label_map.shape} is not the series' {volume.image.spatial_shape}")
    values = sorted(v for v in labels.values() if v != 0)
    numbers = {index + 1: value for index, value in enumerate(values)}  # segment number -> label value
    present = set(np.unique(label_map).tolist()) - {0}
    if present - set(values):
        raise ValueError(f"{path.name}: label values {sorted(present - set(values))} are not declared in {dict(labels)}")
    codes = segment_codes_for(labels, options.user_codes)
    pixel_array = _segment_numbers(label_map, numbers)
    seg = _build(hd, volume, pixel_array, numbers, codes, options, labels)
    with atomic_path(path, expected_bytes=int(label_map.size * len(values) / 8) + 65536) as tmp:
        seg.save_as(str(tmp), enforce_file_format=True)
        written = pydicom.dcmread(str(tmp))
        checks = prove_seg_geometry(written, label_map, volume.geometry, numbers, where=str(path))
    logger.info("%s: %d segment(s) written, geometry proven", path, len(numbers))
    return SegWriteResult(path, str(seg.SOPInstanceUID), str(seg.SeriesInstanceUID), tuple(checks))


def _import_highdicom() -> Any:
    try:
        import highdicom
    except ImportError:
        raise ImageReadError(DICOM_EXTRA_HINT) from None
    return highdicom


def _segment_numbers(label_map: np.ndarray, numbers: Mapping[int, int]) -> np.ndarray:
    """Label values -> segment numbers 1..K (unchanged when the values already are 1..K)."""
    dtype = np.uint8 if len(numbers) < 256 else np.uint16
    if all(number == value for number, value in numbers.items()):
        return label_map.astype(dtype, copy=False)
    lookup = np.zeros(max(numbers.values()) + 1, dtype=dtype)
    for number, value in numbers.items():
        lookup[value] = number
    return lookup[label_map]


def _coded(hd: Any, code: tuple[str, str, str]) -> Any:
    return hd.sr.CodedConcept(value=code[0], scheme_designator=code[1], meaning=code[2])


def _build(hd: Any, volume: DicomVolume, pixel_array: np.ndarray, numbers: Mapping[int, int],
           codes: Mapping[int, SegmentCode], options: SegOptions, labels: Mapping[str, int]) -> Any:
    from pydicom.sr.codedict import codes as dicom_codes

    parameters = {"autounet_version": __version__, **dict(options.parameters)}
    if options.model_checksum:
        parameters["model_sha256"] = options.model_checksum
    algorithm = hd.AlgorithmIdentificationSequence(
        name=options.algorithm_name[:64], family=dicom_codes.cid7162.ArtificialIntelligence, version=__version__,
        source=MANUFACTURER, parameters=parameters,
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number, segment_label=codes[value].label[:64],
            segmented_property_category=_coded(hd, codes[value].category),
            segmented_property_type=_coded(hd, codes[value].type),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC, algorithm_identification=algorithm,
        )
        for number, value in numbers.items()
    ]
    first = volume.source_headers[0]
    geometry = volume.geometry
    direction = geometry.direction_matrix[::-1, ::-1]  # world (x, y, z) per ITK axis (x, y, z)
    if volume.resampled:
        positions = [geometry.index_to_world(np.array([k, 0.0, 0.0]))[::-1] for k in range(pixel_array.shape[0])]
    else:
        positions = [np.asarray(record.position) for record in volume.slices]
    thickness = first.get("SliceThickness")
    source_number = first.get("SeriesNumber")
    kwargs = dict(
        source_images=volume.source_headers,
        pixel_array=pixel_array,
        segmentation_type=hd.seg.SegmentationTypeValues[options.seg_type.upper()],
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=(int(source_number) if source_number not in (None, "") else 0) + SERIES_NUMBER_OFFSET,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=options.algorithm_name[:64],
        software_versions=f"autounet {__version__}",
        device_serial_number=(options.model_checksum or "none")[:64],
        content_description=options.series_description[:64],
        content_label="AUTOUNET",
        series_description=options.series_description[:64],
        plane_positions=[hd.PlanePositionSequence(hd.CoordinateSystemNames.PATIENT, [float(v) for v in p]) for p in positions],
        plane_orientation=hd.PlaneOrientationSequence(
            hd.CoordinateSystemNames.PATIENT, [float(v) for v in (*direction[:, 0], *direction[:, 1])]
        ),
        pixel_measures=hd.PixelMeasuresSequence(
            pixel_spacing=[float(geometry.spacing[1]), float(geometry.spacing[2])],
            slice_thickness=float(thickness) if thickness not in (None, "") else float(geometry.spacing[0]),
            spacing_between_slices=float(geometry.spacing[0]),
        ),
        specific_character_set=first.get("SpecificCharacterSet") or None,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            seg = hd.seg.Segmentation(**kwargs)
        except (ValueError, TypeError, AttributeError) as err:
            raise AutounetError(
                f"{volume.series.describe()}: highdicom refused to build the Segmentation ({err}); the source headers "
                "may be incomplete (patient/study attributes); re-export the series from the PACS"
            ) from None
    for warning in caught:
        logger.info("highdicom: %s", warning.message)
    return seg
