"""The manifest library (issue 20, item 7; also used for model packages): relative paths only, every changed, missing
or added file named, a hostile or newer manifest refused."""

from __future__ import annotations

import json

import pytest

from autounet.model_manifest import (
    MANIFEST_FILE,
    ModelManifestError,
    read_manifest,
    relative_problem,
    verify_manifest,
    write_manifest,
)


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "plans.json").write_text("{}")
    (tmp_path / "a" / "b" / "weights.pt").write_bytes(b"\0" * 100)
    return tmp_path


def test_round_trip_and_every_kind_of_difference_is_named(folder):
    path = write_manifest(folder, ["plans.json", "a/b/weights.pt"], {"exported_by": "test", "files": "ignored"})
    data = json.loads(path.read_text())
    assert data["format"] == "autounet-model-manifest" and data["format_version"] == 1 and data["exported_by"] == "test"
    assert data["files"]["a/b/weights.pt"]["bytes"] == 100
    verify_manifest(folder)
    (folder / "plans.json").write_text('{"x": 1}')
    (folder / "a" / "b" / "weights.pt").unlink()
    (folder / "extra.json").write_text("{}")
    with pytest.raises(ModelManifestError) as caught:
        verify_manifest(folder)
    message = str(caught.value)
    assert f"changed since it was recorded: {folder / 'plans.json'}" in message
    assert f"missing: {folder / 'a/b/weights.pt'}" in message
    assert f"not recorded (added afterwards): {folder / 'extra.json'}" in message


@pytest.mark.parametrize("name, reason", [("../outside.pt", "relative path component"), ("/etc/passwd", "absolute"),
                                          ("a\\..\\b", "backslash"), ("C:/x", "absolute"), ("a//b", "empty"),
                                          ("", "non-empty")])
def test_paths_outside_the_folder_are_refused(folder, name, reason):
    assert reason in relative_problem(name)
    with pytest.raises(ModelManifestError, match="cannot record"):
        write_manifest(folder, [name])
    (folder / MANIFEST_FILE).write_text(json.dumps({"format": "autounet-model-manifest", "format_version": 1,
                                                    "files": {name: {"sha256": "0" * 64, "bytes": 1}}}))
    with pytest.raises(ModelManifestError, match="outside the folder"):
        read_manifest(folder)


@pytest.mark.parametrize("content, words", [
    ("{nope", "not valid JSON"),
    ('{"format": "other", "files": {}}', "not an autounet model manifest"),
    ('{"format": "autounet-model-manifest", "format_version": 7, "files": {}}', "upgrade autounet"),
    ('{"format": "autounet-model-manifest", "format_version": 1, "files": {"plans.json": {"sha256": 5}}}',
     '"sha256" (text)'),
])
def test_unusable_manifests_are_named(folder, content, words):
    (folder / MANIFEST_FILE).write_text(content)
    with pytest.raises(ModelManifestError, match=words.replace("(", r"\(").replace(")", r"\)")):
        verify_manifest(folder)
