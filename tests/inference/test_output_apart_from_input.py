"""No silent destruction of inputs (issue 20, item 2): ``predict -o`` equal to, inside or containing ``-i`` is refused
before the model is loaded, with the reason and a folder to use instead; the input images stay as they were."""

from __future__ import annotations

import pytest

from autounet.cli import main

from .conftest import write_case


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("layout", ["same", "inside", "containing"])
def test_predict_refuses_an_output_that_overlaps_the_input(tmp_path, results_3d, capsys, layout):
    images = tmp_path / "scans"
    write_case(images / "patient1.nii.gz")
    write_case(images / "patient2.nii.gz", seed=1)
    output = {"same": images, "inside": images / "labels", "containing": tmp_path}[layout]
    before = _snapshot(tmp_path / "scans")
    code = main(["predict", "-i", str(images), "-o", str(output), "-m", str(results_3d), "--device", "cpu",
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    relation = {"same": "is the input folder", "inside": "is inside the input folder",
                "containing": "contains the input folder"}[layout]
    assert f"the output folder {output} {relation} (-i {images})" in err, err
    assert "Choose an output folder outside the inputs" in err and "Traceback" not in err
    assert "model:" not in capsys.readouterr().out  # refused before the model was loaded
    assert _snapshot(tmp_path / "scans") == before
    assert not (images / "labels").exists()


def test_predict_into_an_existing_file_is_refused_before_the_model_loads(tmp_path, results_3d, capsys, monkeypatch):
    """Issue 20, item 10: was a bare "[Errno 17] File exists" after loading the model."""
    from autounet.inference import Predictor

    write_case(tmp_path / "in" / "case.nii.gz")
    (tmp_path / "result.nii.gz").write_bytes(b"not a folder")
    monkeypatch.setattr(Predictor, "from_model_folder", classmethod(lambda *a, **k: pytest.fail("model loaded")))
    code = main(["predict", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "result.nii.gz"), "-m", str(results_3d)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"the output {tmp_path / 'result.nii.gz'} is an existing file, not a folder; give a folder path" in err
    assert (tmp_path / "result.nii.gz").read_bytes() == b"not a folder"


def test_predict_files_refuses_to_write_into_the_folder_of_an_input(tmp_path, results_3d):
    from autounet.inference import Predictor
    from autounet.separate_folders import OutputFolderError

    write_case(tmp_path / "scans" / "patient1.nii.gz")
    before = _snapshot(tmp_path / "scans")
    predictor = Predictor.from_model_folder(results_3d, device="cpu", mirroring=False)
    with pytest.raises(OutputFolderError, match="is the input folder"):
        predictor.predict_files([tmp_path / "scans" / "patient1.nii.gz"], tmp_path / "scans", progress=False)
    assert _snapshot(tmp_path / "scans") == before
