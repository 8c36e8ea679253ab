"""Datasets on disk: the MSD and nnU-Net v2 layouts behind one small interface, plus check, import and demo data."""

from autounet.dataset.dataset import Case, Dataset, DatasetDescription, load_dataset

__all__ = ["Case", "Dataset", "DatasetDescription", "load_dataset"]
