"""Bad dataset.json types (issue 20, item 8): an entry of the wrong type names the entry and the expected type (was a
traceback or a bare "error: images"); duplicate training entries are flagged by `check`; a PNG above Pillow's
decompression-bomb limit names the file and the limit in `import` (was a traceback)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image as PILImage

from autounet.cli import main
from autounet.dataset.demo import DemoSpec, make_demo_dataset


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return make_demo_dataset(tmp_path_factory.mktemp("demo"), DemoSpec(num_cases=3, seed=6))


def _edited(demo, folder, change):
    shutil.copytree(demo, folder)
    description = json.loads((folder / "dataset.json").read_text())
    change(description)
    (folder / "dataset.json").write_text(json.dumps(description))
    return folder


def _to_nnunet_v2(description):
    images = {entry["image"].split("/")[-1][:-7]: entry for entry in description["training"]}
    description.pop("modality"), description.pop("training")
    description.update(channel_names={"0": "MRI"}, labels={"background": 0, "organ": 1, "lesion": 2},
                       dataset={case: {"images": [e["image"]], "label": e["label"]} for case, e in images.items()})


CASES = [
    ("image_is_a_number", lambda d: d["training"][1].update(image=5),
     "training entry 1 has 'image' 5 (int); expected a file path (text) relative to the dataset folder"),
    ("label_is_a_list", lambda d: d["training"][0].update(label=["a.nii.gz"]),
     "training entry 0 has 'label' ['a.nii.gz'] (list); expected a file path (text)"),
    ("test_entry_without_path", lambda d: d.update(test=[{"label": "x.nii.gz"}]),
     "test entry 0 has 'image' None (NoneType); expected a file path (text)"),
    ("v2_entry_without_images", lambda d: (_to_nnunet_v2(d), d["dataset"]["demo_001"].pop("images")),
     "dataset entry 'demo_001' needs \"images\": a list of one file path per channel"),
    ("v2_dataset_not_a_map", lambda d: (_to_nnunet_v2(d), d.update(dataset=["demo_000"])),
     "'dataset' must map case ids to"),
]


@pytest.mark.parametrize("change, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("command", ["check", "fingerprint"])
def test_an_entry_of_the_wrong_type_is_named_with_the_expected_type(demo, tmp_path, capsys, change, words, command):
    dataset = _edited(demo, tmp_path / "data", change)
    arguments = [command, str(dataset), "--no-progress"]
    if command == "fingerprint":
        arguments += ["-o", str(tmp_path / "fp.json")]
    code = main(arguments)
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code == (1 if command == "check" else 2), text
    assert "Traceback" not in text and f"{dataset / 'dataset.json'}: " in text and words in text, text


def test_duplicate_training_entries_are_flagged(demo, tmp_path):
    dataset = _edited(demo, tmp_path / "data", lambda d: d.update(training=d["training"] + d["training"][:1],
                                                                     numTraining=4))
    assert main(["check", str(dataset), "--no-progress", "--json", str(tmp_path / "report.json")]) == 1
    problems = json.loads((tmp_path / "report.json").read_text())["problems"]
    duplicate = [p for p in problems if p["kind"] == "duplicate_case"]
    assert len(duplicate) == 1 and duplicate[0]["case_id"] == "demo_000"
    assert "appears 2 times among the training cases" in duplicate[0]["message"]
    assert "remove the duplicate entry" in duplicate[0]["fix"]


def test_a_decompression_bomb_png_names_the_file_and_the_limit(tmp_path, capsys, monkeypatch):
    for folder, value in (("images", 90), ("masks", 1)):
        (tmp_path / folder).mkdir()
        for case in ("a", "b"):
            PILImage.fromarray(np.full((60, 50), value, np.uint8)).save(tmp_path / folder / f"{case}.png")
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses above twice this: 3000 pixels here
    code = main(["import", "--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks"), "-o",
                 str(tmp_path / "out"), "--no-progress", "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert f"{tmp_path / 'images' / 'a.png'} has 3,000 pixels, above the decompression-bomb limit of 2,000 pixels" in err
    assert "cut it into smaller tiles" in err
    assert not (tmp_path / "out").exists()
