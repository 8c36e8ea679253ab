"""DICOM in, DICOM-SEG out: read scanner series (pydicom), write Segmentations (highdicom) with a geometry proof,
and import studies with DICOM-SEG/RTSTRUCT labels as datasets. pydicom and highdicom (the ``dicom`` extra) are
imported only when a DICOM file is actually read or written."""

from autounet.dicom.discovery import DicomSeries, discover
from autounet.dicom.geometry_proof import GeometryProofError, prove_seg_geometry
from autounet.dicom.import_dataset import DicomImportResult, import_dicom_dataset
from autounet.dicom.seg_writer import SegOptions, SegWriteResult, write_dicom_seg
from autounet.dicom.series import DicomVolume, read_dicom_series, read_dicom_series_geometry

__all__ = [
    "DicomImportResult",
    "DicomSeries",
    "DicomVolume",
    "GeometryProofError",
    "SegOptions",
    "SegWriteResult",
    "discover",
    "import_dicom_dataset",
    "prove_seg_geometry",
    "read_dicom_series",
    "read_dicom_series_geometry",
    "write_dicom_seg",
]
