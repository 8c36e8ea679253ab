"""Messages with the fix (issue 20, item 10): each says what is wrong and what to do, before any slow work starts.
(The checkpoint refusal without torch's unsafe hint is in tests/test_hostile_values.py, ``predict -o FILE`` in
tests/inference/test_output_apart_from_input.py.)"""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from autounet.cli import main


def test_debug_also_works_after_the_command(tmp_path, capsys):
    (tmp_path / "scans").mkdir()
    arguments = ["predict", "-i", str(tmp_path / "scans"), "-o", str(tmp_path / "scans"), "-m", str(tmp_path)]
    assert main(arguments) == 2 and "Traceback" not in capsys.readouterr().err
    from autounet.separate_folders import OutputFolderError

    with pytest.raises(OutputFolderError):  # --debug: the traceback, wherever the option stands
        main([*arguments, "--debug"])
    with pytest.raises(OutputFolderError):
        main(["--debug", *arguments])


def test_check_of_a_missing_folder_says_to_fix_the_path(tmp_path):
    assert main(["check", str(tmp_path / "nowhere"), "--no-progress", "--json", str(tmp_path / "r.json")]) == 1
    (problem,) = json.loads((tmp_path / "r.json").read_text())["problems"]
    assert "dataset folder not found" in problem["message"]
    assert problem["fix"].startswith(f"check the path: {tmp_path / 'nowhere'} does not exist")
    assert "fix dataset.json" not in problem["fix"]
    (tmp_path / "empty").mkdir()
    assert main(["check", str(tmp_path / "empty"), "--no-progress", "--json", str(tmp_path / "r.json")]) == 1
    (problem,) = json.loads((tmp_path / "r.json").read_text())["problems"]
    assert "autounet import" in problem["fix"] and "fix dataset.json" not in problem["fix"]


#: Reads the file in a process whose address space is capped at 3 GB: a reader that believes the header allocates
#: 16 GB and fails (or is refused) there instead of exhausting the machine.
_READ_CAPPED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 * 1024**3, 3 * 1024**3))
from autounet.io import read_image
try:
    read_image(sys.argv[1])
except Exception as err:
    print(type(err).__name__, err)
"""


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_a_header_declaring_a_huge_image_says_so(tmp_path, suffix):
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 4, 4), np.int16)), str(tmp_path / "small.nii"))
    data = bytearray((tmp_path / "small.nii").read_bytes())
    data[40:56] = struct.pack("<8h", 3, 2000, 2000, 2000, 1, 1, 1, 1)  # 2000**3 int16 voxels: 16 GB
    path = tmp_path / f"huge{suffix}"
    path.write_bytes(gzip.compress(bytes(data)) if suffix == ".nii.gz" else bytes(data))
    result = subprocess.run([sys.executable, "-c", _READ_CAPPED, str(path)], capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.startswith(f"ImageReadError {path}: the header declares 2000 x 2000 x 2000 voxels of 16 bits "
                                    "(16 GB) but the file has "), result.stdout + result.stderr
    assert "the header's image size is wrong or the file was cut short" in result.stdout
    assert "truncated or corrupt" not in result.stdout
