"""Training only on a complete store (issue 20, item 5): after a killed or partial preprocess, ``train`` refuses the
store (``autounet train DATASET`` completes it first) and never writes splits from a partial list; an existing
splits.json that leaves cases out of every fold is named as such."""

from __future__ import annotations

import json

from autounet.cli import main

QUICK = ["--epochs", "1", "--iterations-per-epoch", "1", "--device", "cpu", "--precision", "float32", "--workers", "0",
         "--no-progress", "--no-validation", "--threads", "1"]


def _interrupt_preprocessing(results, missing=("demo_001",)):
    """What a preprocess killed before finishing leaves: a manifest without some cases, marked incomplete."""
    store = results / "preprocessed" / "3d_fullres"
    manifest = json.loads((store / "manifest.json").read_text())
    for case_id in missing:
        manifest["cases"].pop(case_id)
        for name in (f"{case_id}.json", f"{case_id}.npy", f"{case_id}_seg.npy", f"{case_id}_fg.npz"):
            (store / name).unlink()
    manifest["complete"] = False
    (store / "manifest.json").write_text(json.dumps(manifest))
    return store


def test_train_refuses_a_partial_store_and_writes_no_splits(tiny_results, tiny_dataset, capsys):
    store = _interrupt_preprocessing(tiny_results)
    code = main(["train", str(tiny_results), "3d_fullres", "0", *QUICK])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{store}: the preprocessed data is incomplete (5 of 6 cases" in err
    assert "Complete it first" in err and "would leave the missing cases out of every fold" in err
    assert not (tiny_results / "splits.json").exists()
    assert not (tiny_results / "3d_fullres").exists()
    # the fix the message gives: train from the dataset, which preprocesses the missing case first
    code = main(["train", str(tiny_dataset), "3d_fullres", "0", "--results", str(tiny_results), *QUICK])
    assert code == 0, capsys.readouterr().err
    splits = json.loads((tiny_results / "splits.json").read_text())
    assert sorted(c for fold in splits for c in fold["val"]) == [f"demo_{i:03d}" for i in range(6)]


def test_a_splits_file_from_a_partial_list_is_named(tiny_results, capsys):
    splits = [{"train": ["demo_000", "demo_002", "demo_003", "demo_004"], "val": ["demo_005"]}]
    (tiny_results / "splits.json").write_text(json.dumps(splits))  # frozen while demo_001 was missing
    code = main(["train", str(tiny_results), "3d_fullres", "0", *QUICK])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "splits.json covers 5 of the 6 cases: 1 are in no fold (demo_001)" in err
    assert "Delete it to get the default five-fold split" in err
