"""``autounet export-model``: one zip a user can hand to someone else, holding what prediction needs and nothing more.

The package is the model folder without its preprocessed data, validation predictions, splits and fingerprint (which
name the training cases), plus ``manifest.json`` with the sha256 of every file. Checkpoints are copied byte for byte
(they load with ``torch.load(weights_only=True)``); everything else is JSON. No pickle.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from autounet import __version__
from autounet.errors import AutounetError
from autounet.evaluation import load_summary
from autounet.inference import Predictor
from autounet.inference.find_best import read_inference_json
from autounet.layout import CROSSVAL_FOLDER, INFERENCE_FILE, VALIDATION_FOLDER
from autounet.inference.model_folder import CheckpointName, Fold
from autounet.io import SUPPORTED_EXTENSIONS, is_2d_extension
from autounet.jsonio import atomic_path, read_json, write_json
from autounet.packaging.manifest import MANIFEST_FILE, write_manifest
from autounet.planners.configurations import is_3d_dataset
from autounet.planners.plans import Plans
from autounet.typing import PathType

PACKAGE_KIND = "autounet-model-package"
#: Keys of dataset.json a package keeps: what describes the model, not the list of training cases.
DATASET_KEYS = (
    "name", "description", "reference", "licence", "license", "release", "tensorImageSize", "modality",
    "channel_names", "labels", "regions_class_order", "file_ending", "numTraining",
)
#: Zip entries get this timestamp, so exporting the same model twice gives the same entries.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
#: Formats an upload may come in: single files only (a .mhd/.nhdr header needs its separate .raw).
SINGLE_FILE_EXTENSIONS = tuple(ext for ext in SUPPORTED_EXTENSIONS if ext not in (".mhd", ".nhdr"))


class PackageError(AutounetError, ValueError):
    """A model package cannot be written or is refused when read (unsafe, tampered, unknown format)."""


def export_model(
    model_dir: PathType,
    output: PathType,
    *,
    configurations: Sequence[str] | None = None,
    folds: Sequence[Fold] | None = None,
    checkpoint: CheckpointName = "final",
    description: str = "",
    license: str = "",
    model_version: str = "",
    overwrite: bool = False,
) -> Path:
    """Write a model package (``.zip``) of a trained model folder.

    Parameters
    ----------
    model_dir : str or Path
        ``RESULTS/<dataset>`` with ``plans.json`` and trained folds.
    output : str or Path
        The ``.zip`` to write (atomically).
    configurations, folds, checkpoint
        What to package, as for ``autounet predict`` (default: the winner of ``autounet find-best`` and its folds,
        else the only trained configuration and every trained fold). A cascade brings its previous stage along.
    description, license, model_version : str
        Recorded in the manifest (free text; the license of the weights, e.g. ``"CC-BY-4.0"``).
    overwrite : bool
        Replace an existing ``output``.

    Returns
    -------
    Path
        The package written.

    Raises
    ------
    PackageError
        If ``output`` exists (without ``overwrite``) or does not end with ``.zip``.
    PlansError, MissingStageError, CheckpointError
        If the model folder cannot be used for prediction (the package would not work either).
    """
    model_dir, output = Path(model_dir), Path(output)
    if output.suffix.lower() != ".zip":
        raise PackageError(f"{output}: a model package is a .zip file; name the output e.g. {output.with_suffix('.zip').name}")
    if output.exists() and not overwrite:
        raise PackageError(f"{output} exists; choose another name or pass --overwrite")
    # Loading the model checks plans, checkpoints and architecture: a package is only written if it can predict.
    predictor = Predictor.from_model_folder(
        model_dir, configurations=configurations, folds=folds, checkpoint=checkpoint, device="cpu"
    )
    with tempfile.TemporaryDirectory(prefix=".export-", dir=output.parent if output.parent.exists() else None) as staging:
        stage = Path(staging)
        files = _stage_files(model_dir, predictor, stage)
        extra = _manifest_facts(model_dir, predictor, checkpoint, description, license, model_version)
        write_manifest(stage, files, extra)
        output.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(output, expected_bytes=sum((stage / f).stat().st_size for f in files)) as tmp:
            _write_zip(tmp, stage, [*files, MANIFEST_FILE])
    return output


def _stage_files(model_dir: Path, predictor: Predictor, stage: Path) -> list[str]:
    """Copy or write every file of the package into ``stage``; return their relative paths."""
    files = ["plans.json"]
    shutil.copyfile(model_dir / "plans.json", stage / "plans.json")
    if (model_dir / "dataset.json").is_file():
        description = read_json(model_dir / "dataset.json")
        if isinstance(description, dict):
            write_json(stage / "dataset.json", {k: v for k, v in description.items() if k in DATASET_KEYS})
            files.append("dataset.json")
    for name, trained_folds in predictor.models.items():
        for trained in trained_folds:
            fold_dir = trained.path.parent
            relative_dir = f"{name}/{fold_dir.name}"
            (stage / relative_dir).mkdir(parents=True, exist_ok=True)
            # the checkpoint and the fold's JSON records (training log, network record); never validation/
            for source in sorted(fold_dir.iterdir()):
                if source == trained.path or (source.suffix == ".json" and source.is_file() and not source.is_symlink()):
                    shutil.copyfile(source, stage / relative_dir / source.name)
                    files.append(f"{relative_dir}/{source.name}")
    postprocessing = None
    if predictor.postprocessing is not None:
        decision = dataclasses.replace(predictor.postprocessing, source=f"cross-validation of {model_dir.name}")
        decision.save(stage / "postprocessing.json")
        files.append("postprocessing.json")
        postprocessing = "postprocessing.json"
    folds = sorted({f.fold for n in predictor.configurations for f in predictor.models[n]}, key=str)
    write_json(stage / INFERENCE_FILE, {
        "inference_version": 1,
        "configurations": list(predictor.configurations),
        "folds": folds,
        "checkpoint": predictor.models[predictor.configurations[0]][0].path.stem.replace("checkpoint_", ""),
        "postprocessing": postprocessing,
    })
    files.append(INFERENCE_FILE)
    return files


def _manifest_facts(
    model_dir: Path, predictor: Predictor, checkpoint: str, description: str, license: str, model_version: str
) -> dict[str, Any]:
    plans = predictor.plans
    three_d = is_3d_dataset(plans.original_median_shape_after_transp)
    return {
        "kind": PACKAGE_KIND,
        "autounet_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "name": plans.dataset_name,
        "model_version": model_version or None,
        "description": description,
        "license": license,
        "labels": dict(plans.labels),
        "channels": list(plans.channel_names),
        "dimensionality": "3D" if three_d else "2D",
        "input_formats": accepted_formats(plans),
        "configurations": list(predictor.configurations),
        "stages": {name: [f.fold for f in folds] for name, folds in predictor.models.items()},
        "folds": sorted({f.fold for n in predictor.configurations for f in predictor.models[n]}, key=str),
        "checkpoint": checkpoint,
        "postprocessing": predictor.postprocessing.describe() if predictor.postprocessing else None,
        "cross_validation": cross_validation_dice(model_dir, plans, predictor.configurations),
    }


def accepted_formats(plans: Plans) -> list[str]:
    """File extensions a model accepts: volumes for 3D models, flat images (and volume formats) for 2D ones.

    Parameters
    ----------
    plans : Plans
        The model's plans.
    """
    if is_3d_dataset(plans.original_median_shape_after_transp):
        return [ext for ext in SINGLE_FILE_EXTENSIONS if not is_2d_extension(ext)]
    return list(SINGLE_FILE_EXTENSIONS)


def cross_validation_dice(model_dir: PathType, plans: Plans, configurations: Sequence[str]) -> dict[str, Any] | None:
    """Cross-validation Dice of these configurations: from ``inference.json`` (``autounet find-best``), else from
    ``<configuration>/crossval/summary.json``, else the mean over the folds' ``validation/summary.json``; None if
    there is none.

    Parameters
    ----------
    model_dir : str or Path
        The model folder.
    plans : Plans
        Its plans (for label names).
    configurations : sequence of str
        The configurations (one, or several for an ensemble).

    Returns
    -------
    dict or None
        ``{"mean_dice", "dice_per_label" (by label name), "num_cases", "source"}``.
    """
    model_dir = Path(model_dir)
    names = {str(v): k for k, v in plans.labels.items()}
    wanted = sorted(configurations)
    if (model_dir / INFERENCE_FILE).is_file():
        try:
            recorded = read_inference_json(model_dir)
        except (AutounetError, ValueError):
            recorded = {}
        for candidate in recorded.get("candidates") or []:
            if isinstance(candidate, dict) and sorted(candidate.get("configurations") or []) == wanted:
                per_label = candidate.get("dice_per_label") or {}
                return {
                    "mean_dice": _finite(candidate.get("mean_dice")),
                    "dice_per_label": {names.get(str(k), str(k)): _finite(v) for k, v in per_label.items()},
                    "num_cases": candidate.get("num_cases"),
                    "source": f"{INFERENCE_FILE} ({candidate.get('note') or 'all folds'})",
                }
    if len(wanted) != 1:
        return None
    folder = model_dir / wanted[0]
    summaries = [folder / CROSSVAL_FOLDER / "summary.json"]
    if not summaries[0].is_file():
        summaries = sorted(folder.glob(f"fold_*/{VALIDATION_FOLDER}/summary.json"))
    results = []
    for path in summaries:
        try:
            results.append(load_summary(path))
        except (OSError, ValueError):
            continue
    if not results:
        return None
    cases = sum(len(r.cases) for r in results)
    labels = results[0].labels
    return {
        "mean_dice": _finite(sum(r.foreground_mean["Dice"] * len(r.cases) for r in results) / max(cases, 1)),
        "dice_per_label": {
            names.get(label, label): _finite(sum(r.mean[label]["Dice"] * len(r.cases) for r in results) / max(cases, 1))
            for label in labels
        },
        "num_cases": cases,
        "source": ", ".join(str(p.relative_to(model_dir)) for p in summaries),
    }


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _write_zip(path: Path, folder: Path, files: Sequence[str]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for relative in files:
            info = zipfile.ZipInfo(relative, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
            with open(folder / relative, "rb") as source, archive.open(info, "w") as target:
                shutil.copyfileobj(source, target, 1 << 20)
