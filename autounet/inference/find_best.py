"""Pick the best configuration (or pair of configurations) by cross-validation Dice, decide its post-processing and
write ``inference.json`` with the exact predict command."""

from __future__ import annotations

import itertools
import logging
import math
import os
import shlex
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autounet.errors import AutounetError, MissingStageError
from autounet.evaluation import EvaluationResult, evaluate_folders, find_label_files, load_summary
from autounet.inference.ensemble import labels_from_probabilities
from autounet.inference.export import read_probabilities, write_probabilities, write_segmentation
from autounet.inference.model_folder import read_model_plans
from autounet.inference.postprocessing import determine_postprocessing_for_folder
from autounet.io import read_image
from autounet.io.formats import file_extension
from autounet.jsonio import read_json, write_json
from autounet.layout import INFERENCE_FILE, POSTPROCESSING_FILE, SUMMARY_FILE, ResultsLayout
from autounet.model_manifest import record_model_manifest
from autounet.planners.plans import Plans
from autounet.safe_names import child_path
from autounet.typing import PathType

logger = logging.getLogger(__name__)

#: Version of the inference.json layout.
INFERENCE_VERSION = 1
#: Folds whose validation predictions make up the cross-validation ("all" has no held-out cases).
CROSSVAL_FOLDS = (0, 1, 2, 3, 4)
#: The fold trained on every case (nnU-Net's "all"): nothing held out, so no validation score.
FOLD_ALL = "all"


class FindBestError(AutounetError, ValueError):
    """The trained configurations cannot be compared (no validation predictions, no references)."""


@dataclass(frozen=True)
class Candidate:
    """One configuration or ensemble and its cross-validation result."""

    configurations: tuple[str, ...]
    folder: Path
    mean_dice: float
    dice_per_label: dict[str, float]
    num_cases: int
    note: str = ""

    @property
    def name(self) -> str:
        return ensemble_name(self.configurations)


@dataclass
class FindBestResult:
    """All candidates (best first), the winner, its post-processing, and the written ``inference.json``."""

    candidates: list[Candidate]
    skipped: dict[str, str] = field(default_factory=dict)
    inference_file: Path | None = None
    command: str = ""
    postprocessing: Any = None
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> Candidate:
        return self.candidates[0]

    def describe_best(self) -> str:
        """The winner and its score, e.g. ``3d_fullres (cross-validation mean Dice 0.8812)``."""
        best = self.best
        if math.isnan(best.mean_dice) and best.folder.name == f"fold_{FOLD_ALL}":
            return f"{best.name} fold all (trained on every case: no cross-validation score)"
        return f"{best.name} (cross-validation mean Dice {_fmt(best.mean_dice)})"

    def table(self) -> str:
        labels = sorted({k for c in self.candidates for k in c.dice_per_label}, key=lambda k: (len(k), k))
        notes = any(c.note for c in self.candidates)
        header = ["configuration", "mean Dice", *[f"Dice {k}" for k in labels], "cases", *(["note"] if notes else [])]
        rows = [
            [c.name, _fmt(c.mean_dice), *[_fmt(c.dice_per_label.get(k, math.nan)) for k in labels],
             str(c.num_cases or "-"), *([c.note] if notes else [])]
            for c in self.candidates
        ]
        rows += [[name, "-", *["-" for _ in labels], reason, *([""] if notes else [])] for name, reason in self.skipped.items()]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def ensemble_name(configurations: Sequence[str]) -> str:
    """Folder name of an ensemble: the configuration names joined by ``"__"`` (a single name stays as it is).

    Examples
    --------
    >>> ensemble_name(["3d_fullres", "2d"])
    '2d__3d_fullres'
    """
    return "__".join(sorted(configurations))


def read_inference_json(model_dir: PathType) -> dict[str, Any]:
    """The recorded best configuration(s) of a model folder."""
    path = ResultsLayout(model_dir).inference
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("configurations"), list):
        raise FindBestError(f"{path}: expected a JSON object with a 'configurations' list; re-run \"autounet find-best\"")
    return data


def find_postprocessing_file(model_dir: PathType, configurations: Sequence[str]) -> Path | None:
    """The post-processing decision that belongs to these configurations, if one was made.

    Looked up in ``inference.json`` (when it names the same configurations), then in ``<configuration>/crossval/``
    for a single configuration or ``ensembles/<a>__<b>/`` for an ensemble.
    """
    model_dir = Path(model_dir)
    layout = ResultsLayout(model_dir)
    wanted = sorted(configurations)
    if layout.inference.is_file():
        recorded = read_inference_json(model_dir)
        if sorted(recorded["configurations"]) == wanted and recorded.get("postprocessing"):
            path = child_path(model_dir, recorded["postprocessing"], "postprocessing file", model_dir / INFERENCE_FILE)
            if path.is_file():
                return path
    folder = layout.crossval(wanted[0]) if len(wanted) == 1 else layout.ensemble(ensemble_name(wanted))
    path = folder / POSTPROCESSING_FILE
    return path if path.is_file() else None


def merge_crossval(results_dir: PathType, configuration: str, folds: Sequence[int] = CROSSVAL_FOLDS) -> tuple[Path, list[int]]:
    """Gather the validation predictions of the folds of ``configuration`` into ``<configuration>/crossval/``.

    Segmentations and ``.npz`` probabilities are hard-linked (copied where links are impossible). Returns the folder
    and the folds found. A fold without a ``validation/`` folder is skipped with a warning.
    """
    layout = ResultsLayout(results_dir)
    folder, target = layout.configuration(configuration), layout.crossval(configuration)
    found = []
    for fold in folds:
        validation = layout.validation(configuration, fold)
        if not validation.is_dir():
            continue
        found.append(fold)
        target.mkdir(parents=True, exist_ok=True)
        for path in validation.iterdir():
            if path.name.startswith(".") or not path.is_file():
                continue
            if path.suffix == ".npz" or file_extension(path) in _LABEL_EXTENSIONS:
                _link_or_copy(path, target / path.name)
    if found and len(found) < len(folds):
        logger.warning("%s: validation predictions of folds %s only; the cross-validation is incomplete", folder, found)
    return target, found


_LABEL_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".mha", ".png", ".tif", ".tiff", ".bmp", ".gif")


def _link_or_copy(source: Path, target: Path) -> None:
    if target.exists():
        if target.stat().st_mtime >= source.stat().st_mtime and target.stat().st_size == source.stat().st_size:
            return
        target.unlink()
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def find_best(
    results_dir: PathType,
    reference_dir: PathType | None = None,
    configurations: Sequence[str] | None = None,
    *,
    ensembles: bool = True,
    postprocessing: bool = True,
    workers: int | None = None,
    progress: bool = True,
) -> FindBestResult:
    """Compare trained configurations and their pairwise ensembles by cross-validation mean foreground Dice.

    Parameters
    ----------
    results_dir : str or Path
        ``RESULTS/<dataset>`` with ``plans.json`` and ``<configuration>/fold_<k>/validation/`` predictions.
    reference_dir : str or Path, optional
        Folder of the reference label files (``labelsTr``). Default: the one recorded in the folds'
        ``validation/summary.json``.
    configurations : sequence of str, optional
        Candidates; default every configuration with validation predictions.
    ensembles : bool
        Also evaluate every pair of candidates averaged (needs the ``.npz`` probabilities of the final validation).
    postprocessing : bool
        Decide the post-processing of the winner (``postprocessing.json``).
    workers, progress
        Evaluation processes and progress bars.

    Returns
    -------
    FindBestResult
        ``inference.json`` is written to ``results_dir``. When only fold "all" (every case, nothing held out) is
        trained, there is nothing to compare: the result names that model with a note
        (:func:`autounet.inference.fold_all.choose_fold_all`), and ``inference.json`` leads ``autounet predict`` to it.

    Raises
    ------
    MissingStageError
        If no configuration has validation predictions or a trained fold "all".
    FindBestError
        If no reference folder is known.
    """
    results_dir = Path(results_dir)
    plans = read_model_plans(results_dir)
    names = list(configurations) if configurations else list(plans.configurations)
    merged: dict[str, tuple[Path, list[int]]] = {}
    skipped: dict[str, str] = {}
    for name in names:
        plans.configuration(name)
        folder, folds = merge_crossval(results_dir, name)
        if folds:
            merged[name] = (folder, folds)
        elif configurations:
            skipped[name] = "no fold has validation predictions"
    if not merged:
        from autounet.inference.fold_all import choose_fold_all, fold_all_trained  # it builds on this module

        trained_all = [name for name in names if fold_all_trained(results_dir, name)]
        if trained_all:
            return choose_fold_all(results_dir, list(plans.configurations), trained_all, skipped)
        raise MissingStageError(
            f"{results_dir}: no configuration has validation predictions (<configuration>/fold_<k>/validation/); "
            "train folds to the end (the final validation writes them) before running find-best"
        )
    reference_dir = Path(reference_dir) if reference_dir else _recorded_reference(results_dir, merged)
    labels = [v for v in plans.label_values if v != 0]
    candidates = []
    for name, (folder, folds) in merged.items():
        result = _evaluate(reference_dir, folder, labels, workers, progress)
        note = "" if len(folds) == len(CROSSVAL_FOLDS) else f"folds {', '.join(map(str, folds))} only"
        candidates.append(_candidate((name,), folder, result, note))
    if ensembles:
        for first, second in itertools.combinations(sorted(merged), 2):
            try:
                folder = _ensemble_crossval(results_dir, plans, [merged[first][0], merged[second][0]], (first, second))
            except FileNotFoundError as err:
                skipped[ensemble_name((first, second))] = str(err)
                continue
            result = _evaluate(reference_dir, folder, labels, workers, progress)
            candidates.append(_candidate((first, second), folder, result, ""))
    candidates.sort(key=lambda c: (-_nan_low(c.mean_dice), len(c.configurations), c.name))
    outcome = FindBestResult(candidates, skipped)
    best = outcome.best
    decision_path = None
    if postprocessing:
        decision = determine_postprocessing_for_folder(
            reference_dir, best.folder, labels, configurations=best.configurations, output=best.folder / POSTPROCESSING_FILE
        )
        decision.save(ResultsLayout(results_dir).postprocessing)
        decision_path = POSTPROCESSING_FILE
        outcome.postprocessing = decision
    from autounet.inference.fold_all import fold_all_alternative

    folds = sorted(set.intersection(*(set(merged[n][1]) for n in best.configurations)))
    outcome.command = predict_command(results_dir, best.configurations, folds)
    outcome.notes += fold_all_alternative(results_dir, best.configurations)
    write_inference_json(results_dir, outcome, folds, decision_path, reference_dir)
    return outcome


def write_inference_json(
    results_dir: Path, outcome: FindBestResult, folds: Sequence[Any], postprocessing: str | None, reference_dir: Path | None
) -> Path:
    """Record the winner of ``outcome`` in ``results_dir/inference.json``, the defaults of ``autounet predict``.

    Parameters
    ----------
    results_dir : Path
        ``RESULTS/<dataset>``.
    outcome : FindBestResult
        Candidates (best first), skipped ones, notes and the predict command.
    folds : sequence of int or "all"
        Folds predict averages.
    postprocessing : str or None
        The post-processing file, relative to ``results_dir``.
    reference_dir : Path or None
        The labels the candidates were scored against (None without a cross-validation).
    """
    best = outcome.best
    data = {
        "inference_version": INFERENCE_VERSION,
        "configurations": list(best.configurations),
        "folds": list(folds),
        "checkpoint": "final",
        "postprocessing": postprocessing,
        "cross_validation_dice": best.mean_dice,
        "reference_dir": str(reference_dir) if reference_dir is not None else None,
        "command": outcome.command,
        "candidates": [
            {"configurations": list(c.configurations), "mean_dice": c.mean_dice, "dice_per_label": c.dice_per_label,
             "num_cases": c.num_cases, "folder": str(c.folder.relative_to(results_dir)), "note": c.note}
            for c in outcome.candidates
        ],
        "skipped": dict(outcome.skipped),
        "notes": list(outcome.notes),
    }
    outcome.inference_file = ResultsLayout(results_dir).inference
    write_json(outcome.inference_file, _finite_or_none(data))
    configurations = read_model_plans(results_dir).configurations
    record_model_manifest(results_dir, updated=(INFERENCE_FILE, POSTPROCESSING_FILE, "ensembles/",
                                                *(f"{name}/crossval/" for name in configurations)))
    return outcome.inference_file


def predict_command(results_dir: Path, configurations: Sequence[str], folds: Sequence[Any]) -> str:
    """The ``autounet predict`` command line for a winner."""
    parts = ["autounet", "predict", "-i", "INPUT_FOLDER", "-o", "OUTPUT_FOLDER", "-m", str(results_dir), "-c", *configurations]
    if list(folds) != list(CROSSVAL_FOLDS):
        parts += ["-f", *map(str, folds)]
    return " ".join(shlex.quote(p) if p not in ("INPUT_FOLDER", "OUTPUT_FOLDER") else p for p in parts)


def _recorded_reference(results_dir: Path, merged: dict[str, tuple[Path, list[int]]]) -> Path:
    for name, (_folder, folds) in merged.items():
        for fold in folds:
            summary = ResultsLayout(results_dir).validation(name, fold) / SUMMARY_FILE
            if summary.is_file():
                recorded = load_summary(summary).reference_dir
                if recorded and Path(recorded).is_dir():
                    return Path(recorded)
    raise FindBestError(
        f"{results_dir}: the validation summaries do not name an existing reference folder; pass the folder of the "
        "training labels (--reference DATASET/labelsTr)"
    )


def _evaluate(reference_dir: Path, folder: Path, labels: list[int], workers: int | None, progress: bool) -> EvaluationResult:
    """Evaluate the predictions of ``folder`` against the references of the same cases (a subset is fine)."""
    predictions = find_label_files(folder)
    references = find_label_files(reference_dir)
    missing = sorted(set(predictions) - set(references))
    if missing:
        raise FindBestError(f"{reference_dir}: no reference for {', '.join(missing[:5])}; pass the right --reference folder")
    with tempfile.TemporaryDirectory(prefix=".references_", dir=folder) as subset:
        for case_id in predictions:  # evaluate only the cases that were predicted
            source = references[case_id]
            os.symlink(source.resolve(), Path(subset) / source.name)
        result = evaluate_folders(subset, folder, labels=labels, workers=workers, progress=progress)
    result.save(folder)
    return result


def _candidate(configurations: tuple[str, ...], folder: Path, result: EvaluationResult, note: str) -> Candidate:
    means = result.mean
    return Candidate(
        configurations=configurations,
        folder=folder,
        mean_dice=float(result.foreground_mean["Dice"]),
        dice_per_label={label: float(means[label]["Dice"]) for label in result.labels},
        num_cases=len(result.cases),
        note=note,
    )


def _ensemble_crossval(results_dir: Path, plans: Plans, folders: Sequence[Path], names: Sequence[str]) -> Path:
    """Average the cross-validation probabilities of several configurations into ``ensembles/<a>__<b>/``."""
    target = ResultsLayout(results_dir).ensemble(ensemble_name(names))
    segmentations = [find_label_files(folder) for folder in folders]
    common = sorted(set.intersection(*(set(s) for s in segmentations)))
    if not common:
        raise FileNotFoundError("no case was predicted by all of them")
    for case_id in common:
        npz = [folder / f"{case_id}.npz" for folder in folders]
        absent = [str(p) for p in npz if not p.is_file()]
        if absent:
            raise FileNotFoundError(
                f"no probabilities ({absent[0]}); the final validation must run with save_probabilities=True"
            )
        output = target / segmentations[0][case_id].name
        if output.is_file() and all(output.stat().st_mtime >= p.stat().st_mtime for p in npz):
            continue
        mean = None
        for path in npz:
            probabilities, labels = read_probabilities(path)
            mean = probabilities if mean is None else mean + probabilities
        assert mean is not None
        mean /= len(npz)
        geometry = read_image(segmentations[0][case_id]).geometry
        write_probabilities(target / f"{case_id}.npz", mean, labels)
        write_segmentation(output, labels_from_probabilities(mean, labels), geometry)
    return target


def _fmt(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.4f}"


def _nan_low(value: float) -> float:
    return -1.0 if math.isnan(value) else value


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

