"""preprocess_dataset: layout, reader, sharing, skip/redo rules, failures, workers, kill and resume."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from autounet.dataset import load_dataset
from autounet.dataset.demo import DemoSpec, make_demo_dataset
from autounet.errors import AutounetError, DatasetError, MissingStageError, PlansError
from autounet.planners.plans import ChannelNormalization
from autounet.preprocessing import open_preprocessed, preprocess_dataset
from autounet.preprocessing import store as store_module

from .conftest import make_configuration, make_plans

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo(tmp_path) -> Path:
    """Six small 3D cases of our own (tests may change them)."""
    return make_demo_dataset(tmp_path / "demo", DemoSpec(kind="3d", num_cases=6, shape=(20, 28, 24), seed=5))


def _case_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name != "manifest.json" and not p.name.startswith("."))


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in _case_files(folder)}


def _assert_same_store(a: Path, b: Path) -> None:
    first, second = open_preprocessed(a), open_preprocessed(b)
    assert first.case_ids == second.case_ids and first.is_complete and second.is_complete
    for case_id in first.case_ids:
        data_a, seg_a, props_a = first.load(case_id, mmap=False)
        data_b, seg_b, props_b = second.load(case_id, mmap=False)
        np.testing.assert_array_equal(data_a, data_b)
        np.testing.assert_array_equal(seg_a, seg_b)
        assert props_a == props_b
        fg_a, fg_b = first.foreground_locations(case_id), second.foreground_locations(case_id)
        assert fg_a.keys() == fg_b.keys() and all(np.array_equal(fg_a[k], fg_b[k]) for k in fg_a)
    assert first.manifest["cases"] == second.manifest["cases"]


def test_layout_reader_and_shared_folders(demo, tmp_path):
    plans = make_plans(spacing_3d=(1.0, 1.0, 1.0), spacing_2d=(0.8, 0.8), cascade=True)
    out = tmp_path / "out"
    folders = preprocess_dataset(demo, plans, ["3d_fullres", "3d_cascade_fullres", "2d"], out, workers=1, progress=False)
    assert folders == {"3d_fullres": out / "3d_fullres", "3d_cascade_fullres": out / "3d_fullres", "2d": out / "2d"}
    assert sorted(p.name for p in out.iterdir()) == ["2d", "3d_fullres"]  # the cascade shares 3d_fullres
    store = open_preprocessed(out / "3d_fullres")
    assert len(store) == 6 and store.is_complete and store.manifest["configurations"] == ["3d_fullres", "3d_cascade_fullres"]
    assert len(_case_files(out / "3d_fullres")) == 6 * 4
    case_id = store.case_ids[0]
    data, seg, props = store.load(case_id)
    assert isinstance(data, np.memmap) and data.dtype == np.float32 and seg.dtype == np.int8
    assert data.shape[1:] == seg.shape[1:] == props.shape_after_resampling
    locations = store.foreground_locations(case_id)
    assert sorted(locations) == [1, 2]
    for label, coords in locations.items():
        assert coords.dtype == np.int32 and coords.shape[1] == 3 and len(coords) > 0
        assert np.all(seg[0][tuple(coords.T)] == label)
    assert props.foreground_file == f"{case_id}_fg.npz" and props.data_identifier == "3d_fullres"
    two_d = open_preprocessed(out / "2d")
    assert two_d.load(case_id)[0].shape[1] == data.shape[1]  # the 2d configuration keeps the slice count


def test_identical_configurations_are_computed_once_with_equal_arrays(demo, tmp_path):
    plans = make_plans(spacing_3d=(1.0, 1.0, 1.0), spacing_2d=(1.0, 1.0))  # the demo is 1 mm: same arrays
    out = tmp_path / "out"
    preprocess_dataset(demo, plans, ["3d_fullres", "2d"], out, workers=1, progress=False)
    a, b = open_preprocessed(out / "3d_fullres"), open_preprocessed(out / "2d")
    for case_id in a.case_ids:
        np.testing.assert_array_equal(a.load(case_id)[0], b.load(case_id)[0])
        assert b.properties(case_id).data_identifier == "2d"


def test_rerun_skips_unchanged_cases_and_redoes_changed_ones(demo, tmp_path):
    plans = make_plans()
    out = tmp_path / "out"
    preprocess_dataset(demo, plans, ["3d_fullres"], out, workers=1, progress=False)
    before = _mtimes(out / "3d_fullres")
    preprocess_dataset(demo, plans, ["3d_fullres"], out, workers=1, progress=False)
    assert _mtimes(out / "3d_fullres") == before  # nothing rewritten

    changed = load_dataset(demo).training[2]
    os.utime(changed.image_files[0], ns=(time.time_ns(), time.time_ns()))
    preprocess_dataset(demo, plans, ["3d_fullres"], out, workers=1, progress=False)
    after = _mtimes(out / "3d_fullres")
    rewritten = {name for name in before if after[name] != before[name]}
    assert rewritten == {f"{changed.case_id}{suffix}" for suffix in (".npy", "_seg.npy", "_fg.npz", ".json")}

    bigger_batch = make_plans()
    bigger_batch.configurations["3d_fullres"] = bigger_batch.configurations["3d_fullres"].replace(batch_size=9)
    preprocess_dataset(demo, bigger_batch, ["3d_fullres"], out, workers=1, progress=False)
    assert _mtimes(out / "3d_fullres") == after  # batch size does not change the arrays

    masked = make_plans(normalization=(ChannelNormalization("zscore", use_mask=True),))
    preprocess_dataset(demo, masked, ["3d_fullres"], out, workers=1, progress=False)
    assert all(_mtimes(out / "3d_fullres")[name] != after[name] for name in after)  # plans changed: all redone


def test_cases_gone_from_the_dataset_are_removed(demo, tmp_path):
    out = tmp_path / "out"
    preprocess_dataset(demo, make_plans(), None, out, workers=1, progress=False)
    dataset = load_dataset(demo)
    import json
    raw = json.loads((demo / "dataset.json").read_text())
    raw["training"] = raw["training"][:-1]
    (demo / "dataset.json").write_text(json.dumps(raw))
    preprocess_dataset(demo, make_plans(), None, out, workers=1, progress=False)
    store = open_preprocessed(out / "3d_fullres")
    assert dataset.training[-1].case_id not in store.case_ids and len(store) == 5
    assert not (out / "3d_fullres" / f"{dataset.training[-1].case_id}.npy").exists()


def test_anisotropic_multichannel_and_2d_datasets(tmp_path, demo_aniso, demo_2d):
    aniso_plans = make_plans(spacing_3d=(4.0, 1.0, 1.0), normalization=(ChannelNormalization("zscore"),) * 2)
    folders = preprocess_dataset(demo_aniso, aniso_plans, ["3d_fullres"], tmp_path / "aniso", workers=1, progress=False)
    store = open_preprocessed(folders["3d_fullres"])
    data, seg, props = store.load(store.case_ids[0])
    assert data.shape[0] == 2 and props.separate_z_axis == 0 and props.resampling_backend != "none"
    assert set(np.unique(seg)) <= {0, 1, 2}

    flat_plans = make_plans(spacing_3d=None, spacing_2d=(1.5, 1.5), labels={"background": 0, "a": 1, "b": 2, "c": 3})
    folders = preprocess_dataset(demo_2d, flat_plans, ["2d"], tmp_path / "flat", workers=1, progress=False)
    store = open_preprocessed(folders["2d"])
    data, seg, props = store.load(store.case_ids[0])
    assert data.shape[1] == 1 and props.is_2d and set(np.unique(seg)) <= {0, 1, 2, 3}
    assert all(coords[:, 0].max(initial=0) == 0 for coords in store.foreground_locations(store.case_ids[0]).values())


def test_two_workers_give_the_same_result_as_one(demo, tmp_path):
    plans = make_plans(spacing_3d=(1.2, 0.9, 0.9))
    preprocess_dataset(demo, plans, ["3d_fullres"], tmp_path / "one", workers=1, progress=False)
    preprocess_dataset(demo, plans, ["3d_fullres"], tmp_path / "two", workers=2, progress=False)
    _assert_same_store(tmp_path / "one" / "3d_fullres", tmp_path / "two" / "3d_fullres")


def test_a_bad_case_is_named_and_the_others_are_kept(demo, tmp_path):
    dataset = load_dataset(demo)
    bad = dataset.training[1]
    from autounet.io import read_image, write_image
    label = read_image(bad.label_file)
    label.data[0, 0, 0, :3] = 9
    write_image(bad.label_file, label.data, label.geometry)
    with pytest.raises(DatasetError, match=rf"(?s)1 of 6 cases .*{bad.case_id}.*label values \[9\]") as info:
        preprocess_dataset(demo, make_plans(), ["3d_fullres"], tmp_path / "out", workers=1, progress=False)
    assert bad.label_file.name in str(info.value)
    store = open_preprocessed(tmp_path / "out" / "3d_fullres")
    assert len(store) == 5 and not store.is_complete and bad.case_id not in store


def test_a_case_interrupted_before_its_properties_is_not_complete(demo, tmp_path, monkeypatch):
    victim = load_dataset(demo).training[3].case_id
    real_write_json = store_module.write_json

    def crash_on_victim(path, data, **kwargs):
        if Path(path).name == f"{victim}.json":
            raise OSError("simulated crash after the arrays were written")
        return real_write_json(path, data, **kwargs)

    monkeypatch.setattr(store_module, "write_json", crash_on_victim)
    out = tmp_path / "out"
    with pytest.raises(DatasetError, match=victim):
        preprocess_dataset(demo, make_plans(), ["3d_fullres"], out, workers=1, progress=False)
    folder = out / "3d_fullres"
    assert (folder / f"{victim}.npy").exists() and not (folder / f"{victim}.json").exists()
    assert victim not in open_preprocessed(folder)
    (folder / ".leftover.npy.x1y2.tmp").write_bytes(b"half")  # what a SIGKILL during a write leaves
    monkeypatch.undo()
    preprocess_dataset(demo, make_plans(), ["3d_fullres"], out, workers=1, progress=False)
    assert victim in open_preprocessed(folder) and not list(folder.glob(".*.tmp"))


def test_a_full_disk_is_named_as_such(demo, tmp_path, monkeypatch):
    import errno

    def no_space(path, array):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(store_module, "save_npy", no_space)
    with pytest.raises(DatasetError, match=r"(?s)6 of 6 cases .*the disk holding .*3d_fullres is full \(\d+ MB free\)"):
        preprocess_dataset(demo, make_plans(), ["3d_fullres"], tmp_path / "out", workers=1, progress=False)


_SLOW_RUN = """
import sys, time
from autounet.preprocessing import pipeline
from autounet.planners.plans import load_plans
original = pipeline.preprocess_case
def slow(*args, **kwargs):
    time.sleep(0.3)
    return original(*args, **kwargs)
pipeline.preprocess_case = slow
pipeline.preprocess_dataset(sys.argv[1], load_plans(sys.argv[2]), ["3d_fullres"], sys.argv[3], workers=1, progress=False)
"""


def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(demo, tmp_path):
    plans = make_plans(spacing_3d=(1.3, 0.9, 0.9))
    plans_path = tmp_path / "plans.json"
    plans.save(plans_path)
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    process = subprocess.Popen(
        [sys.executable, "-c", _SLOW_RUN, str(demo), str(plans_path), str(killed)],
        cwd=REPO_ROOT, start_new_session=True, stderr=subprocess.PIPE,
    )
    folder = killed / "3d_fullres"
    # A random point: after a random number of finished cases plus a random delay (possibly mid-write); the seed
    # is in the assertion messages to replay a failure.
    seed = random.SystemRandom().randrange(2**32)
    chooser = random.Random(seed)
    kill_after, delay = chooser.randint(1, 4), chooser.uniform(0.0, 0.25)
    deadline = time.monotonic() + 60
    try:
        while len(list(folder.glob("demo_*.json"))) < kill_after:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "the preprocessing subprocess made no progress"
            time.sleep(0.02)
        time.sleep(delay)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    done = len(list(folder.glob("demo_*.json")))
    assert kill_after <= done < 6, f"the kill should land mid-run (seed {seed})"
    partial = open_preprocessed(folder)  # readable, and lists only complete cases
    assert not partial.is_complete and len(partial) < 6
    finished = {p.stem: p.stat().st_mtime_ns for p in folder.glob("demo_*.json")}

    preprocess_dataset(demo, plans, ["3d_fullres"], killed, workers=1, progress=False)
    assert all((folder / f"{case_id}.json").stat().st_mtime_ns == mtime for case_id, mtime in finished.items())
    preprocess_dataset(demo, plans, ["3d_fullres"], clean, workers=1, progress=False)
    _assert_same_store(folder, clean / "3d_fullres")


def test_a_second_writer_on_the_same_folder_is_refused(demo, tmp_path):
    fcntl = pytest.importorskip("fcntl")
    folder = tmp_path / "out" / "3d_fullres"
    folder.mkdir(parents=True)
    with open(folder / ".autounet.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running preprocess would
        with pytest.raises(AutounetError, match="is being written by another autounet run"):
            preprocess_dataset(demo, make_plans(), ["3d_fullres"], tmp_path / "out", workers=1, progress=False)


def test_configurations_sharing_a_folder_must_preprocess_alike(demo, tmp_path):
    plans = make_plans(cascade=True)
    plans.configurations["3d_cascade_fullres"] = make_configuration(
        "3d_cascade_fullres", (2.0, 2.0, 2.0), (ChannelNormalization("zscore"),), data_identifier="3d_fullres"
    )
    with pytest.raises(PlansError, match="share the data identifier '3d_fullres'"):
        preprocess_dataset(demo, plans, None, tmp_path / "out", progress=False)


def test_opening_a_folder_that_was_never_preprocessed(tmp_path):
    with pytest.raises(MissingStageError, match='run "autounet preprocess" first'):
        open_preprocessed(tmp_path)


def test_unknown_case_suggests_the_closest(demo, tmp_path):
    preprocess_dataset(demo, make_plans(), ["3d_fullres"], tmp_path / "out", workers=1, progress=False)
    store = open_preprocessed(tmp_path / "out" / "3d_fullres")
    with pytest.raises(KeyError, match='Did you mean "demo_001"'):
        store.load("demo_01")


def test_cli(demo, tmp_path, capsys):
    from autounet.cli import main

    plans_path = tmp_path / "results" / "plans.json"
    plans_path.parent.mkdir()
    make_plans(spacing_2d=(1.0, 1.0)).save(plans_path)
    code = main(["preprocess", str(demo), "--plans", str(plans_path), "-c", "3d_fullres", "2d", "--workers", "1",
                 "--no-progress", "--backend", "separable"])
    printed = capsys.readouterr().out
    assert code == 0 and "3d_fullres: 6 cases in" in printed and str(tmp_path / "results" / "preprocessed") in printed
    assert main(["preprocess", str(demo), "--plans", str(tmp_path / "missing.json")]) == 2
    assert "no plans file" in capsys.readouterr().err
