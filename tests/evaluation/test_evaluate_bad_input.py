"""Issue 9, evaluate stage: real Hippocampus labels, corrupted one way per case.

Every corruption either stops that case with a message naming the file (the other cases are still
evaluated) or is handled correctly, with a warning where the input is suspicious. The list is kept in
``docs/evaluation.md`` ("Bad input").
"""

from __future__ import annotations

import gzip
import math
import struct

import numpy as np
import pytest

from autounet.evaluation import evaluate_folders
from autounet.io import Geometry, read_image, write_image

#: Corruption -> what evaluate must do: ("fail", text in the message) or ("ok", text in the warning or "").
CORRUPTIONS = {
    "truncated_gzip": ("fail", "truncated or corrupt"),
    "zero_size": ("fail", "zero_size.nii.gz"),  # the io layer words it (zero-size or corrupt header)
    "probabilities": ("fail", "non-integer values"),
    "nan_inf": ("fail", "NaN or Inf"),
    "swapped_axes": ("fail", "differs from the reference's"),
    "flat_2d_among_3d": ("fail", "differs from the reference's"),
    "two_channels": ("fail", "2 channels"),
    "float_integer_values": ("ok", ""),
    "int64": ("ok", ""),
    "moved_origin": ("ok", "geometry differs"),
    "flipped_direction": ("ok", "direction differs"),
    "huge_spacing": ("ok", "spacing"),
    "empty_prediction": ("ok", ""),
    "label_out_of_range": ("ok", "[7]"),
    "negative_label": ("ok", "[-1]"),
    "non_ascii name with spaces": ("ok", ""),
}


def _corrupt(kind: str, labels: np.ndarray, geometry: Geometry, path) -> None:
    """Write the prediction for ``kind`` to ``path``."""
    if kind == "truncated_gzip":
        write_image(path, labels, geometry)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "zero_size":
        write_image(path, labels, geometry)
        raw = bytearray(gzip.decompress(path.read_bytes()))
        raw[42:44] = struct.pack("<h", 0)  # NIfTI-1 header dim[1] = 0
        path.write_bytes(gzip.compress(bytes(raw)))
    elif kind == "probabilities":
        write_image(path, labels.astype(np.float32) * 0.4, geometry)
    elif kind == "nan_inf":
        data = labels.astype(np.float32)
        data[0, 0, 0], data[0, 0, 1] = np.nan, np.inf
        # NRRD: ITK's NIfTI reader silently turns NaN/Inf into 0, so a NIfTI file could not carry them here.
        write_image(path.with_name(path.name.replace(".nii.gz", ".nrrd")), data, geometry)
    elif kind == "swapped_axes":
        write_image(path, np.ascontiguousarray(labels.transpose(2, 1, 0)), geometry)
    elif kind == "flat_2d_among_3d":
        write_image(path.with_name(path.name.replace(".nii.gz", ".png")), labels[labels.shape[0] // 2][None],
                    Geometry(spacing=(999.0, 1.0, 1.0), is_2d=True))
    elif kind == "two_channels":
        write_image(path, np.stack([labels, labels]), geometry)
    elif kind == "float_integer_values":
        write_image(path, labels.astype(np.float32), geometry)
    elif kind == "int64":
        write_image(path, labels.astype(np.int64), geometry)
    elif kind == "moved_origin":
        write_image(path, labels, Geometry(geometry.spacing, tuple(o + 5 for o in geometry.origin), geometry.direction))
    elif kind == "flipped_direction":
        flipped = tuple(-d if i == 0 else d for i, d in enumerate(geometry.direction))
        write_image(path, labels, Geometry(geometry.spacing, geometry.origin, flipped))
    elif kind == "huge_spacing":
        write_image(path, labels, Geometry((1e6, 1e6, 1e6), geometry.origin, geometry.direction))
    elif kind == "empty_prediction":
        write_image(path, np.zeros_like(labels), geometry)
    elif kind == "label_out_of_range":
        data = labels.copy()
        data[0, 0, 0] = 7
        write_image(path, data, geometry)
    elif kind == "negative_label":
        data = labels.astype(np.int16)
        data[0, 0, 0] = -1
        write_image(path, data, geometry)
    else:
        write_image(path, labels, geometry)


@pytest.fixture(scope="module")
def corrupted(hippocampus_dir, tmp_path_factory):
    """References: one real label file per corruption; predictions: that file corrupted."""
    root = tmp_path_factory.mktemp("bad input")
    sources = sorted(p for p in (hippocampus_dir / "labelsTr").glob("*.nii.gz") if not p.name.startswith("."))
    for source, kind in zip(sources, CORRUPTIONS):
        image = read_image(source)
        name = "Fälle mit Leerzeichen" if " " in kind else kind
        write_image(root / "gt" / f"{name}.nii.gz", image.data[0], image.geometry)
        _corrupt(kind, image.data[0], image.geometry, root / "pred" / f"{name}.nii.gz")
    result = evaluate_folders(root / "gt", root / "pred", progress=False)
    return result


@pytest.mark.integration
@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_each_corruption_fails_clearly_or_is_handled(corrupted, kind):
    outcome, text = CORRUPTIONS[kind]
    case_id = "Fälle mit Leerzeichen" if " " in kind else kind
    if outcome == "fail":
        assert case_id in corrupted.failures, f"{kind} was not reported"
        message = corrupted.failures[case_id]
        assert text in message and case_id in message  # names the file
        assert "Traceback" not in message
    else:
        case = {c.case_id: c for c in corrupted.cases}[case_id]
        assert all(not math.isnan(case.metrics[label]["Dice"]) for label in corrupted.labels)
        if text:
            assert text in corrupted.warnings[case_id]
        else:
            assert case_id not in corrupted.warnings


@pytest.mark.integration
def test_handled_corruptions_give_the_right_numbers(corrupted):
    cases = {c.case_id: c for c in corrupted.cases}
    for kind in ("float_integer_values", "int64", "moved_origin", "negative_label", "Fälle mit Leerzeichen"):
        assert cases[kind].metrics["2"]["Dice"] == 1.0
    assert cases["empty_prediction"].metrics["1"]["Dice"] == 0.0
    assert cases["empty_prediction"].metrics["1"]["HD95"] > 50  # the image diagonal in mm
    # Metrics use the reference's spacing, not the prediction's.
    assert cases["huge_spacing"].metrics["1"]["volume_pred"] == cases["huge_spacing"].metrics["1"]["volume_ref"] < 1e5
    assert corrupted.labels == ("1", "2")  # values only found in predictions (7) are not evaluated
    # The 2D PNG prediction is paired with its 3D reference by name (then rejected for its shape).
    assert corrupted.failures["flat_2d_among_3d"].startswith(str(corrupted.cases[0].prediction_file).rsplit("/", 1)[0])
