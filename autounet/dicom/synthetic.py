"""Write an array with a known geometry as a classic single-frame DICOM series (pydicom): the known truth for tests,
the NIfTI -> DICOM round trip and the DICOM benchmark. Not a converter for clinical use."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from autounet.dicom.headers import import_pydicom
from autounet.io import Geometry
from autounet.typing import PathType

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


def write_dicom_series(
    folder: PathType,
    data: np.ndarray,
    geometry: Geometry,
    *,
    modality: str = "CT",
    rescale: tuple[float, float] = (1.0, 0.0),
    positions: Sequence[Sequence[float]] | None = None,
    slice_thickness: float | None = None,
    reverse_instance_numbers: bool = False,
    series_description: str = "autounet synthetic",
    study_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    patient_id: str = "SYNTHETIC",
    file_prefix: str = "IM",
) -> list[Path]:
    """Write ``data`` ``(z, y, x)`` as one file per slice; returns the files in slice order.

    Parameters
    ----------
    folder : str or Path
        Created if missing; files are named ``IM00001.dcm`` ... in slice order (see ``file_prefix``).
    data : ndarray of shape (z, y, x)
        Values in modality units; stored as ``(value - intercept) / slope`` in int16.
    geometry : Geometry
        Array-order geometry (as :func:`autounet.io.read_image` returns): it becomes ImagePositionPatient,
        ImageOrientationPatient and PixelSpacing.
    modality : {"CT", "MR"}
    rescale : (slope, intercept)
    positions : sequence of (x, y, z), optional
        ImagePositionPatient per slice instead of the geometry's (irregular gaps, gantry tilt).
    slice_thickness : float, optional
        SliceThickness (default: the slice spacing).
    reverse_instance_numbers : bool
        Number the instances against the slice order (viewers must sort by position).
    series_description, study_uid, frame_of_reference_uid, patient_id
        Header values; UIDs are generated when not given.
    file_prefix : str
        File names are ``{file_prefix}00001.dcm`` ... (several series can share a folder).
    """
    pydicom = import_pydicom()
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    direction = geometry.direction_matrix[::-1, ::-1]  # world (x, y, z) per ITK axis (x, y, z)
    orientation = [float(v) for v in (*direction[:, 0], *direction[:, 1])]
    slope, intercept = rescale
    stored = np.round((np.asarray(data, dtype=np.float64) - intercept) / slope).astype(np.int16)
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    frame_uid = frame_of_reference_uid or generate_uid()
    sop_class = CT_IMAGE_STORAGE if modality == "CT" else MR_IMAGE_STORAGE
    count = data.shape[0]
    files = []
    for k in range(count):
        position = positions[k] if positions is not None else geometry.index_to_world(np.array([k, 0.0, 0.0]))[::-1]
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesDescription, ds.SeriesNumber = modality, series_description, 1
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Synthetic^Case", patient_id, "", "O"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.StudyID, ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.ReferringPhysicianName = "1", "20260101", "120000", "", ""
        ds.Manufacturer = "autounet synthetic"
        ds.InstanceNumber = count - k if reverse_instance_numbers else k + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [float(v) for v in position]
        ds.ImageOrientationPatient = orientation
        ds.PixelSpacing = [float(geometry.spacing[1]), float(geometry.spacing[2])]
        ds.SliceThickness = float(slice_thickness if slice_thickness is not None else geometry.spacing[0])
        ds.Rows, ds.Columns = int(data.shape[1]), int(data.shape[2])
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = float(slope), float(intercept)
        if modality == "CT":
            ds.RescaleType = "HU"
        ds.PixelData = np.ascontiguousarray(stored[k]).tobytes()
        path = folder / f"{file_prefix}{k + 1:05d}.dcm"
        ds.save_as(str(path), enforce_file_format=True)
        files.append(path)
    return files
