"""The cascade's training input: the previous stage's cross-validation predictions on this stage's grid.

A cascade stage (``3d_cascade_fullres``) sees the image plus the segmentation of its previous stage
(``3d_lowres``) as one-hot channels. At inference that segmentation is the previous stage's prediction of the new
image; for training it must be a prediction the previous stage made *without* having trained on the case, or the
cascade learns to trust an input that is never that good again. So, as nnU-Net does, every training case gets the
prediction of the previous-stage fold that held it out: its final validation, exported in the input geometry to
``RESULTS/<previous stage>/fold_K/validation/CASE<ending>``.

Each such prediction goes through :func:`autounet.preprocessing.preprocess_case` as the label of its image for the
cascade configuration: exactly what :class:`autounet.inference.Predictor` does with the previous stage's prediction
of a new image. Training and inference therefore see the same input. The results are stored once, as label maps of
the preprocessed shape, in ``RESULTS/preprocessed/<data identifier>__from_<previous stage>/CASE.npy``; a case is
redone when its prediction file is newer than the stored map.

:class:`CascadeSource` then serves the preprocessed store with the previous segmentation as a second label channel.
The training loader keeps it among the labels through the spatial augmentation (so it moves with the image) and
only then turns it into one-hot data channels (``autounet.trainers.data.augmentation``), so no intensity
augmentation ever touches it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autounet.dataset import load_dataset
from autounet.errors import MissingStageError
from autounet.io import read_image
from autounet.jsonio import save_npy
from autounet.layout import ResultsLayout
from autounet.parallel import auto_workers, map_with_progress
from autounet.planners.plans import Plans
from autounet.preprocessing import preprocess_case
from autounet.trainers.splits import parse_fold

logger = logging.getLogger(__name__)


def previous_stage_folder(results_dir: Path, plans: Plans, configuration_name: str) -> Path:
    """``RESULTS/preprocessed/<data identifier>__from_<previous stage>``: where the mapped predictions live."""
    configuration = plans.configuration(configuration_name)
    return ResultsLayout(results_dir).previous_stage_predictions(
        configuration.data_identifier or configuration.name, str(configuration.previous_stage)
    )


def previous_predictions(
    results_dir: Path, previous_stage: str, splits: Sequence[Mapping[str, Sequence[str]]], case_ids: Sequence[str], ending: str
) -> dict[str, Path]:
    """The cross-validation prediction of the previous stage for every case in ``case_ids``.

    Raises
    ------
    MissingStageError
        Naming the previous-stage folds whose final validation is missing, and the command that makes them.
    """
    layout = ResultsLayout(results_dir)
    held_out = {case: fold for fold, split in enumerate(splits) for case in split["val"]}
    found: dict[str, Path] = {}
    missing_folds: set[int] = set()
    not_in_splits = []
    for case_id in case_ids:
        if case_id not in held_out:
            not_in_splits.append(case_id)
            continue
        path = layout.validation_prediction(previous_stage, held_out[case_id], case_id, ending)
        if path.is_file():
            found[case_id] = path
        else:
            missing_folds.add(held_out[case_id])
    if not_in_splits:
        raise MissingStageError(
            f"{layout.splits}: cases {', '.join(not_in_splits[:5])} are in no fold's validation "
            "set, so the previous stage has no cross-validation prediction of them; use a split whose validation "
            "sets cover every case (or delete splits.json to have it made again)"
        )
    if missing_folds:
        folds = " ".join(str(f) for f in sorted(missing_folds))
        raise MissingStageError(
            f"the cascade trains on the cross-validation predictions of {previous_stage}, but folds {folds} of "
            f"{previous_stage} have no final validation in {layout.configuration(previous_stage)}; train them first: "
            + "; ".join(f'"autounet train {results_dir} {previous_stage} {f}"' for f in sorted(missing_folds))
        )
    return found


@dataclass(frozen=True)
class _MapTask:
    dataset_root: str
    case_id: str
    prediction: str
    output: str
    plans: dict[str, Any]
    configuration: str


def _map_prediction(task: _MapTask) -> str:
    """Preprocess one previous-stage prediction as the label of its image, onto the cascade's grid."""
    dataset = load_dataset(task.dataset_root)
    case = dataset.case(task.case_id)
    image = dataset.read_images(case)
    prediction = read_image(task.prediction)
    plans = Plans.from_dict(task.plans)
    _, seg, _ = preprocess_case(image, plans, task.configuration, label=prediction, case_id=task.case_id)
    assert seg is not None
    save_npy(task.output, np.ascontiguousarray(seg))
    return task.case_id


def prepare_previous_stage(
    results_dir: Path,
    plans: Plans,
    configuration_name: str,
    splits: Sequence[Mapping[str, Sequence[str]]],
    case_ids: Sequence[str],
    dataset_root: Path,
    workers: int | None = 1,
    progress: bool = False,
) -> Path:
    """Map the previous stage's cross-validation predictions of ``case_ids`` onto the cascade's preprocessed grid.

    Parameters
    ----------
    results_dir : Path
        The dataset's results folder.
    plans : Plans
    configuration_name : str
        The cascade configuration (one with a ``previous_stage``).
    splits : sequence of dict
        The cross-validation folds (``splits.json``): they say which previous-stage fold predicted which case.
    case_ids : sequence of str
        Cases the cascade trains or validates on.
    dataset_root : Path
        The raw dataset (the images are preprocessed again with their prediction as label).
    workers : int or None
        Processes for the cases to map (default: one for small datasets, else the CPU cores).
    progress : bool

    Returns
    -------
    Path
        The folder of ``CASE.npy`` label maps (see :func:`previous_stage_folder`).

    Raises
    ------
    MissingStageError
        When a previous-stage fold has not been trained and validated yet.
    """
    configuration = plans.configuration(configuration_name)
    if not configuration.previous_stage:
        raise ValueError(f"{configuration_name} has no previous stage; only a cascade stage needs its predictions")
    dataset = load_dataset(dataset_root)
    ending = dataset.description.file_ending
    predictions = previous_predictions(results_dir, configuration.previous_stage, splits, case_ids, ending)
    folder = previous_stage_folder(results_dir, plans, configuration_name)
    folder.mkdir(parents=True, exist_ok=True)
    tasks = []
    for case_id, prediction in sorted(predictions.items()):
        output = folder / f"{case_id}.npy"
        if output.is_file() and output.stat().st_mtime >= prediction.stat().st_mtime:
            continue
        tasks.append(_MapTask(str(dataset_root), case_id, str(prediction), str(output), plans.to_dict(), configuration_name))
    if tasks:
        logger.info("mapping %d %s predictions onto the %s grid", len(tasks), configuration.previous_stage, configuration_name)
        images = [f for t in tasks for f in dataset.case(t.case_id).image_files]
        workers = auto_workers(sum(Path(f).stat().st_size for f in images), workers)
        map_with_progress(_map_prediction, tasks, workers, progress, f"{configuration.previous_stage} -> {configuration_name}")
    return folder


class _StackedLabels:
    """Two label maps of the same shape, read as one ``(2, *spatial)`` array, slice by slice (memory maps stay lazy)."""

    def __init__(self, first: np.ndarray, second: np.ndarray) -> None:
        self.arrays = (first, second)
        self.dtype = np.result_type(first.dtype, second.dtype)
        self.shape = (2, *first.shape[1:])
        self.ndim = len(self.shape)

    def __getitem__(self, index: Any) -> np.ndarray:
        index = index if isinstance(index, tuple) else (index,)
        channels, rest = (index[0], index[1:]) if index else (slice(None), ())
        parts = [np.asarray(a[(slice(None), *rest)], dtype=self.dtype) for a in self.arrays]
        return np.concatenate(parts)[channels]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)


class CascadeSource:
    """A preprocessed store whose label maps carry the previous stage's segmentation as a second channel.

    ``load`` returns ``seg`` of shape ``(2, *spatial)``: the reference labels, then the previous stage's prediction
    (label values; ``-1`` outside the non-zero mask where the plans normalise inside it). Everything else is the
    store's.
    """

    def __init__(self, store: Any, folder: Path) -> None:
        self.store = store
        self.folder = Path(folder)
        self.manifest = getattr(store, "manifest", None)

    @property
    def case_ids(self) -> Sequence[str]:
        return self.store.case_ids

    def load(self, case_id: str, mmap: bool = True) -> tuple[np.ndarray, Any, Any]:
        data, seg, properties = self.store.load(case_id, mmap=mmap)
        path = self.folder / f"{case_id}.npy"
        try:
            previous = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise MissingStageError(
                f"{path}: the previous stage's prediction of {case_id} on this grid is missing or damaged ({err}); "
                "delete it and train again, which maps it anew"
            ) from None
        if previous.shape != seg.shape:
            raise MissingStageError(
                f"{path}: shape {previous.shape} does not fit the preprocessed case {seg.shape}; the preprocessing "
                "changed since it was made: delete the folder and train again"
            )
        return data, (_StackedLabels(seg, previous) if mmap else np.concatenate([seg, previous.astype(seg.dtype)])), properties

    def foreground_locations(self, case_id: str) -> Mapping[int, np.ndarray]:
        return self.store.foreground_locations(case_id)

    def properties(self, case_id: str) -> Any:
        return self.store.properties(case_id)


def cascade_case_ids(splits: Sequence[Mapping[str, Sequence[str]]], fold: Any, case_ids: Sequence[str]) -> list[str]:
    """Cases a cascade fold needs previous-stage predictions of: every case of the fold (training and validation).

    Examples
    --------
    >>> cascade_case_ids([{"train": ["a"], "val": ["b"]}], 0, ["a", "b", "c"])
    ['a', 'b']
    >>> cascade_case_ids([{"train": ["a"], "val": ["b"]}], "all", ["a", "b", "c"])
    ['a', 'b', 'c']
    """
    fold = parse_fold(fold)
    if fold == "all":
        return sorted(case_ids)
    split = splits[int(fold)]
    return sorted({*split["train"], *split["val"]})
