"""Memory of one case is bounded by a small multiple of its input and output size."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from autounet.planners.plans import ChannelNormalization
from autounet.preprocessing import preprocess_case

from .conftest import make_case, make_plans

#: Peak extra memory allowed while preprocessing one case, in units of (float32 input + output) bytes.
#: Measured 1.6-1.9 (resampling with labels, two channels); the bound leaves room for NumPy versions.
MAX_PEAK_FACTOR = 3.0


@pytest.mark.parametrize("target, use_mask", [((1.5, 1.0, 1.0), False), ((3.0, 0.6, 0.6), True)])
def test_peak_memory_of_one_case_is_a_small_multiple_of_its_size(target, use_mask):
    plans = make_plans(spacing_3d=target, normalization=(ChannelNormalization("zscore", use_mask=use_mask),) * 2)
    image, label = make_case(shape=(48, 160, 160), spacing=(3.0, 0.8, 0.8), channels=2, body_margin=4)
    tracemalloc.start()
    try:
        data, seg, _ = preprocess_case(image, plans, "3d_fullres", label)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    case_bytes = image.data.size * np.dtype(np.float32).itemsize + data.nbytes + seg.nbytes
    assert peak < MAX_PEAK_FACTOR * case_bytes
