"""Names from files become paths only through autounet.safe_names."""

from __future__ import annotations

import pytest

from autounet.safe_names import UnsafeNameError, checked_name, child_path, name_problem


@pytest.mark.parametrize(
    "name",
    ["hippocampus_001", "21_training", "0", "BraTS-GLI-00001-000", "case 01", "Müller_01", "a+b=c@d,(1)[2]", "x" * 150],
)
def test_ordinary_names_pass(name):
    assert checked_name(name, "case id") == name


@pytest.mark.parametrize(
    "name, reason",
    [
        ("../../../x", "path separator"),
        ("/etc/passwd", "path separator"),
        ("..\\evil", "path separator"),
        ("..", "relative path component"),
        (".", "relative path component"),
        ("", "empty"),
        ("a\x00b", "NUL"),
        (".hidden", "starts with '.'"),
        ("-rf", "starts with '-'"),
        ("name.", "ends with '.'"),
        ("name ", "ends with ' '"),
        ("x" * 151, "at most 150"),
        ("a:b", "not allowed"),
        ("a*b", "not allowed"),
        ("tab\tname", "not allowed"),
        (5, "int"),
        (None, "NoneType"),
    ],
)
def test_unsafe_names_are_refused_with_the_reason_and_the_source(name, reason, tmp_path):
    source = tmp_path / "dataset.json"
    with pytest.raises(UnsafeNameError) as caught:
        checked_name(name, "case id", source)
    message = str(caught.value)
    assert reason in message
    assert str(source) in message
    assert "rename" in message
    assert name_problem(name) is not None


def test_child_path_stays_inside_the_folder(tmp_path):
    assert child_path(tmp_path, "case_1").parent == tmp_path
    with pytest.raises(UnsafeNameError):
        child_path(tmp_path, "../case_1")
