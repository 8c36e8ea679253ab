"""``Predictor``: trained folds kept in memory, turning images into segmentations in their own geometry.

One case goes through three steps, which :mod:`autounet.inference.batch` overlaps across cases:
:meth:`Predictor.prepare` (preprocess for every configuration; no network), :meth:`Predictor.infer` (sliding window
over every fold, the cascade's low-resolution stage first) and :meth:`Predictor.finish` (back to the input geometry,
configuration averaging, label map, post-processing, uncertainty).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np
import torch

from autounet.devices import resolve_device
from autounet.errors import DatasetError, MissingStageError, PlansError
from autounet.inference.batch import PredictionReport, predict_cases
from autounet.inference.ensemble import (
    FoldAverage,
    labels_from_probabilities,
    map_to_original_geometry,
    one_hot_foreground,
    segmentation_to_original,
    to_original_geometry,
)
from autounet.inference.export import OutputOptions, entropy_map
from autounet.inference.inputs import InputCase, cases_from_files, find_input_cases
from autounet.inference.model_folder import (
    CheckpointName,
    Fold,
    TrainedFold,
    PLANS_FILE,
    load_trained_folds,
    read_model_plans,
    trained_configurations,
    trained_folds,
)
from autounet.inference.postprocessing import PostprocessingDecision, apply_postprocessing, load_postprocessing
from autounet.inference.find_best import find_postprocessing_file, read_inference_json
from autounet.inference.sliding_window import AutocastDtype, predict_logits
from autounet.dicom.cases import parse_channel_map
from autounet.io import Geometry, Image
from autounet.jsonio import read_json
from autounet.layout import INFERENCE_FILE, ResultsLayout, checkpoint_file
from autounet.model_manifest import check_model_files
from autounet.plausibility import spacing_outlier
from autounet.planners.plans import Plans
from autounet.preprocessing.case import preprocess_case
from autounet.preprocessing.properties import CaseProperties
from autounet.typing import PathType

logger = logging.getLogger(__name__)

PostprocessingOption = Union[PostprocessingDecision, PathType, Literal["auto"], None]


@dataclass
class PreparedCase:
    """A case preprocessed for every configuration that does not need a previous stage's output."""

    image: Image
    case_id: str
    data: dict[str, tuple[np.ndarray, CaseProperties]] = field(default_factory=dict)


@dataclass
class InferredCase:
    """Fold-averaged probabilities of every ensemble configuration, each in its own preprocessed space.

    Only the input's geometry is kept, not its voxels, so the image is freed before the export.
    """

    geometry: Geometry
    case_id: str
    probabilities: dict[str, tuple[np.ndarray, CaseProperties]] = field(default_factory=dict)
    disagreement: dict[str, tuple[np.ndarray, CaseProperties]] = field(default_factory=dict)


@dataclass
class CasePrediction:
    """The result for one case, on the input image grid (array order ``(z, y, x)``).

    ``segmentation`` holds label values; ``probabilities`` ``(K, z, y, x)`` float32 (channel ``i`` is label value
    ``label_values[i]``); ``entropy`` the normalised entropy in [0, 1]; ``disagreement`` the fraction of ensemble
    members (folds) whose arg-max differs from the ensemble's, when several folds were used.
    """

    case_id: str
    segmentation: np.ndarray
    geometry: Geometry
    probabilities: np.ndarray | None = None
    entropy: np.ndarray | None = None
    disagreement: np.ndarray | None = None


class Predictor:
    """Trained networks of one model, kept in memory, that segment images in their own geometry.

    Create it with :meth:`from_model_folder`; the constructor only stores what it is given.

    Parameters
    ----------
    plans : Plans
        The plans the networks were trained with.
    models : mapping of str to sequence of TrainedFold
        Loaded folds per configuration, including the previous stage of a cascade.
    configurations : sequence of str
        Configurations whose probabilities are averaged (one for a single model, several for an ensemble).
    postprocessing : PostprocessingDecision, optional
        Applied to every label map.
    device : torch.device
        Where the networks are.
    step_size, mirroring, tile_batch_size, autocast_dtype
        Sliding-window settings (see :func:`~autounet.inference.sliding_window.predict_logits`).
    progress : bool
        Progress bar over the tiles of each fold (for large images).
    """

    def __init__(
        self,
        plans: Plans,
        models: Mapping[str, Sequence[TrainedFold]],
        configurations: Sequence[str],
        *,
        postprocessing: PostprocessingDecision | None = None,
        device: torch.device | str = "cpu",
        step_size: float = 0.5,
        mirroring: bool = True,
        tile_batch_size: int | None = None,
        autocast_dtype: AutocastDtype = "auto",
        progress: bool = False,
        model_dir: Path | None = None,
    ) -> None:
        self.plans = plans
        self.models = {name: list(folds) for name, folds in models.items()}
        self.configurations = tuple(configurations)
        self.postprocessing = postprocessing
        self.device = torch.device(device)
        self.step_size = step_size
        self.mirroring = mirroring
        self.tile_batch_size = tile_batch_size
        self.autocast_dtype = autocast_dtype
        self.progress = progress
        self.model_dir = model_dir

    # ------------------------------------------------------------------ creation
    @classmethod
    def from_model_folder(
        cls,
        model_dir: PathType,
        configurations: Sequence[str] | str | None = None,
        folds: Sequence[Fold] | None = None,
        checkpoint: CheckpointName = "final",
        device: torch.device | str = "auto",
        *,
        postprocessing: PostprocessingOption = "auto",
        **options: Any,
    ) -> "Predictor":
        """Load and check the trained folds of a model folder (``RESULTS/<dataset>``).

        Parameters
        ----------
        model_dir : str or Path
            Folder with ``plans.json`` and ``<configuration>/fold_<k>/checkpoint_<checkpoint>.pt``.
        configurations : str or sequence of str, optional
            Configurations to average. Default: the winner recorded in ``inference.json`` (``autounet find-best``),
            else the only trained configuration.
        folds : sequence of int or "all", optional
            Folds to average. Default: the folds in ``inference.json``, else every trained fold.
        checkpoint : {"final", "best", "latest"}
        device : str or torch.device
            ``"auto"``: CUDA, else MPS, else CPU.
        postprocessing : PostprocessingDecision, path, "auto" or None
            ``"auto"`` applies the decision that belongs to these configurations if ``autounet find-best`` (or the
            post-processing step) wrote one; ``None`` switches post-processing off.
        **options
            ``step_size``, ``mirroring``, ``tile_batch_size``, ``autocast_dtype``, ``progress`` (see the class).

        Raises
        ------
        PlansError, MissingStageError, CheckpointError, FileNotFoundError
            With a message naming the file, what is wrong and what to do; checkpoints holding anything but tensors and
            plain data are refused without running them.
        """
        model_dir = Path(model_dir)
        plans = read_model_plans(model_dir)
        recorded = read_inference_json(model_dir) if ResultsLayout(model_dir).inference.is_file() else None
        if isinstance(configurations, str):
            configurations = [configurations]
        if not configurations:
            configurations = _default_configurations(model_dir, plans, checkpoint, recorded)
            if folds is None and recorded is not None and recorded.get("folds"):
                folds = recorded["folds"]
        configurations = list(dict.fromkeys(configurations))
        _check_ensemble(model_dir, plans, configurations)
        found = find_postprocessing_file(model_dir, configurations) if postprocessing == "auto" else None
        check_model_files(model_dir, [PLANS_FILE, *([INFERENCE_FILE] if recorded is not None else []),
                                      *([found] if found is not None else []),
                                      *_checkpoint_files(model_dir, plans, configurations, folds, checkpoint)])
        torch_device = resolve_device(device) if isinstance(device, str) else device
        models: dict[str, list[TrainedFold]] = {}
        for name in configurations:
            for stage in _stages(plans, name):
                if stage not in models:
                    stage_folds = folds if stage in configurations else None
                    models[stage] = load_trained_folds(model_dir, plans, stage, stage_folds, checkpoint, torch_device)
        if postprocessing == "auto":
            decision = load_postprocessing(found) if found is not None else None
        elif postprocessing is None or isinstance(postprocessing, PostprocessingDecision):
            decision = postprocessing
        else:
            decision = load_postprocessing(postprocessing)
        logger.info(
            "loaded %s from %s; post-processing: %s",
            ", ".join(f"{n} folds {[f.fold for f in models[n]]}" for n in models),
            model_dir,
            decision.describe() if decision else "off",
        )
        return cls(plans, models, configurations, postprocessing=decision, device=torch_device, model_dir=model_dir, **options)

    # ------------------------------------------------------------------ facts
    @property
    def label_values(self) -> tuple[int, ...]:
        return self.plans.label_values

    @property
    def num_channels(self) -> int:
        return len(self.plans.channel_names)

    @property
    def num_members(self) -> int:
        """Networks averaged for the final probabilities (folds times configurations)."""
        return sum(len(self.models[name]) for name in self.configurations)

    def describe(self) -> str:
        members = "; ".join(f"{n} (folds {', '.join(str(f.fold) for f in self.models[n])})" for n in self.configurations)
        return f"{self.plans.dataset_name}: {members}"

    # ------------------------------------------------------------------ one image
    def predict_image(self, image: Image, *, return_probabilities: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Segment one image held in memory.

        Parameters
        ----------
        image : Image
            ``data`` of shape ``(C, z, y, x)`` with its geometry, as :func:`autounet.io.read_image` returns.
        return_probabilities : bool
            Also return the class probabilities (costs one float32 array per class on the input grid).

        Returns
        -------
        segmentation : ndarray of shape (z, y, x)
            Label values on the input grid (uint8 when they fit), post-processed if a decision is loaded.
        probabilities : ndarray of shape (K, z, y, x), float32, or None
            Averaged class probabilities on the input grid (channel ``i`` is label value ``label_values[i]``).
        """
        prediction = self.predict_case(image, probabilities=return_probabilities)
        return prediction.segmentation, prediction.probabilities

    def predict_case(self, image: Image, case_id: str = "", *, probabilities: bool = False, uncertainty: bool = False) -> CasePrediction:
        """:meth:`prepare`, :meth:`infer` and :meth:`finish` in a row."""
        inferred = self.infer(self.prepare(image, case_id), keep_disagreement=uncertainty)
        return self.finish(inferred, probabilities=probabilities, uncertainty=uncertainty)

    def prepare(self, image: Image, case_id: str = "") -> PreparedCase:
        """Check the channels and preprocess the image for every configuration that needs no previous stage.

        Raises
        ------
        DatasetError
            If the image has another number of channels than the model, unusable values, or a spacing more than 10x
            off the training data's (a unit mix-up).
        """
        if image.num_channels != self.num_channels:
            raise DatasetError(
                f"{image.source or 'image'}: {image.num_channels} channel(s) but the model was trained on "
                f"{self.num_channels} ({', '.join(self.plans.channel_names)}); give each case these channels, as one "
                "multi-channel file or as CASE_0000, CASE_0001, ... files"
            )
        spacing = tuple(image.geometry.spacing[axis] for axis in self.plans.transpose_forward)
        odd = spacing_outlier(spacing, self.plans.original_median_spacing_after_transp, image.geometry.is_2d)
        if odd is not None:
            raise DatasetError(
                f"{image.source or 'image'}: {odd} (the training data's median, axes in the plans' order); the model "
                "would see an image shrunk to almost nothing or blown up. Check the header's unit (mm expected) and "
                "voxel size"
            )
        prepared = PreparedCase(image, case_id)
        for name in self.models:
            if self.plans.configuration(name).previous_stage is None:
                data, _, properties = preprocess_case(
                    image, self.plans, name, resampling_backend=self._resampling_backend(name), case_id=case_id or None
                )
                prepared.data[name] = (data, properties)
        return prepared

    def infer(self, prepared: PreparedCase, keep_disagreement: bool = False) -> InferredCase:
        """Run every fold of every configuration (previous stages first) and average the folds.

        ``keep_disagreement`` keeps each fold's arg-max to measure the fold disagreement (for uncertainty maps).
        """
        inferred = InferredCase(prepared.image.geometry, prepared.case_id)
        done: dict[str, tuple[np.ndarray, CaseProperties]] = {}
        for name in self._stage_order():
            plan = self.plans.configuration(name)
            if plan.previous_stage is None:
                data, properties = prepared.data.pop(name)  # freed as soon as its folds are done
            else:
                data, properties = self._cascade_input(prepared.image, prepared.case_id, name, done[plan.previous_stage])
            average = FoldAverage(keep_argmax=keep_disagreement and name in self.configurations)
            for trained in self.models[name]:
                average.add(self._predict_logits(trained, data))
            done[name] = (average.mean().numpy(), properties)
            if name in self.configurations:
                inferred.probabilities[name] = done[name]
                disagreement = average.disagreement()
                if disagreement is not None:
                    inferred.disagreement[name] = (disagreement.numpy(), properties)
        return inferred

    def finish(self, inferred: InferredCase, *, probabilities: bool = False, uncertainty: bool = False) -> CasePrediction:
        """Map to the input grid, average configurations, take the label map, post-process, compute uncertainty."""
        need_probabilities = probabilities or uncertainty or len(self.configurations) > 1
        geometry = inferred.geometry
        if not need_probabilities:
            name = self.configurations[0]
            values, properties = inferred.probabilities.pop(name)
            segmentation = segmentation_to_original(values, properties, self.plans, name)
            del values
            mean = None
        else:
            mean = None
            for name in self.configurations:
                values, properties = inferred.probabilities.pop(name)
                restored = to_original_geometry(values, properties, self.plans, name)
                del values
                mean = restored if mean is None else np.add(mean, restored, out=mean)
            assert mean is not None
            if len(self.configurations) > 1:
                mean /= len(self.configurations)
            segmentation = labels_from_probabilities(mean, self.label_values)
        segmentation = apply_postprocessing(segmentation, self.postprocessing, [v for v in self.label_values if v != 0])
        result = CasePrediction(inferred.case_id, segmentation, geometry)
        if uncertainty:
            assert mean is not None
            result.entropy = entropy_map(mean)
            maps = self._restored_disagreement(inferred)
            if maps:
                result.disagreement = maps[0] if len(maps) == 1 else np.mean(maps, axis=0).astype(np.float32)
        if probabilities:
            result.probabilities = mean
        return result

    # ------------------------------------------------------------------ files and folders
    def predict_files(
        self,
        cases: Sequence[Sequence[PathType] | PathType | InputCase],
        output_dir: PathType,
        *,
        case_ids: Sequence[str] | None = None,
        save_probabilities: bool = False,
        save_uncertainty: bool = False,
        skip_finished: bool = False,
        workers: int | None = None,
        progress: bool = True,
        output_options: OutputOptions | None = None,
    ) -> PredictionReport:
        """Segment image files (or DICOM series) and write the results to ``output_dir``.

        Parameters
        ----------
        cases : sequence
            Per case: one file holding all channels, or the list of its channel files (in channel order), or an
            :class:`~autounet.inference.inputs.InputCase`.
        output_dir : str or Path
            Receives ``CASE.ext`` (the input's format; ``.jpg`` becomes ``.png``), ``CASE.npz`` with
            ``save_probabilities``, ``uncertainty/CASE_entropy.ext`` and ``uncertainty/CASE_disagreement.ext`` with
            ``save_uncertainty``, and ``prediction_report.json``.
        case_ids : sequence of str, optional
            Output names; default the file names without extension and ``_0000`` suffix.
        save_probabilities : bool
            Write the averaged class probabilities on the input grid as ``.npz`` (no pickle).
        save_uncertainty : bool
            Write the normalised entropy of the probabilities and, with several folds, the fold disagreement.
        skip_finished : bool
            Skip cases whose outputs are all there (the CLI's ``--continue``). Every file is written atomically and
            the segmentation last, so an interrupted run never leaves a case that looks finished but is not.
        workers : int, optional
            How cases are overlapped. ``0``: one after the other in this thread. ``1``: one case at a time on the
            network while a background thread reads and preprocesses the next and writes the previous one. ``N >= 2``:
            ``N`` cases at a time, each in its own thread (read, predict, write) with ``cores // N`` threads for its
            tensor operations, the fastest for many small images and robust when other programs share the cores.
            Default: one per core (at most the number of cases) on the CPU for images under 256**3 voxels, else 1.
            Each case in flight holds its own arrays in memory.
        progress : bool
            Progress bar over the cases.
        output_options : OutputOptions, optional
            Image file and/or DICOM Segmentation (``CASE.dcm``, DICOM input only; its geometry is proven before it is
            kept), segmentation type and segment codes (see :class:`~autounet.inference.export.OutputOptions`).

        Returns
        -------
        PredictionReport
            Cases written, skipped and failed (each with the file and the reason); a failing case does not stop the
            others.
        """
        resolved = [
            case if isinstance(case, InputCase) else cases_from_files([case], [case_ids[i]] if case_ids else None)[0]
            for i, case in enumerate(cases)
        ]
        return predict_cases(
            self,
            resolved,
            output_dir,
            save_probabilities=save_probabilities,
            save_uncertainty=save_uncertainty,
            skip_finished=skip_finished,
            workers=workers,
            progress=progress,
            output_options=output_options,
        )

    def predict_folder(
        self,
        input_dir: PathType,
        output_dir: PathType,
        *,
        file_ending: str | None = None,
        dicom_channels: Sequence[tuple[str, str]] | None = None,
        **options: Any,
    ) -> PredictionReport:
        """Segment every case of a folder (MSD single files, nnU-Net v2 ``CASE_0000`` channel files, 2D images or
        DICOM series; see :func:`~autounet.inference.inputs.find_input_cases`). ``dicom_channels`` maps DICOM series
        to channels (default: ``dicom_channels`` of the model's dataset.json, if any). Options as in
        :meth:`predict_files`."""
        if dicom_channels is None:
            dicom_channels = recorded_dicom_channels(self.model_dir)
        cases = find_input_cases(input_dir, self.num_channels, file_ending, dicom_channels)
        return self.predict_files(cases, output_dir, **options)

    # ------------------------------------------------------------------ helpers
    def _restored_disagreement(self, inferred: InferredCase) -> list[np.ndarray]:
        maps = []
        for name, (values, properties) in inferred.disagreement.items():
            maps.append(map_to_original_geometry(values, properties, self.plans, name))
        return maps

    def _stage_order(self) -> list[str]:
        """Configurations to run, every previous stage before the stage that needs it."""
        order: list[str] = []
        for name in self.configurations:
            for stage in _stages(self.plans, name):
                if stage not in order:
                    order.append(stage)
        return order

    def _predict_logits(self, trained: TrainedFold, data: np.ndarray) -> torch.Tensor:
        return predict_logits(
            trained.network,
            data,
            trained.patch_size,
            context_slices=trained.context_slices,
            step_size=self.step_size,
            mirror_axes=(trained.mirror_axes if trained.mirror_axes is not None else "all") if self.mirroring else None,
            tile_batch_size=self.tile_batch_size,
            device=self.device,
            autocast_dtype=self.autocast_dtype,
            progress=self.progress,
        )

    def _resampling_backend(self, name: str) -> Any:
        """The resampling backend ``name``'s training data was preprocessed with (recorded in its checkpoints)."""
        folds = self.models.get(name) or []
        return getattr(folds[0], "resampling_backend", "auto") if folds else "auto"

    def _cascade_input(
        self, image: Image, case_id: str, name: str, previous: tuple[np.ndarray, CaseProperties]
    ) -> tuple[np.ndarray, CaseProperties]:
        """The cascade stage's input: the image preprocessed for this stage plus the previous stage's label map,
        mapped to the input grid and preprocessed like a label map onto this stage's grid, as one-hot channels."""
        previous_stage = str(self.plans.configuration(name).previous_stage)
        values, properties = previous
        segmentation = segmentation_to_original(values, properties, self.plans, previous_stage)
        label = Image(segmentation[None], image.geometry, source=f"{previous_stage} prediction of {image.source}")
        data, seg, properties = preprocess_case(
            image, self.plans, name, label=label, resampling_backend=self._resampling_backend(name), case_id=case_id or None
        )
        assert seg is not None
        return np.concatenate([data, one_hot_foreground(seg, self.label_values, data.dtype)]), properties


def recorded_dicom_channels(model_dir: Path | None) -> list[tuple[str, str]] | None:
    """The ``dicom_channels`` mapping (channel name -> series pattern) of a model folder's dataset.json, if any."""
    path = Path(model_dir) / "dataset.json" if model_dir is not None else None
    if path is None or not path.is_file():
        return None
    try:
        mapping = read_json(path).get("dicom_channels")
    except (ValueError, AttributeError):
        return None
    return parse_channel_map(mapping) if isinstance(mapping, dict) and mapping else None


def _stages(plans: Plans, name: str) -> list[str]:
    """``name`` preceded by its previous stages (3d_lowres before 3d_cascade_fullres)."""
    chain = [name]
    while plans.configuration(chain[0]).previous_stage:
        previous = str(plans.configuration(chain[0]).previous_stage)
        if previous in chain:
            raise PlansError(f"configuration {name!r}: previous_stage forms a loop ({' -> '.join(chain)}); fix plans.json")
        chain.insert(0, previous)
    return chain


def _checkpoint_files(model_dir: Path, plans: Plans, configurations: Sequence[str], folds: Sequence[Fold] | None,
                      checkpoint: CheckpointName) -> list[Path]:
    """The checkpoint files :meth:`Predictor.from_model_folder` is about to load (to check them first)."""
    files = []
    for name in configurations:
        for stage in _stages(plans, name):
            chosen = folds if stage in configurations and folds is not None else trained_folds(model_dir, stage, checkpoint)
            files += [model_dir / stage / f"fold_{fold}" / f"checkpoint_{checkpoint}.pt" for fold in chosen]
    return files


def _check_ensemble(model_dir: Path, plans: Plans, configurations: Sequence[str]) -> None:
    for name in configurations:
        if name not in plans.configurations:
            raise PlansError(
                f"{ResultsLayout(model_dir).plans}: no configuration {name!r}; planned: {', '.join(plans.configurations)}"
            )


def _default_configurations(model_dir: Path, plans: Plans, checkpoint: CheckpointName, recorded: dict | None) -> list[str]:
    if recorded is not None and recorded.get("configurations"):
        return [str(c) for c in recorded["configurations"]]
    trained = trained_configurations(model_dir, plans, checkpoint)
    # a previous stage only serves its cascade; it is not a candidate by itself when the cascade is trained
    used_as_previous = {plans.configuration(n).previous_stage for n in trained}
    candidates = [n for n in trained if n not in used_as_previous] or trained
    if len(candidates) == 1:
        return candidates
    if not candidates:
        raise MissingStageError(
            f"{model_dir}: no configuration has a trained fold with {checkpoint_file(checkpoint)}; train one first "
            "(autounet train)"
        )
    raise PlansError(
        f"{model_dir}: several configurations are trained ({', '.join(candidates)}) and there is no {INFERENCE_FILE}; "
        'choose with -c/configurations, or run "autounet find-best" to pick the best by cross-validation'
    )
