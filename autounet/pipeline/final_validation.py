"""Final validation of a trained fold: predict its validation cases at full size, export them, score them.

It runs after :func:`autounet.trainers.fit_fold`, through the inference stage's public API: the fold is loaded as
``autounet predict`` loads it (:func:`autounet.inference.load_trained_fold`, from its fold record), predicted with
:func:`autounet.inference.predict_logits` (Gaussian blending and mirroring) and exported with
:func:`autounet.inference.export_prediction` (back to the input geometry); scoring is the evaluation stage's
:func:`autounet.evaluation.evaluate_cases` against the raw label files. The pipeline may depend on trainers and
inference; neither of them depends on the other.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from autounet.dataset import load_dataset
from autounet.evaluation import evaluate_cases
from autounet.inference import export_prediction, load_trained_fold, one_hot_foreground, predict_logits
from autounet.jsonio import read_json, write_json
from autounet.layout import FOLD_SUMMARY_FILE, ResultsLayout
from autounet.progress import track
from autounet.trainers.train_fold import FoldSetup

logger = logging.getLogger(__name__)

#: Per-case time beyond the network (reading, export, evaluation) in the budget's estimate, in seconds; measured
#: on Hippocampus on 2 cores (about 0.15 s) with a margin.
PER_CASE_OVERHEAD_SECONDS = 0.3
DEFAULT_FILE_ENDING = ".nii.gz"


class FinalValidation:
    """Predict, export and evaluate the validation cases of one fold; only the writing rank does the work.

    Parameters
    ----------
    setup : FoldSetup
        The fold (:func:`autounet.trainers.setup_fold`): plans, store, validation cases, device, raw dataset.
    save_probabilities : bool
        Also write ``CASE.npz`` probabilities (for ``autounet find-best`` ensembles).
    """

    def __init__(self, setup: FoldSetup, save_probabilities: bool = False) -> None:
        self.setup = setup
        self.plans = setup.plans
        self.source = setup.source
        self.case_ids = list(setup.validation_ids)
        self.fold_dir = Path(setup.fold_dir)
        self.save_probabilities = save_probabilities
        self._loaded_dataset: Any = None

    def estimate_seconds(self, network: nn.Module, dtype: torch.dtype) -> float:
        """Seconds the final validation will take: the largest case predicted with ``network`` (the one being
        trained) and timed, scaled by voxel count.

        Parameters
        ----------
        network : nn.Module
            The network as trained so far.
        dtype : torch.dtype
            Autocast dtype (float32 = none).
        """
        if not self.case_ids or not self.setup.context.is_writer:
            return 0.0
        sizes = [int(np.prod(self.source.properties(c).shape_after_resampling)) for c in self.case_ids]
        probe = self.case_ids[int(np.argmax(sizes))]
        configuration = self.setup.configuration
        started = time.monotonic()
        self._predict(network, configuration.patch_size, configuration.context_slices, "all", probe, dtype)
        seconds = time.monotonic() - started
        # Sliding-window time grows with the number of tiles; small images still cost one padded tile.
        return sum(seconds * max(size / max(sizes), 0.5) + PER_CASE_OVERHEAD_SECONDS for size in sizes)

    def _predict(
        self, network: nn.Module, patch_size: Any, context_slices: int, mirror_axes: Any, case_id: str, dtype: torch.dtype
    ) -> tuple[torch.Tensor, Any]:
        data, seg, properties = self.source.load(case_id, mmap=False)
        if self.setup.configuration.previous_stage:  # a cascade: the previous stage's prediction as one-hot channels
            data = np.concatenate([data, one_hot_foreground(np.asarray(seg)[1], self.plans.label_values, np.float32)])
        logits = predict_logits(
            network,
            np.asarray(data),
            patch_size,
            mirror_axes=mirror_axes,
            context_slices=context_slices,
            device=self.setup.device,
            autocast_dtype=None if dtype == torch.float32 else dtype,
        )
        return logits, properties

    def existing(self) -> dict[str, Any] | None:
        """The summary of a final validation that already ran completely (a resumed, finished fold), else None."""
        path = ResultsLayout(self.setup.results_dir).validation(self.setup.configuration_name, self.setup.fold) / FOLD_SUMMARY_FILE
        if not path.is_file():
            return None
        try:
            summary = read_json(path)
        except ValueError:
            return None
        return summary if isinstance(summary, dict) and summary.get("cases") == len(self.case_ids) else None

    def run(self, dtype: torch.dtype, progress: bool = False) -> dict[str, Any] | None:
        """Load the fold's final checkpoint as inference does, predict every validation case, write it in the input
        geometry, evaluate, write ``summary.json`` and ``fold_summary.json``.

        Parameters
        ----------
        dtype : torch.dtype
            Autocast dtype of the predictions (the training's; float32 = none).
        progress : bool
            Progress bar over the cases.

        Returns
        -------
        dict or None
            ``{"cases", "seconds", "mean_dice": {label name: Dice}, "foreground_mean_dice"}`` (Dice only when the
            reference labels are available); None on non-writing ranks.
        """
        setup = self.setup
        if not setup.context.is_writer or not self.case_ids:
            return None
        trained = load_trained_fold(setup.results_dir, self.plans, setup.configuration_name, setup.fold, "final",
                                    setup.device)
        mirror_axes = trained.mirror_axes if trained.mirror_axes is not None else "all"
        layout = ResultsLayout(setup.results_dir)
        output = layout.validation(setup.configuration_name, setup.fold)
        output.mkdir(parents=True, exist_ok=True)
        dataset = self._raw_dataset()
        ending = getattr(getattr(dataset, "description", None), "file_ending", None) or DEFAULT_FILE_ENDING
        pairs = []
        started = time.monotonic()
        for case_id in track(self.case_ids, len(self.case_ids), "final validation", enabled=progress):
            logits, properties = self._predict(
                trained.network, trained.patch_size, trained.context_slices, mirror_axes, case_id, dtype
            )
            segmentation = export_prediction(
                logits,
                properties,
                self.plans,
                setup.configuration_name,
                layout.validation_prediction(setup.configuration_name, setup.fold, case_id, ending),
                save_probabilities=self.save_probabilities,
            )
            reference = self._reference(dataset, case_id)
            if reference is not None:
                pairs.append((case_id, reference[0], segmentation, reference[1]))
        summary: dict[str, Any] = {"cases": len(self.case_ids), "seconds": time.monotonic() - started}
        if pairs:
            summary.update(self._evaluate(pairs, output, dataset))
        else:
            summary["note"] = "no reference labels found (pass the dataset folder); predictions were not scored"
        write_json(output / FOLD_SUMMARY_FILE, summary)
        logger.info("final validation of %s: %s", self.fold_dir, summary)
        return summary

    def _evaluate(self, pairs: list[Any], output: Path, dataset: Any) -> dict[str, Any]:
        result = evaluate_cases(pairs, labels=[v for v in self.plans.label_values if v != 0])
        labels_dir = Path(dataset.root) / "labelsTr" if dataset is not None else None
        result = dataclasses.replace(
            result,
            reference_dir=str(labels_dir) if labels_dir is not None and labels_dir.is_dir() else "",
            prediction_dir=str(output),
        )
        result.save(output)
        by_value = {str(v): name for name, v in self.plans.labels.items()}
        mean_dice = {by_value.get(label, label): float(result.mean[label]["Dice"]) for label in result.labels}
        return {
            "mean_dice": mean_dice,
            "foreground_mean_dice": float(np.nanmean(list(mean_dice.values()))) if mean_dice else float("nan"),
            "failures": dict(result.failures),
        }

    def _raw_dataset(self) -> Any:
        """The raw dataset (for labels and the file ending), or None when it cannot be found."""
        if self._loaded_dataset is not None:
            return self._loaded_dataset
        root = self.setup.dataset
        if root is None:
            manifest = getattr(self.source, "manifest", None) or {}
            root = manifest.get("dataset")
        if root is None or not Path(root).is_dir():
            logger.warning("final validation: raw dataset not found (%s); predictions will not be scored", root)
            return None
        self._loaded_dataset = load_dataset(root)
        return self._loaded_dataset

    @staticmethod
    def _reference(dataset: Any, case_id: str) -> tuple[np.ndarray, tuple[float, ...]] | None:
        if dataset is None:
            return None
        case = next((c for c in dataset.training if c.case_id == case_id), None)
        if case is None or case.label_file is None:
            return None
        label = dataset.read_label(case)
        return np.asarray(label.data[0]), tuple(label.geometry.spacing)
