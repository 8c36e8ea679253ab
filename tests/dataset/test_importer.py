"""``autounet import``: tiny synthetic folders for every option and error, and the real DRIVE and ISBI 2012 trees."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from autounet.cli import main
from autounet.dataset import check_dataset, import_2d_dataset, load_dataset
from autounet.dataset.importer import parse_value_map
from autounet.dataset.pairing import compile_pattern
from autounet.errors import DatasetError
from autounet.fingerprint import compute_fingerprint
from autounet.io import read_image

SHAPE = (12, 10)


def _save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(array).save(path)
    return path


def _grey(seed: int, shape=SHAPE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _mask(seed: int, values=(0, 255), shape=SHAPE) -> np.ndarray:
    mask = np.full(shape, values[0], np.uint8)
    mask[2 + seed % 3 : 7, 3:8] = values[-1]
    if len(values) > 2:
        mask[0, :3] = values[1]
    return mask


def _folders(root: Path, cases=("a", "b", "c"), image_name="{}.png", mask_name="{}.png", rgb=False, values=(0, 255)):
    for i, case in enumerate(cases):
        image = np.stack([_grey(i), _grey(i + 10), _grey(i + 20)], axis=-1) if rgb else _grey(i)
        _save(root / "images" / image_name.format(case), image)
        _save(root / "masks" / mask_name.format(case), _mask(i, values))
    return root / "images", root / "masks"


def test_grey_png_with_binary_masks_round_trips(tmp_path):
    images, masks = _folders(tmp_path)
    result = import_2d_dataset(images, masks, tmp_path / "out", progress=False)
    assert (result.num_training, result.channel_names, result.labels) == (3, ("grey",), {"background": 0, "foreground": 1})
    assert result.value_map == {255: 1} and any("255 -> 1" in n for n in result.notes)
    dataset = load_dataset(tmp_path / "out")
    assert dataset.description.layout == "nnunet_v2" and dataset.case_ids == ["a", "b", "c"]
    for i, case in enumerate(dataset.training):
        np.testing.assert_array_equal(dataset.read_images(case).data[0, 0], _grey(i))  # lossless
        np.testing.assert_array_equal(dataset.read_label(case).data[0, 0], _mask(i) // 255)
    assert check_dataset(tmp_path / "out", progress=False).problems == []
    assert compute_fingerprint(dataset, workers=1, progress=False).label_stats[1]["case_fraction"] == 1.0


def test_rgb_tif_becomes_three_grey_channel_files_and_patterns_pair_names(tmp_path):
    images, masks = _folders(tmp_path, image_name="{}_training.tif", mask_name="{}_manual1.gif", rgb=True)
    result = import_2d_dataset(images, masks, tmp_path / "out", image_pattern="{case}_training.tif",
                               mask_pattern="{case}_manual1.gif", label_names=["background", "vessel"], progress=False)
    assert result.channel_names == ("R", "G", "B") and result.labels == {"background": 0, "vessel": 1}
    files = sorted(p.name for p in (tmp_path / "out" / "imagesTr").iterdir())
    assert files[:3] == ["a_0000.png", "a_0001.png", "a_0002.png"] and len(files) == 9
    image = load_dataset(tmp_path / "out").read_images(load_dataset(tmp_path / "out").case("b"))
    np.testing.assert_array_equal(image.data[:, 0], np.stack([_grey(1), _grey(11), _grey(21)]))


def test_patterns_are_guessed_from_shared_suffixes(tmp_path):
    images, masks = _folders(tmp_path, image_name="{}_img.png", mask_name="{}_seg.png")
    result = import_2d_dataset(images, masks, tmp_path / "out", progress=False)
    assert (result.image_pattern, result.mask_pattern) == ("{case}_img.png", "{case}_seg.png")
    assert load_dataset(tmp_path / "out").case_ids == ["a", "b", "c"]


def test_explicit_map_swaps_foreground_and_background(tmp_path):
    images, masks = _folders(tmp_path)
    import_2d_dataset(images, masks, tmp_path / "out", map_values=parse_value_map("0:1,255:0"),
                      label_names=["background", "membrane"], progress=False)
    dataset = load_dataset(tmp_path / "out")
    np.testing.assert_array_equal(dataset.read_label(dataset.case("a")).data[0, 0], (_mask(0) == 0).astype(np.uint8))


def test_unmapped_mask_values_name_the_files_and_the_fix(tmp_path):
    images, masks = _folders(tmp_path, values=(0, 128, 255))
    with pytest.raises(DatasetError, match=r"(?s)not mapped.*--map-values 0:0,128:1,255:2.*value 128 .*a\.png"):
        import_2d_dataset(images, masks, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    result = import_2d_dataset(images, masks, tmp_path / "out", map_values={128: 1, 255: 2}, progress=False)
    assert result.labels == {"background": 0, "label_1": 1, "label_2": 2}
    with pytest.raises(DatasetError, match="label names"):
        import_2d_dataset(images, masks, tmp_path / "out2", map_values={128: 1, 255: 2},
                          label_names=["background", "x"], progress=False)


def test_size_mismatch_names_both_files(tmp_path):
    images, masks = _folders(tmp_path)
    _save(masks / "b.png", _mask(1, shape=(10, 12)))
    with pytest.raises(DatasetError, match=r"b\.png: mask size \(10, 12\) differs from image b\.png size \(12, 10\)"):
        import_2d_dataset(images, masks, tmp_path / "out", progress=False)


def test_no_pairs_explains_patterns(tmp_path):
    _folders(tmp_path, image_name="img{}.png", mask_name="{}_mask.png")
    with pytest.raises(DatasetError, match=r"(?s)no image/mask pairs found.*--image-pattern"):
        import_2d_dataset(tmp_path / "images", tmp_path / "masks", tmp_path / "out", image_pattern="{case}.png",
                          progress=False)


def test_unpaired_files_are_listed_and_test_images_go_to_imagesTs(tmp_path):
    images, masks = _folders(tmp_path)
    _save(images / "lonely.png", _grey(5))
    _save(masks / "orphan.png", _mask(5))
    _save(tmp_path / "test" / "t1.png", _grey(6))
    result = import_2d_dataset(images, masks, tmp_path / "out", test_images=tmp_path / "test", progress=False)
    assert [p.name for p in result.unpaired_images] == ["lonely.png"]
    assert [p.name for p in result.unpaired_masks] == ["orphan.png"]
    dataset = load_dataset(tmp_path / "out")
    assert result.num_test == 1 and [c.case_id for c in dataset.test] == ["t1"]
    assert check_dataset(tmp_path / "out", progress=False).ok


def test_roi_masks_are_stored_and_optionally_applied(tmp_path):
    images, masks = _folders(tmp_path)
    roi = np.zeros(SHAPE, np.uint8)
    roi[1:11, 1:9] = 255
    for case in "abc":
        _save(tmp_path / "fov" / f"{case}_mask.gif", roi)
    import_2d_dataset(images, masks, tmp_path / "kept", roi_masks=tmp_path / "fov", progress=False)
    stored = read_image(tmp_path / "kept" / "roiTr" / "a.png").data[0, 0]
    np.testing.assert_array_equal(stored, (roi > 0).astype(np.uint8))
    np.testing.assert_array_equal(read_image(tmp_path / "kept" / "imagesTr" / "a_0000.png").data[0, 0], _grey(0))
    import_2d_dataset(images, masks, tmp_path / "zeroed", roi_masks=tmp_path / "fov", zero_outside_roi=True,
                      progress=False)
    zeroed = read_image(tmp_path / "zeroed" / "imagesTr" / "a_0000.png").data[0, 0]
    np.testing.assert_array_equal(zeroed, np.where(roi > 0, _grey(0), 0))
    assert json.loads((tmp_path / "zeroed" / "dataset.json").read_text())["autounet_import"]["zero_outside_roi"]


def test_link_mode_symlinks_files_that_need_no_conversion(tmp_path):
    images, masks = _folders(tmp_path, values=(0, 1))
    import_2d_dataset(images, masks, tmp_path / "out", link=True, progress=False)
    assert (tmp_path / "out" / "imagesTr" / "a_0000.png").is_symlink()
    assert (tmp_path / "out" / "labelsTr" / "a.png").is_symlink()  # 0/1 masks need no mapping
    assert check_dataset(tmp_path / "out", progress=False).problems == []


def test_existing_output_needs_overwrite(tmp_path):
    images, masks = _folders(tmp_path)
    import_2d_dataset(images, masks, tmp_path / "out", progress=False)
    with pytest.raises(DatasetError, match="not empty; choose another folder or pass --overwrite"):
        import_2d_dataset(images, masks, tmp_path / "out", progress=False)
    import_2d_dataset(images, masks, tmp_path / "out", overwrite=True, label_names=["bg", "fg"], progress=False)
    assert load_dataset(tmp_path / "out").description.labels == {"bg": 0, "fg": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "masks", "out"]  # no leftovers


def test_16_bit_and_float_images_stay_lossless(tmp_path):
    images, masks = _folders(tmp_path)
    deep = (np.arange(120, dtype=np.uint16).reshape(SHAPE) * 500)
    _save(images / "a.png", deep)
    import_2d_dataset(images, masks, tmp_path / "png16", progress=False)
    np.testing.assert_array_equal(read_image(tmp_path / "png16" / "imagesTr" / "a_0000.png").data[0, 0], deep)
    floats = np.linspace(-1.5, 2.5, 120, dtype=np.float32).reshape(SHAPE)
    (images / "a.png").unlink()
    _save(images / "a.tif", floats)
    result = import_2d_dataset(images, masks, tmp_path / "tif", progress=False)
    assert result.file_ending == ".tif"
    np.testing.assert_array_equal(read_image(tmp_path / "tif" / "imagesTr" / "a_0000.tif").data[0, 0], floats)
    assert check_dataset(tmp_path / "tif", progress=False).ok


def test_channel_count_and_colour_mask_errors(tmp_path):
    images, masks = _folders(tmp_path)
    _save(images / "c.png", np.stack([_grey(1)] * 3, axis=-1) + np.uint8(1) * np.arange(3, dtype=np.uint8))
    colour = np.zeros(SHAPE + (3,), np.uint8)
    colour[..., 0] = 255
    _save(masks / "b.png", colour)
    with pytest.raises(DatasetError, match=r"(?s)2 problem\(s\).*b\.png: colour mask.*cases c have 3 channel"):
        import_2d_dataset(images, masks, tmp_path / "out", progress=False)


@pytest.mark.parametrize("text", ["255", "a:1", "1:b"])
def test_bad_value_maps_are_explained(text):
    with pytest.raises(DatasetError, match="SOURCE:TARGET"):
        parse_value_map(text)


def test_pattern_needs_one_case_placeholder():
    with pytest.raises(DatasetError, match=r"must contain \{case\} exactly once"):
        compile_pattern("mask.png")


def test_cli_import(tmp_path, capsys):
    images, masks = _folders(tmp_path)
    code = main(["import", "--images", str(images), "--masks", str(masks), "-o", str(tmp_path / "out"),
                 "--map-values", "255:1", "--label-names", "background,cell", "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "imported 3 training and 0 test case(s)" in out and "1 cell" in out and "255 -> 1" in out
    assert main(["import", "--images", str(images), "--masks", str(masks), "-o", str(tmp_path / "out")]) == 2
    assert "--overwrite" in capsys.readouterr().err


def _import_load_check_fingerprint(output: Path, expected_cases: int, expected_labels: dict, channels: int):
    dataset = load_dataset(output)
    assert len(dataset.training) == expected_cases
    assert dataset.description.labels == expected_labels and dataset.num_channels == channels
    report = check_dataset(output, progress=False)
    assert report.ok and report.problems == [], report.format()
    fingerprint = compute_fingerprint(dataset, workers=1, progress=False)
    assert fingerprint.is_2d and fingerprint.num_cases == expected_cases
    return dataset, fingerprint


@pytest.mark.integration
def test_import_drive(drive_dir, tmp_path, capsys):
    training = drive_dir / "training"
    code = main(["import", "--images", str(training / "images"), "--masks", str(training / "1st_manual"),
                 "--roi-masks", str(training / "mask"), "--label-names", "background,vessel",
                 "-o", str(tmp_path / "DRIVE"), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert "'{case}_training.tif' with '{case}_manual1.gif'" in capsys.readouterr().out
    dataset, fingerprint = _import_load_check_fingerprint(tmp_path / "DRIVE", 20, {"background": 0, "vessel": 1}, 3)
    source = read_image(training / "images" / "21_training.tif").data
    np.testing.assert_array_equal(dataset.read_images(dataset.case("21")).data, source)  # RGB kept exactly
    vessels = read_image(training / "1st_manual" / "21_manual1.gif").data
    np.testing.assert_array_equal(dataset.read_label(dataset.case("21")).data, vessels // 255)
    assert len(list((tmp_path / "DRIVE" / "roiTr").iterdir())) == 20
    assert 0.05 < fingerprint.label_stats[1]["voxels"] / sum(s["voxels"] for s in fingerprint.label_stats.values()) < 0.2


@pytest.mark.integration
def test_import_isbi_with_membrane_as_foreground(isbi_dir, tmp_path):
    result = import_2d_dataset(
        isbi_dir / "train" / "image", isbi_dir / "train" / "label", tmp_path / "ISBI",
        map_values=parse_value_map("0:1,255:0"), label_names=["background", "membrane"],
        test_images=isbi_dir / "test", progress=False,
    )
    assert (result.num_training, result.num_test, result.file_ending) == (24, 30, ".png")
    dataset, fingerprint = _import_load_check_fingerprint(tmp_path / "ISBI", 24, {"background": 0, "membrane": 1}, 1)
    assert len(dataset.test) == 30
    label = read_image(isbi_dir / "train" / "label" / "3.png").data
    np.testing.assert_array_equal(dataset.read_label(dataset.case("3")).data, (label == 0).astype(np.uint8))
    membrane = fingerprint.label_stats[1]["voxels"] / (24 * 512 * 512)
    assert 0.1 < membrane < 0.4  # membranes are the thin minority class
