"""No silent destruction of inputs (issue 20, item 2): ``autounet import -o`` equal to, inside or containing an input
folder is refused with or without ``--overwrite`` (and ``--link``), and the source images and masks stay intact."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage

from autounet.cli import main


def _folders(root):
    for index, case in enumerate(("a", "b")):
        for folder, array in (("images", np.full((6, 5), 40 + index, np.uint8)), ("masks", np.eye(6, 5, dtype=np.uint8))):
            (root / folder).mkdir(parents=True, exist_ok=True)
            PILImage.fromarray(array).save(root / folder / f"{case}.png")
    return root / "images", root / "masks"


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("transfer", ["--copy", "--link"])
@pytest.mark.parametrize("target", ["images", "masks", "parent", "inside_images"])
def test_import_never_replaces_a_folder_holding_its_inputs(tmp_path, capsys, target, transfer):
    images, masks = _folders(tmp_path / "data")
    before = _snapshot(tmp_path / "data")
    output = {"images": images, "masks": masks, "parent": tmp_path / "data", "inside_images": images / "dataset"}[target]
    code = main(["import", "--images", str(images), "--masks", str(masks), "-o", str(output), "--overwrite", transfer,
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"the output folder {output}" in err and "the input folder (--" in err, err
    assert "Choose an output folder outside the inputs" in err
    assert _snapshot(tmp_path / "data") == before
    assert not list(tmp_path.glob("data/.*"))  # no partial or old folder left behind


def test_a_separate_output_is_still_replaced_with_overwrite(tmp_path):
    images, masks = _folders(tmp_path / "data")
    for _ in range(2):
        assert main(["import", "--images", str(images), "--masks", str(masks), "-o", str(tmp_path / "ds"),
                     "--overwrite", "--no-progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "ds" / "imagesTr").iterdir()) == ["a_0000.png", "b_0000.png"]
