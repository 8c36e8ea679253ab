"""Map a prediction on preprocessed data back onto the original image: resample, arg-max, un-crop, un-transpose."""

from __future__ import annotations

from typing import Any, Mapping, Sequence, overload, Literal

import numpy as np

from autounet.planners.plans import ResamplingPlan
from autounet.preprocessing.properties import CaseProperties
from autounet.preprocessing.resampling import ResamplingBackend, resample_labels, resample_probabilities


@overload
def restore_to_original(
    prediction: np.ndarray,
    properties: CaseProperties | Mapping[str, Any],
    *,
    label_values: Sequence[int] | None = ...,
    return_probabilities: Literal[False] = ...,
    resampling: ResamplingPlan | None = ...,
    backend: ResamplingBackend = ...,
) -> np.ndarray: ...


@overload
def restore_to_original(
    prediction: np.ndarray,
    properties: CaseProperties | Mapping[str, Any],
    *,
    label_values: Sequence[int] | None = ...,
    return_probabilities: Literal[True],
    resampling: ResamplingPlan | None = ...,
    backend: ResamplingBackend = ...,
) -> tuple[np.ndarray, np.ndarray]: ...


def restore_to_original(
    prediction: np.ndarray,
    properties: CaseProperties | Mapping[str, Any],
    *,
    label_values: Sequence[int] | None = None,
    return_probabilities: bool = False,
    resampling: ResamplingPlan | None = None,
    backend: ResamplingBackend = "auto",
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Bring a prediction for a preprocessed case back to the original file's grid.

    Class probabilities are resampled linearly to the cropped shape (nearest-neighbour along a separately
    resampled coarse axis, as nnU-Net), arg-maxed, placed into the crop box of a background-filled array and
    transposed back. A segmentation is resampled per label the same way preprocessing resamples labels.

    Parameters
    ----------
    prediction : ndarray
        Either class probabilities or logits of float dtype, shape (C, *spatial), or a segmentation of
        integer/bool dtype, shape ``spatial`` or (1, *spatial). ``spatial`` is the preprocessed shape
        (``properties.shape_after_resampling``; (1, y, x)-style for 2D images).
    properties : CaseProperties or dict
        From :func:`~autounet.preprocessing.preprocess_case` or the store.
    label_values : sequence of int, optional
        Label value of each probability channel (default: channel index; e.g. ``plans.label_values``).
    return_probabilities : bool
        Also return the probabilities on the original grid (background channel 1 outside the crop box).
    resampling : ResamplingPlan, optional
        Uses ``order_z`` and ``anisotropy_threshold``; the configuration's plan, nnU-Net's defaults if omitted.
    backend : {"auto", "reference", "separable"}

    Returns
    -------
    segmentation : ndarray of shape ``properties.original_shape``
        uint8 when the labels fit, else int16/int32; in the original file's array order, ready for
        ``autounet.io.write_image(path, segmentation, properties.geometry)``.
    probabilities : ndarray of float32, shape (C, *original_shape)
        Only with ``return_probabilities=True``.

    Examples
    --------
    >>> props = CaseProperties(case_id="a", original_shape=(1, 4, 6), spacing=(999.0, 1.0, 1.0), origin=(0, 0, 0),
    ...     direction=(1, 0, 0, 0, 1, 0, 0, 0, 1), is_2d=True, transpose_forward=(0, 1, 2),
    ...     transpose_backward=(0, 1, 2), shape_before_cropping=(1, 4, 6), crop_box=((0, 1), (1, 3), (2, 5)),
    ...     shape_before_resampling=(1, 2, 3), spacing_before_resampling=(999.0, 1.0, 1.0),
    ...     shape_after_resampling=(1, 2, 3), spacing_after_resampling=(999.0, 1.0, 1.0))
    >>> probabilities = np.zeros((2, 1, 2, 3), np.float32); probabilities[1, 0, 0, 1] = 1
    >>> restore_to_original(probabilities, props)[0]
    array([[0, 0, 0, 0, 0, 0],
           [0, 0, 0, 1, 0, 0],
           [0, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0]], dtype=uint8)
    """
    if not isinstance(properties, CaseProperties):
        properties = CaseProperties.from_dict(properties)
    prediction = np.asarray(prediction)
    is_segmentation = prediction.dtype.kind in "biu"
    if is_segmentation and prediction.ndim == len(properties.shape_after_resampling) + 1:
        if prediction.shape[0] != 1:
            raise ValueError(f"a segmentation needs shape {properties.shape_after_resampling} or (1, ...), got {prediction.shape}")
        prediction = prediction[0]
    spatial = prediction.shape if is_segmentation else prediction.shape[1:]
    if tuple(spatial) != tuple(properties.shape_after_resampling):
        kind = "segmentation" if is_segmentation else "probabilities (C, *spatial)"
        raise ValueError(
            f"{kind} of spatial shape {tuple(spatial)} does not match case {properties.case_id!r}, preprocessed to "
            f"{properties.shape_after_resampling}; pass the prediction for this case at its preprocessed size"
        )
    plan = resampling or ResamplingPlan()
    shape_cropped = properties.shape_before_resampling
    after, before = properties.spacing_after_resampling, properties.spacing_before_resampling
    box = tuple(slice(start, stop) for start, stop in properties.crop_box)
    backward = properties.transpose_backward

    probabilities_full = None
    if is_segmentation:
        cropped = resample_labels(prediction, shape_cropped, after, before, plan, backend)
        values = np.unique(cropped)
        out_dtype = _label_dtype(int(values.min(initial=0)), int(values.max(initial=0)))
    else:
        values = np.arange(prediction.shape[0]) if label_values is None else np.asarray(label_values)
        if values.size != prediction.shape[0]:
            raise ValueError(f"{values.size} label values given for {prediction.shape[0]} probability channels")
        probabilities = resample_probabilities(prediction, shape_cropped, after, before, plan, backend)
        out_dtype = _label_dtype(int(values.min()), int(values.max()))
        cropped = values[np.argmax(probabilities, axis=0)]
        if return_probabilities:
            probabilities_full = np.zeros((prediction.shape[0], *properties.shape_before_cropping), dtype=np.float32)
            background = np.flatnonzero(values == 0)
            if background.size:
                probabilities_full[background[0]] = 1.0
            probabilities_full[(slice(None), *box)] = probabilities
            probabilities_full = np.ascontiguousarray(probabilities_full.transpose(0, *(a + 1 for a in backward)))
    segmentation = np.zeros(properties.shape_before_cropping, dtype=out_dtype)
    segmentation[box] = cropped
    segmentation = np.ascontiguousarray(segmentation.transpose(backward))
    if return_probabilities:
        if probabilities_full is None:
            raise ValueError("return_probabilities needs class probabilities, not a segmentation")
        return segmentation, probabilities_full
    return segmentation


def _label_dtype(low: int, high: int) -> np.dtype:
    if low >= 0 and high <= np.iinfo(np.uint8).max:
        return np.dtype(np.uint8)
    if np.iinfo(np.int16).min <= low and high <= np.iinfo(np.int16).max:
        return np.dtype(np.int16)
    return np.dtype(np.int32)
