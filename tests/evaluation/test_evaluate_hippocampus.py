"""Real data: Hippocampus labels against themselves and against a copy shifted by one voxel (1 mm)."""

from __future__ import annotations

import numpy as np
import pytest

from autounet.evaluation import evaluate_folders
from autounet.io import read_image, write_image

NUM_CASES = 6


@pytest.fixture
def hippocampus_labels(hippocampus_dir, tmp_path):
    """A handful of label files linked into a temporary folder."""
    sources = sorted(p for p in (hippocampus_dir / "labelsTr").glob("*.nii.gz") if not p.name.startswith("."))[:NUM_CASES]
    folder = tmp_path / "labels"
    folder.mkdir()
    for path in sources:
        (folder / path.name).symlink_to(path)
    return folder


@pytest.mark.integration
def test_labels_against_themselves(hippocampus_labels):
    result = evaluate_folders(hippocampus_labels, hippocampus_labels, progress=False)
    assert len(result.cases) == NUM_CASES and result.labels == ("1", "2")
    for label in result.labels:
        assert result.mean[label]["Dice"] == 1.0
        assert result.mean[label]["HD95"] == 0.0 and result.mean[label]["ASSD"] == 0.0
        assert result.mean[label]["NSD"] == 1.0


@pytest.mark.integration
@pytest.mark.parametrize("axis", [0, 2])
def test_one_voxel_shift_gives_hd95_of_1mm(hippocampus_labels, tmp_path, axis):
    shifted = tmp_path / "shifted"
    for path in hippocampus_labels.iterdir():
        image = read_image(path)
        assert image.geometry.spacing == pytest.approx((1.0, 1.0, 1.0))
        # No Hippocampus label touches the array edge, so rolling moves every voxel and wraps none.
        write_image(shifted / path.name, np.roll(image.data[0], 1, axis=axis), image.geometry)
    result = evaluate_folders(hippocampus_labels, shifted, progress=False)
    assert not result.failures and not result.warnings
    for case in result.cases:
        for label in result.labels:
            assert case.metrics[label]["HD95"] == pytest.approx(1.0), (case.case_id, label)
            assert case.metrics[label]["NSD"] == 1.0 and case.metrics[label]["Dice"] < 1.0
