"""``autounet check``: find and list every problem of a dataset folder, each with the file and a fix."""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path

import numpy as np

from autounet.dataset.check_case import CaseResult, CaseTask, check_case
from autounet.dataset.check_report import CheckReport, Problem
from autounet.dataset.dataset import SAFE_PUNCTUATION, Case, Dataset, case_id_problems, load_dataset
from autounet.dataset.regions import region_labels_message
from autounet.errors import DatasetError
from autounet.io.formats import input_stat
from autounet.jsonio import read_json
from autounet.parallel import auto_workers, map_with_progress
from autounet.plausibility import median_spacing, spacing_outlier
from autounet.typing import PathType

logger = logging.getLogger(__name__)

_CHANNEL_FILE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


def check_dataset(root: PathType, workers: int | None = None, progress: bool = True) -> CheckReport:
    """Check a dataset folder (MSD or nnU-Net v2 layout) and return every problem found.

    Files are listed first (missing, unreferenced and orphan files, channel files, ``numTraining``); then
    each case is read, header first, in parallel and one case per worker at a time (bounded memory):
    unreadable or truncated files, zero-size and empty images, NaN/Inf, image/label shape, spacing,
    origin and direction mismatches, channel counts, label values and implausible spacing. Finally the
    cases are compared with each other (2D among 3D).

    Parameters
    ----------
    root : str or Path
        Folder holding ``dataset.json``.
    workers : int, optional
        Worker processes; default: one for small datasets, else the CPU cores (at most 8).
    progress : bool
        Show a progress bar.

    Returns
    -------
    CheckReport
        ``report.ok`` is False when there is any error; ``str(report)`` is the text ``autounet check`` prints.
        A dataset whose ``dataset.json`` cannot be used gives a report with that single error.

    Examples
    --------
    >>> import tempfile
    >>> from autounet.dataset.demo import DemoSpec, make_demo_dataset
    >>> report = check_dataset(make_demo_dataset(tempfile.mkdtemp(), DemoSpec(num_cases=2)), progress=False)
    >>> report.ok, report.problems, report.summary["num_training"]
    (True, [], 2)
    """
    root = Path(root)
    report = CheckReport(root)
    try:
        dataset = load_dataset(root, check_names=False)  # unusable case ids are reported below, each with its fix
    except (DatasetError, KeyError, TypeError) as err:
        report.problems.append(Problem(
            "error", None, (str(root / "dataset.json"),), str(err), _dataset_json_fix(root), "dataset_json",
        ))
        return report
    listing = _list_files(dataset)
    tasks = [_task(dataset, case, is_training) for case, is_training in _all_cases(dataset)]
    tasks = [task for task in tasks if task.image_files]  # cases without any image file are already reported
    total_bytes = sum(max(input_stat(f)[0], 0) for t in tasks for f in (*t.image_files, t.label_file) if f)
    results = map_with_progress(
        check_case, tasks, workers=auto_workers(total_bytes, workers), progress=progress, description="check"
    )
    by_case: dict[str | None, list[Problem]] = {
        None: _dataset_problems(dataset) + _dicom_import_problems(dataset) + listing.pop(None, [])
    }
    for case_id, problem in case_id_problems(dataset):
        by_case.setdefault(case_id, []).append(_case_id_problem(dataset, case_id, problem))
    for case, _ in _all_cases(dataset):
        by_case.setdefault(case.case_id, []).extend(listing.pop(case.case_id, []))
    for result in results:
        by_case.setdefault(result.case_id, []).extend(result.problems)
    for case_id, problems in listing.items():  # orphan files named after cases that do not exist
        by_case.setdefault(case_id, []).extend(problems)
    for problem in _dimensionality_problems(results):
        by_case.setdefault(problem.case_id, []).append(problem)
    for problem in _spacing_problems(results):
        by_case.setdefault(problem.case_id, []).append(problem)
    report.problems = [p for problems in by_case.values() for p in problems]
    report.summary = _summary(dataset, results)
    return report


def _dataset_json_fix(root: Path) -> str:
    """What to do when the dataset cannot be opened at all."""
    if not root.is_dir():
        return f"check the path: {root} does not exist; pass the dataset folder (the one holding dataset.json)"
    if not (root / "dataset.json").is_file():
        return ('write dataset.json (see docs/dataset_format.md), or for a folder of images and masks run '
                '"autounet import"')
    return "fix dataset.json (see docs/dataset_format.md), then run the check again"


def _case_id_problem(dataset: Dataset, case_id: str, problem: str) -> Problem:
    """A case id that cannot be a file name (it names preprocessed arrays and predictions), or a repeated one."""
    json_path = dataset.root / "dataset.json"
    if problem.startswith("appears"):
        return _problem(
            "error", case_id, [json_path], f"case {case_id!r} {problem}: one of them would overwrite the other's "
            "files and it would count twice in the splits",
            "remove the duplicate entry from dataset.json, or rename one of the cases", "duplicate_case",
        )
    return _problem(
        "error", case_id, [json_path], f"case id {case_id!r} {problem}, so it cannot be used as a file name (the "
        "preprocessed arrays and predictions are named after it; a path there would write outside the output folder)",
        f"rename the case (its dataset.json entry or its files) to letters, digits and {SAFE_PUNCTUATION}, without "
        'path separators or ".."', "unsafe_case_id",
    )


def _all_cases(dataset: Dataset) -> list[tuple[Case, bool]]:
    return [(case, True) for case in dataset.training] + [(case, False) for case in dataset.test]


def _task(dataset: Dataset, case: Case, is_training: bool) -> CaseTask:
    existing = tuple(str(p) for p in case.image_files if p.exists())  # a file, or a DICOM series folder
    complete = len(existing) == len(case.image_files)
    label = str(case.label_file) if is_training and case.label_file is not None and case.label_file.is_file() else None
    return CaseTask(
        case_id=case.case_id,
        image_files=existing,
        label_file=label,
        num_channels=dataset.num_channels if complete else None,
        label_values=dataset.description.label_values,
    )


def _problem(severity, case_id, files, message, fix, kind) -> Problem:
    return Problem(severity, case_id, tuple(str(f) for f in files), message, fix, kind)


def _dataset_problems(dataset: Dataset) -> list[Problem]:
    """``numTraining``, no cases, label declarations."""
    json_path = dataset.root / "dataset.json"
    problems = []
    declared, found = dataset.description.num_training, len(dataset.training)
    where = "listed in dataset.json" if dataset.description.layout == "msd" else "found in imagesTr/"
    if declared is None:
        problems.append(_problem(
            "warning", None, [json_path], f"numTraining is missing; {found} training cases are {where}",
            f'add "numTraining": {found} to dataset.json', "num_training",
        ))
    elif declared != found:
        problems.append(_problem(
            "error", None, [json_path], f"numTraining is {declared} but {found} training cases are {where}",
            f'set "numTraining": {found} in dataset.json, or add/remove the missing or extra cases', "num_training",
        ))
    if not dataset.training:
        problems.append(_problem(
            "error", None, [json_path], "no training cases found",
            "list the cases in dataset.json 'training' (MSD) or put CASE_0000 files into imagesTr/ (nnU-Net v2)",
            "no_cases",
        ))
    regions = region_labels_message(dataset.description, str(json_path))
    if regions is not None:
        message, _, fix = regions.partition("; ")
        problems.append(_problem("error", None, [json_path], message, fix, "region_labels"))
    values = dataset.description.label_values
    if values != tuple(range(len(values))):
        problems.append(_problem(
            "warning", None, [json_path], f"declared label values {list(values)} are not 0, 1, ..., {len(values) - 1}",
            "renumber the labels consecutively from 0 (background); nnU-Net-style training expects that", "label_numbering",
        ))
    return problems


#: Written by ``autounet import-dicom``: the series and labels it could not pair or import.
DICOM_IMPORT_RECORD = "dicom_import.json"


def _dicom_import_problems(dataset: Dataset) -> list[Problem]:
    """Every series or label ``import-dicom`` left out (unpaired or mismatched), as warnings naming the reason."""
    path = dataset.root / DICOM_IMPORT_RECORD
    if not path.is_file():
        return []
    try:
        record = read_json(path)
    except ValueError as err:
        return [_problem("warning", None, [path], f"unreadable import record ({err})", "re-run autounet import-dicom",
                         "dicom_import_record")]
    problems = []
    for entry in record.get("unpaired", []):
        what = f"series in {entry['folder']} ({entry.get('series', '?')})" if entry.get("folder") else f"label {entry.get('label')}"
        problems.append(_problem(
            "warning", None, [path], f"import-dicom left out the {what}: {entry.get('reason', '')}",
            "add the missing label (or series) and run autounet import-dicom again, or ignore it if it is unlabelled",
            "dicom_unpaired",
        ))
    for entry in record.get("mismatched", []):
        problems.append(_problem(
            "warning", entry.get("case"), [path], f"import-dicom could not import series {entry.get('series')} with "
            f"label {entry.get('label')}: {entry.get('reason', '')}",
            "fix the label (it must be drawn on this series) and run autounet import-dicom again", "dicom_mismatch",
        ))
    return problems


def _list_files(dataset: Dataset) -> dict[str | None, list[Problem]]:
    """File-level problems per case id (None: not tied to a case)."""
    problems: dict[str | None, list[Problem]] = {}
    for case, is_training in _all_cases(dataset):
        for problem in _missing_files(dataset, case, is_training):
            problems.setdefault(case.case_id, []).append(problem)
    if dataset.description.layout == "msd":
        extra = _msd_unreferenced(dataset)
    elif "dataset" in dataset.description.extra:
        extra = []  # explicit file lists: only the listed files matter
    else:
        extra = _nnunet_v2_orphans(dataset)
    for problem in extra:
        problems.setdefault(problem.case_id, []).append(problem)
    return problems


def _missing_files(dataset: Dataset, case: Case, is_training: bool) -> list[Problem]:
    found = [p for p in case.image_files if p.exists()]  # a file, or a DICOM series folder
    missing = [p for p in case.image_files if not p.exists()]
    label = case.label_file
    label_exists = label is not None and label.is_file()
    problems = []
    if missing and len(case.image_files) > 1 and found:
        for path in missing:
            problems.append(_problem(
                "error", case.case_id, [path], f"channel file {path.name} is missing ({len(found)} of "
                f"{len(case.image_files)} channel files found)",
                "add the missing channel file (one file per channel in channel_names), or remove the case",
                "missing_channel",
            ))
    elif missing:
        what = "image" if not is_training else ("image (the label exists)" if label_exists else "image and label")
        problems.append(_problem(
            "error", case.case_id, missing + ([label] if label is not None and not label_exists else []),
            f"{what} not found: {', '.join(p.name for p in missing)}",
            "restore the image file, or remove the case" + (" from dataset.json" if dataset.description.layout == "msd"
                                                             else " (and its label)"),
            "missing_image",
        ))
    if is_training and found and not label_exists:
        described = f"{label.parent.name}/{label.name} not found" if label is not None else "no label given in dataset.json"
        problems.append(_problem(
            "error", case.case_id, found + ([label] if label is not None else []), f"image without label: {described}",
            "add the label file, or move the image to imagesTs/ (unlabelled cases are test cases)", "missing_label",
        ))
    return problems


def _visible_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _msd_unreferenced(dataset: Dataset) -> list[Problem]:
    referenced = {p.resolve() for case in dataset.training + dataset.test for p in (*case.image_files, case.label_file) if p}
    problems = []
    folders = ["imagesTr", "labelsTr"] + (["imagesTs"] if dataset.test else [])
    for folder in folders:
        for path in _visible_files(dataset.root / folder):
            if path.resolve() not in referenced:
                problems.append(_problem(
                    "warning", None, [path], f"{folder}/{path.name} is not listed in dataset.json, so it is ignored",
                    "add it to 'training' (with its label) or 'test' in dataset.json, or delete it", "unreferenced_file",
                ))
    return problems


def _nnunet_v2_orphans(dataset: Dataset) -> list[Problem]:
    ending, channels = dataset.description.file_ending, dataset.num_channels
    problems = []
    cases: dict[str, set[str]] = {"imagesTr": set(), "imagesTs": set()}
    for folder in ("imagesTr", "imagesTs"):
        for path in _visible_files(dataset.root / folder):
            match = _CHANNEL_FILE.match(path.name[: -len(ending)]) if path.name.endswith(ending) else None
            if match is None:
                problems.append(_ignored(path, folder, f"CASE_0000{ending}"))
                continue
            cases[folder].add(match["case"])
            if int(match["channel"]) >= channels:
                problems.append(_problem(
                    "error", match["case"], [path], f"channel file {path.name} has channel index "
                    f"{int(match['channel'])} but dataset.json declares {channels} channel(s) (_0000.._{channels - 1:04d})",
                    "add the channel to channel_names in dataset.json, or remove the file", "extra_channel",
                ))
    for path in _visible_files(dataset.root / "labelsTr"):
        if not path.name.endswith(ending):
            problems.append(_ignored(path, "labelsTr", f"CASE{ending}"))
        elif path.name[: -len(ending)] not in cases["imagesTr"]:
            case_id = path.name[: -len(ending)]
            problems.append(_problem(
                "error", case_id, [path], f"label without image: no {case_id}_0000{ending} in imagesTr/",
                "add the image channel file(s), or delete the label", "missing_image",
            ))
    return problems


def _ignored(path: Path, folder: str, expected: str) -> Problem:
    return _problem(
        "warning", None, [path], f"{folder}/{path.name} does not match the file pattern {expected}, so it is ignored",
        "rename it to the pattern (and the dataset.json file_ending), or delete it", "ignored_file",
    )


def _dimensionality_problems(results: list[CaseResult]) -> list[Problem]:
    """2D cases among 3D ones (or the reverse): the minority is reported."""
    kinds = Counter(r.is_2d for r in results if r.is_2d is not None)
    if len(kinds) < 2:
        return []
    odd = kinds[True] <= kinds[False]  # the 2D cases are the odd ones out unless they are the majority
    majority = "3D" if odd else "2D"
    return [
        _problem(
            "error", r.case_id, [r.image_file] if r.image_file else [], f"the case is {'2D' if odd else '3D'} (shape {r.shape}) but "
            f"{kinds[not odd]} of {sum(kinds.values())} cases are {majority}",
            f"export every case as {majority} (a 2D slice must not be mixed with 3D volumes), or remove the case",
            "dimensionality",
        )
        for r in results if r.is_2d is odd
    ]


def _spacing_problems(results: list[CaseResult]) -> list[Problem]:
    """Cases whose spacing is off the dataset's median by a unit mix-up (rule: ``spacing_outlier``)."""
    measured = [r for r in results if r.spacing is not None and all(s > 0 for s in r.spacing)]
    if len(measured) < 3:
        return []
    median = median_spacing([r.spacing for r in measured])
    problems = []
    for result in measured:
        problem = spacing_outlier(result.spacing, median, bool(result.is_2d))
        if problem is not None:
            problems.append(_problem(
                "error", result.case_id, [result.image_file] if result.image_file else [],
                f"{problem} (the dataset's median): resampled to the median it would be "
                f"{'shrunk to almost nothing' if 'finer' in problem else 'blown up'}",
                "check the header's unit (mm expected) and voxel size, or remove the case", "implausible_spacing",
            ))
    return problems


def _summary(dataset: Dataset, results: list[CaseResult]) -> dict:
    description = dataset.description
    measured = [r for r in results if r.shape is not None]
    flat = {r.is_2d for r in measured}
    summary = {
        "name": description.name,
        "layout": description.layout,
        "num_training": len(dataset.training),
        "num_test": len(dataset.test),
        "channel_names": list(description.channel_names),
        "labels": dict(description.labels),
        "regions": {k: list(v) for k, v in description.regions.items()},
        "dimensionality": "unknown" if not flat else ("mixed 2D/3D" if len(flat) > 1 else ("2D" if True in flat else "3D")),
    }
    if measured:
        spacing = np.array([r.spacing for r in measured], dtype=float)
        shape = np.array([r.shape for r in measured], dtype=int)
        summary.update(
            spacing_min=spacing.min(axis=0).round(4).tolist(), spacing_max=spacing.max(axis=0).round(4).tolist(),
            shape_min=shape.min(axis=0).tolist(), shape_max=shape.max(axis=0).tolist(),
        )
    return summary
