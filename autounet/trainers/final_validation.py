"""Final validation of a fold: predict its validation cases at full size, export them, score them.

Prediction is the inference stage's sliding window (:func:`autounet.inference.predict_logits`, Gaussian blending
and mirroring), export is its :func:`~autounet.inference.export.export_prediction` (back to the input geometry) and
scoring is the evaluation stage's :func:`~autounet.evaluation.evaluate_cases` against the raw label files.
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
from tqdm import tqdm  # type: ignore[import-untyped]

from autounet.jsonio import read_json, write_json
from autounet.layout import FOLD_SUMMARY_FILE, VALIDATION_FOLDER
from autounet.trainers.distributed import DistributedContext

logger = logging.getLogger(__name__)

#: Per-case time beyond the network (reading, export, evaluation) in the budget's estimate, in seconds; measured
#: on Hippocampus on 2 cores (about 0.15 s) with a margin.
PER_CASE_OVERHEAD_SECONDS = 0.3
DEFAULT_FILE_ENDING = ".nii.gz"


class FinalValidation:
    """Predict, export and evaluate the validation cases of one fold; only the writing rank does the work.

    Parameters
    ----------
    plans : Plans
    configuration : ConfigurationPlan
        The effective configuration (its patch size and context slices drive the sliding window).
    source : CaseSource
        The preprocessed store.
    case_ids : list of str
        The fold's validation cases.
    fold_dir : Path
        Output goes to ``fold_dir/validation/``.
    dataset : path or None
        Raw dataset folder with the reference labels; default the one recorded in the store's manifest.
    device : torch.device
    context : DistributedContext
    save_probabilities : bool
        Also write ``CASE.npz`` probabilities (for ``autounet find-best`` ensembles).
    """

    def __init__(
        self,
        plans: Any,
        configuration: Any,
        source: Any,
        case_ids: list[str],
        fold_dir: Path,
        dataset: Any,
        device: torch.device,
        context: DistributedContext,
        save_probabilities: bool = False,
    ) -> None:
        self.plans = plans
        self.configuration = configuration
        self.source = source
        self.case_ids = list(case_ids)
        self.fold_dir = Path(fold_dir)
        self.dataset = dataset
        self.device = device
        self.context = context
        self.save_probabilities = save_probabilities
        self._network: nn.Module | None = None
        self._dtype = torch.float32
        self._loaded_dataset: Any = None

    def bind(self, network: nn.Module, dtype: torch.dtype) -> None:
        """The network and precision :meth:`estimate_seconds` times (the trainer's, during training)."""
        self._network, self._dtype = network, dtype

    def estimate_seconds(self) -> float:
        """Seconds the final validation will take: the largest case predicted and timed, scaled by voxel count."""
        if not self.case_ids or self._network is None or not self.context.is_writer:
            return 0.0
        sizes = [int(np.prod(self.source.properties(c).shape_after_resampling)) for c in self.case_ids]
        probe = self.case_ids[int(np.argmax(sizes))]
        started = time.monotonic()
        self._predict(self._network, probe, self._dtype)
        seconds = time.monotonic() - started
        # Sliding-window time grows with the number of tiles; small images still cost one padded tile.
        return sum(seconds * max(size / max(sizes), 0.5) + PER_CASE_OVERHEAD_SECONDS for size in sizes)

    def _predict(self, network: nn.Module, case_id: str, dtype: torch.dtype) -> tuple[torch.Tensor, Any]:
        from autounet.inference import predict_logits

        data, seg, properties = self.source.load(case_id, mmap=False)
        if self.configuration.previous_stage:  # a cascade: the previous stage's prediction as one-hot channels
            from autounet.inference.ensemble import one_hot_foreground

            data = np.concatenate([data, one_hot_foreground(np.asarray(seg)[1], self.plans.label_values, np.float32)])
        logits = predict_logits(
            network,
            np.asarray(data),
            self.configuration.patch_size,
            context_slices=self.configuration.context_slices,
            device=self.device,
            autocast_dtype=None if dtype == torch.float32 else dtype,
        )
        return logits, properties

    def existing(self) -> dict[str, Any] | None:
        """The summary of a final validation that already ran completely (a resumed, finished fold), else None."""
        path = self.fold_dir / VALIDATION_FOLDER / FOLD_SUMMARY_FILE
        if not path.is_file():
            return None
        try:
            summary = read_json(path)
        except ValueError:
            return None
        return summary if isinstance(summary, dict) and summary.get("cases") == len(self.case_ids) else None

    def run(self, network: nn.Module, dtype: torch.dtype, progress: bool = False) -> dict[str, Any] | None:
        """Predict every validation case, write it in the input geometry, evaluate, write ``summary.json``.

        Returns
        -------
        dict or None
            ``{"cases", "seconds", "mean_dice": {label name: Dice}, "foreground_mean_dice"}`` (Dice only when the
            reference labels are available); None on non-writing ranks.
        """
        from autounet.inference.export import export_prediction

        if not self.context.is_writer or not self.case_ids:
            return None
        output = self.fold_dir / VALIDATION_FOLDER
        output.mkdir(parents=True, exist_ok=True)
        dataset = self._raw_dataset()
        ending = getattr(getattr(dataset, "description", None), "file_ending", None) or DEFAULT_FILE_ENDING
        pairs = []
        started = time.monotonic()
        for case_id in tqdm(self.case_ids, desc="final validation", unit="case", disable=not progress, leave=False):
            logits, properties = self._predict(network, case_id, dtype)
            segmentation = export_prediction(
                logits,
                properties,
                self.plans,
                self.configuration.name,
                output / f"{case_id}{ending}",
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
        from autounet.evaluation import evaluate_cases

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
        root = self.dataset
        if root is None:
            manifest = getattr(self.source, "manifest", None) or {}
            root = manifest.get("dataset")
        if root is None or not Path(root).is_dir():
            logger.warning("final validation: raw dataset not found (%s); predictions will not be scored", root)
            return None
        from autounet.dataset import load_dataset

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
