"""The models a server holds: found under MODELS, loaded once (packages verified first), warmed up once."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autounet.errors import MissingStageError
from autounet.inference import Predictor
from autounet.inference.export import write_segmentation
from autounet.inference.find_best import find_postprocessing_file
from autounet.layout import INFERENCE_FILE
from autounet.inference.model_folder import PLANS_FILE
from autounet.io import Geometry, Image
from autounet.packaging import accepted_formats, cross_validation_dice
from autounet.packaging.source import ModelFolder, model_checksum, open_model
from autounet.packaging.unpack import is_package
from autounet.planners.configurations import is_3d_dataset
from autounet.planners.plans import Plans
from autounet.safe_names import checked_name
from autounet.serve.decode import ModelInput
from autounet.typing import PathType

logger = logging.getLogger("autounet.serve")


@dataclass
class ServedModel:
    """One loaded model with the facts ``GET /v1/models/{name}`` shows.

    Parameters
    ----------
    name : str
        The name clients use (folder name or package name without ``.zip``).
    predictor : Predictor
        The loaded folds, shared by every request.
    source : ModelFolder
        Where it came from.
    checksum : str
        sha256 of the package, or of the files prediction uses for a folder.
    """

    name: str
    predictor: Predictor
    source: ModelFolder
    checksum: str
    ready: bool = False
    warmup_seconds: float | None = None
    info_cache: dict[str, Any] = field(default_factory=dict)

    @property
    def input(self) -> ModelInput:
        plans = self.predictor.plans
        return ModelInput(self.name, is_3d_dataset(plans.original_median_shape_after_transp), plans.channel_names,
                          tuple(accepted_formats(plans)))

    def info(self) -> dict[str, Any]:
        """The model's description for clients (no server paths)."""
        if not self.info_cache:
            predictor, manifest = self.predictor, self.source.manifest or {}
            plans = predictor.plans
            cross_validation = manifest.get("cross_validation") if manifest else cross_validation_dice(
                self.source.folder, plans, predictor.configurations)
            self.info_cache.update({
                "name": self.name,
                "version": manifest.get("model_version") or self.checksum[:12],
                "checksum": f"sha256:{self.checksum}",
                "kind": "package" if manifest else "folder",
                "dataset_name": plans.dataset_name,
                "description": manifest.get("description", ""),
                "license": manifest.get("license", ""),
                "labels": dict(plans.labels),
                "channels": list(plans.channel_names),
                "dimensionality": "3D" if self.input.three_d else "2D",
                "configurations": list(predictor.configurations),
                "folds": {name: [f.fold for f in predictor.models[name]] for name in predictor.configurations},
                "postprocessing": predictor.postprocessing.describe() if predictor.postprocessing else None,
                "accepted_formats": list(self.input.formats),
                "cross_validation": cross_validation,
                "defaults": {"step_size": predictor.step_size, "mirroring": predictor.mirroring},
            })
        return {**self.info_cache, "ready": self.ready, "warmup_seconds": self.warmup_seconds}

    def predictor_for(self, folds: Sequence[Any] | None, mirroring: bool | None, step_size: float | None) -> Predictor:
        """A predictor sharing the loaded networks with the request's options (folds a subset of those loaded).

        Parameters
        ----------
        folds : sequence or None
            Folds to average (None: every loaded fold).
        mirroring, step_size : optional
            Sliding-window options (None: the model's defaults).
        """
        base = self.predictor
        models = {
            name: [f for f in trained if folds is None or name not in base.configurations or f.fold in folds]
            for name, trained in base.models.items()
        }
        return Predictor(
            base.plans, models, base.configurations, postprocessing=base.postprocessing, device=base.device,
            step_size=base.step_size if step_size is None else step_size,
            mirroring=base.mirroring if mirroring is None else mirroring,
            tile_batch_size=base.tile_batch_size, autocast_dtype=base.autocast_dtype, progress=False,
            model_dir=base.model_dir,
        )

    def warm_up(self, scratch: Path) -> float:
        """Run one small synthetic case through the whole path (preprocess, one tile without mirroring, back to the
        input grid, export), so the first request finds kernels chosen, memory allocated and readers loaded.

        Parameters
        ----------
        scratch : Path
            A private folder for the exported label map (removed afterwards).

        Returns
        -------
        float
            Seconds it took.
        """
        started = time.perf_counter()
        predictor = self.predictor_for(None, mirroring=False, step_size=None)
        image = warmup_image(predictor.plans, tuple(predictor.models[predictor.configurations[0]][0].patch_size))
        prediction = predictor.predict_case(image, "warmup")
        scratch.mkdir(parents=True, exist_ok=True)
        write_segmentation(scratch / f"warmup_{threading.get_ident()}.nii.gz", prediction.segmentation, prediction.geometry)
        self.warmup_seconds = round(time.perf_counter() - started, 3)
        return self.warmup_seconds


def warmup_image(plans: Plans, patch_size: tuple[int, ...], seed: int = 0) -> Image:
    """A random image shaped like the training data's median, at most one patch large, in the input's axis order.

    Parameters
    ----------
    plans : Plans
        The model's plans (median shape and spacing after the transpose).
    patch_size : tuple of int
        The patch of the first configuration (2 or 3 axes).
    seed : int
        Seed of the random voxels.
    """
    median_shape = [max(1, int(round(s))) for s in plans.original_median_shape_after_transp]
    patch = list(patch_size) if len(patch_size) == 3 else [2, *patch_size]
    shape = [min(m, p) for m, p in zip(median_shape, patch)]
    spacing = list(plans.original_median_spacing_after_transp)
    backward = plans.transpose_backward
    shape_in = tuple(shape[backward[i]] for i in range(3))
    spacing_in = tuple(float(spacing[backward[i]]) for i in range(3))
    is_2d = not is_3d_dataset(plans.original_median_shape_after_transp)
    data = np.random.default_rng(seed).normal(0, 1, (len(plans.channel_names), *shape_in)).astype(np.float32)
    return Image(data, Geometry(spacing=spacing_in, is_2d=is_2d), source="warm-up image")


def discover_models(paths: Sequence[PathType]) -> list[tuple[str, Path]]:
    """Name and path of every model under ``paths``.

    Parameters
    ----------
    paths : sequence of str or Path
        Each a model folder (with ``plans.json``), a package (``.zip``), or a folder of those (one level).

    Returns
    -------
    list of (str, Path)
        Names are the folder names and the package names without ``.zip``.

    Raises
    ------
    MissingStageError
        If a path holds no model; ``ValueError`` for two models of the same name or an unusable name.
    """
    found: list[tuple[str, Path]] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"{path}: not found; pass a model folder, a .zip package or a folder of them")
        if is_package(path) or (path / PLANS_FILE).is_file():
            found.append((_model_name(path), path))
            continue
        children = [c for c in sorted(path.iterdir()) if not c.name.startswith(".")] if path.is_dir() else []
        models = [c for c in children if is_package(c) or (c.is_dir() and (c / PLANS_FILE).is_file())]
        if not models:
            raise MissingStageError(
                f"{path}: no model here; pass RESULTS/<dataset> (the folder with {PLANS_FILE}), a package .zip from "
                "autounet export-model, or a folder holding them"
            )
        found.extend((_model_name(c), c) for c in models)
    names: dict[str, Path] = {}
    for name, path in found:
        if name in names:
            raise ValueError(f"two models are named {name!r} ({names[name]} and {path}); rename one of them")
        names[name] = path
    return found


def load_models(paths: Sequence[PathType], work_dir: PathType, device: str = "auto") -> dict[str, ServedModel]:
    """Open (verify and extract packages into ``work_dir``) and load every model under ``paths``.

    Parameters
    ----------
    paths : sequence of str or Path
        As in :func:`discover_models`.
    work_dir : str or Path
        The server's private folder (packages are extracted inside it).
    device : str
        Where the networks go.

    Returns
    -------
    dict of str to ServedModel
        Not yet warmed up (:meth:`ServedModel.warm_up`).
    """
    models: dict[str, ServedModel] = {}
    for name, path in discover_models(paths):
        started = time.perf_counter()
        source = open_model(path, Path(work_dir) / "models")
        predictor = Predictor.from_model_folder(source.folder, device=device, **source.predictor_options())
        checksum = source.package_sha256 or _folder_checksum(source.folder, predictor)
        models[name] = ServedModel(name, predictor, source, checksum)
        logger.info("model %s loaded from %s in %.1f s: %s", name, path, time.perf_counter() - started, predictor.describe())
    return models


def _model_name(path: Path) -> str:
    name = path.stem if is_package(path) else path.resolve().name
    return checked_name(name, "model name", path)


def _folder_checksum(folder: Path, predictor: Predictor) -> str:
    files = [folder / PLANS_FILE] + [f.path for trained in predictor.models.values() for f in trained]
    postprocessing = find_postprocessing_file(folder, predictor.configurations)
    for extra in (postprocessing, folder / INFERENCE_FILE):
        if extra is not None and extra.is_file():
            files.append(extra)
    return model_checksum(folder, files)
