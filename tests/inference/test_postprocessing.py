"""Post-processing decisions on constructed examples, the JSON round trip and applying a decision."""

from __future__ import annotations

import json

import numpy as np
import pytest

from autounet.inference.postprocessing import (
    PostprocessingDecision,
    PostprocessingError,
    apply_postprocessing,
    determine_postprocessing,
    determine_postprocessing_for_folder,
    keep_largest_component,
    load_postprocessing,
)
from autounet.io import Geometry, write_image


def _blank():
    return np.zeros((1, 12, 40), np.uint8)


def _case_with_islands():
    """Reference: label 1 block and label 2 block. Prediction: both right, plus a spurious island of label 1."""
    reference = _blank()
    reference[0, 2:6, 2:10] = 1
    reference[0, 2:6, 20:26] = 2  # smaller than the label-1 block
    prediction = reference.copy()
    prediction[0, 9:11, 35:38] = 1  # island, far from everything
    return reference, prediction


def test_keep_largest_component_keeps_ties_and_other_labels():
    seg = np.array([[[1, 0, 1, 2, 0, 1, 1]]])
    np.testing.assert_array_equal(keep_largest_component(seg, 1), [[[0, 0, 0, 2, 0, 1, 1]]])
    tie = np.array([[[1, 1, 0, 1, 1]]])
    np.testing.assert_array_equal(keep_largest_component(tie, 1), tie)
    assert keep_largest_component(np.zeros((1, 2, 2), np.uint8), 1).sum() == 0


def test_full_connectivity_joins_diagonal_voxels():
    seg = np.zeros((1, 3, 3), np.uint8)
    seg[0, 0, 0] = seg[0, 1, 1] = seg[0, 2, 2] = 1
    np.testing.assert_array_equal(keep_largest_component(seg, 1), seg)


def test_islands_of_one_label_are_removed_for_that_label():
    cases = [("a", *_case_with_islands()), ("b", *_case_with_islands())]
    decision = determine_postprocessing(cases, labels=[1, 2])
    # all foreground together: the label-2 block is a separate component and would be deleted -> label 2 worse
    assert not decision.keep_largest_foreground
    assert decision.keep_largest_labels == (1,)
    assert decision.dice_after["1"] == 1.0 and decision.dice_before["1"] < 1.0
    assert decision.dice_after["2"] == decision.dice_before["2"] == 1.0
    assert decision.dice_after["foreground_mean"] > decision.dice_before["foreground_mean"]


def test_foreground_filter_is_chosen_when_it_helps_every_label():
    reference = _blank()
    reference[0, 2:6, 2:10] = 1
    reference[0, 2:6, 10:14] = 2  # touching: one foreground component
    prediction = reference.copy()
    prediction[0, 10, 30] = 2  # spurious island of label 2
    prediction[0, 10, 36] = 1  # and of label 1
    decision = determine_postprocessing([("a", reference, prediction)], labels=[1, 2])
    assert decision.keep_largest_foreground
    assert decision.keep_largest_labels == ()  # after the foreground filter there is nothing left to gain


def test_nothing_is_chosen_when_the_largest_component_is_wrong():
    reference = _blank()
    reference[0, 1:3, 1:3] = 1  # small true object
    reference[0, 8:11, 30:39] = 1  # large true object: the prediction finds both
    decision = determine_postprocessing([("a", reference, reference.copy())], labels=[1])
    assert not decision.changes_anything
    assert "no post-processing" in decision.describe()


def test_empty_cases_do_not_count():
    reference, prediction = _case_with_islands()
    empty = _blank()
    decision = determine_postprocessing([("a", reference, prediction), ("b", empty, empty)], labels=[1, 2])
    assert decision.keep_largest_labels == (1,) and decision.num_cases == 2


def test_shape_mismatch_and_no_cases_are_explained():
    with pytest.raises(ValueError, match="case a: reference shape"):
        determine_postprocessing([("a", np.zeros((1, 2, 2)), np.zeros((1, 3, 2)))], labels=[1])
    with pytest.raises(ValueError, match="no cross-validation cases"):
        determine_postprocessing([], labels=[1])


def test_decision_round_trips_through_json_and_applies(tmp_path):
    decision = PostprocessingDecision(True, (2,), {"1": 0.5, "foreground_mean": float("nan")}, {"1": 0.6}, ("3d_fullres",))
    path = decision.save(tmp_path)
    loaded = load_postprocessing(path)
    assert loaded.keep_largest_foreground and loaded.keep_largest_labels == (2,)
    assert np.isnan(loaded.dice_before["foreground_mean"]) and loaded.configurations == ("3d_fullres",)
    assert json.loads(path.read_text())["connectivity"] == "full"
    reference, prediction = _case_with_islands()
    only_labels = PostprocessingDecision(keep_largest_labels=(1,))
    np.testing.assert_array_equal(apply_postprocessing(prediction, only_labels), reference)
    assert apply_postprocessing(prediction, None) is prediction


@pytest.mark.parametrize(
    "content, match",
    [
        ({"keep_largest_foreground": True}, "postprocessing_version"),
        ({"postprocessing_version": 1, "keep_largest_labels": [1]}, "expected 'keep_largest_foreground'"),
        ({"postprocessing_version": 1, "keep_largest_foreground": "yes", "keep_largest_labels": []}, "true or false"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_bad_files_are_refused(tmp_path, content, match):
    (tmp_path / "postprocessing.json").write_text(json.dumps(content))
    with pytest.raises(PostprocessingError, match=match):
        load_postprocessing(tmp_path)


def test_missing_file_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="find-best"):
        load_postprocessing(tmp_path / "postprocessing.json")


def test_decision_from_folders(tmp_path):
    geometry = Geometry(spacing=(999.0, 1.0, 1.0), is_2d=True)
    for index in range(2):
        reference, prediction = _case_with_islands()
        write_image(tmp_path / "ref" / f"c{index}.png", reference, geometry)
        write_image(tmp_path / "pred" / f"c{index}.png", prediction, geometry)
    decision = determine_postprocessing_for_folder(tmp_path / "ref", tmp_path / "pred", [1, 2], output=tmp_path / "pred")
    assert decision.keep_largest_labels == (1,)
    assert load_postprocessing(tmp_path / "pred").keep_largest_labels == (1,)
    (tmp_path / "other").mkdir()
    write_image(tmp_path / "other" / "c0.png", _blank(), geometry)
    with pytest.raises(FileNotFoundError, match="no reference for 1 prediction"):
        determine_postprocessing_for_folder(tmp_path / "other", tmp_path / "pred", [1])
