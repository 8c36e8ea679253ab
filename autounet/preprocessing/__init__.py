"""Preprocessing: transpose, crop, normalise and resample cases as planned, store them, and map predictions back.

Training data: :func:`preprocess_dataset` writes ``<output>/<data_identifier>/`` folders that
:func:`open_preprocessed` reads. New images at inference go through the same :func:`preprocess_case`,
and :func:`restore_to_original` puts a prediction back onto the original image grid.
"""

from autounet.preprocessing.case import preprocess_case, target_spacing
from autounet.preprocessing.foreground import sample_foreground_locations
from autounet.preprocessing.normalization import NORMALIZERS, Normalizer, normalize_channel, register_normalizer
from autounet.preprocessing.pipeline import configuration_hash, preprocess_dataset
from autounet.preprocessing.properties import PREPROCESSING_VERSION, CaseProperties
from autounet.preprocessing.resampling import (
    RESAMPLING_BACKENDS,
    compute_new_shape,
    resample_data,
    resample_labels,
    resample_probabilities,
)
from autounet.preprocessing.restore import restore_to_original
from autounet.preprocessing.store import PreprocessedStore, open_preprocessed

__all__ = [
    "CaseProperties",
    "NORMALIZERS",
    "Normalizer",
    "PREPROCESSING_VERSION",
    "PreprocessedStore",
    "RESAMPLING_BACKENDS",
    "compute_new_shape",
    "configuration_hash",
    "normalize_channel",
    "open_preprocessed",
    "preprocess_case",
    "preprocess_dataset",
    "register_normalizer",
    "resample_data",
    "resample_labels",
    "resample_probabilities",
    "restore_to_original",
    "sample_foreground_locations",
    "target_spacing",
]
