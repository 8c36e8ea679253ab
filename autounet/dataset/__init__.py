"""Datasets on disk: the MSD and nnU-Net v2 layouts behind one small interface, plus check, import and demo data."""

from autounet.dataset.check import check_dataset
from autounet.dataset.check_report import CheckReport, Problem
from autounet.dataset.dataset import Case, Dataset, DatasetDescription, load_dataset
from autounet.dataset.importer import ImportResult, import_2d_dataset

__all__ = [
    "Case",
    "CheckReport",
    "Dataset",
    "DatasetDescription",
    "ImportResult",
    "Problem",
    "check_dataset",
    "import_2d_dataset",
    "load_dataset",
]
