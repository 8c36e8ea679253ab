"""Predict one uploaded case exactly as ``autounet predict`` does, and write its outputs in the input's format.

The steps are the :class:`~autounet.inference.Predictor`'s own (``prepare``, ``infer``, ``finish``) and the files
are written by the same functions as a folder prediction (``write_segmentation``, ``write_probabilities``,
``write_map``), so the label map equals the one ``autounet predict`` writes for that file.
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autounet.inference.export import output_paths, write_map, write_probabilities, write_segmentation
from autounet.io.formats import strip_extension
from autounet.safe_names import name_problem
from autounet.serve.decode import decode_case, output_extension
from autounet.serve.errors import ServeError
from autounet.serve.models import ServedModel
from autounet.serve.preview import write_preview
from autounet.serve.upload import UploadedFile

#: Option fields of a prediction request (besides ``file``).
OPTION_FIELDS = ("folds", "mirroring", "step_size", "probabilities", "uncertainty", "preview")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
#: Media types of the outputs (by extension).
MEDIA_TYPES = {
    ".nii.gz": "application/gzip", ".png": "image/png", ".tif": "image/tiff", ".tiff": "image/tiff",
    ".bmp": "image/bmp", ".gif": "image/gif", ".zip": "application/zip",
}
#: Progress reached after each step (the network's part is by far the longest).
STEP_PROGRESS = {"read": 0.1, "prepare": 0.2, "infer": 0.85, "finish": 0.95, "write": 1.0}

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class CaseOptions:
    """Options of one prediction (``None``: the model's default)."""

    folds: tuple[Any, ...] | None = None
    mirroring: bool | None = None
    step_size: float | None = None
    probabilities: bool = False
    uncertainty: bool = False
    preview: bool = False


@dataclass
class CaseResult:
    """What was written for one case and how long each step took (seconds)."""

    file: Path
    filename: str
    media_type: str
    timings: dict[str, float] = field(default_factory=dict)
    preview: dict[str, Any] | None = None


def parse_options(fields: dict[str, str], model: ServedModel) -> CaseOptions:
    """Check the option fields of a request against the model.

    Parameters
    ----------
    fields : dict of str to str
        Form fields other than ``file``.
    model : ServedModel
        The model asked for.

    Raises
    ------
    ServeError
        422 naming the option, the value and what is allowed.
    """
    loaded = sorted({str(f.fold) for n in model.predictor.configurations for f in model.predictor.models[n]})
    folds = None
    if fields.get("folds"):
        folds = tuple(_fold(part) for part in fields["folds"].replace(",", " ").split())
        missing = [str(f) for f in folds if str(f) not in loaded]
        if missing or not folds:
            raise ServeError(422, "invalid_option", f"folds={fields['folds']!r}: fold(s) {', '.join(missing) or '(none)'} "
                             f"are not loaded; model {model.name!r} has folds {', '.join(loaded)}")
    step_size = None
    if fields.get("step_size"):
        try:
            step_size = float(fields["step_size"])
        except ValueError:
            step_size = -1.0
        if not 0.1 <= step_size <= 1.0:
            raise ServeError(422, "invalid_option", f"step_size={fields['step_size']!r}: give a number from 0.1 to 1 "
                             "(the tile step as a fraction of the patch; default 0.5)")
    return CaseOptions(
        folds=folds,
        mirroring=_flag(fields, "mirroring"),
        step_size=step_size,
        probabilities=bool(_flag(fields, "probabilities")),
        uncertainty=bool(_flag(fields, "uncertainty")),
        preview=bool(_flag(fields, "preview")),
    )


def case_name(uploads: list[UploadedFile]) -> str:
    """The case id for output names: the first upload's name without extension and ``_0000`` when it is a safe
    name, else ``"case"``.

    Parameters
    ----------
    uploads : list of UploadedFile
        The request's files.
    """
    client_name = uploads[0].client_name.replace("\\", "/").rsplit("/", 1)[-1] if uploads else ""
    stem = strip_extension(client_name) if client_name else ""
    if len(uploads) > 1 or stem.endswith("_0000"):
        stem = stem[:-5] if stem.endswith("_0000") else stem
    return stem if stem and stem.isascii() and name_problem(stem) is None else "case"


def run_case(model: ServedModel, uploads: list[UploadedFile], options: CaseOptions, folder: Path, max_voxels: int,
             progress: Progress | None = None) -> CaseResult:
    """Read, predict and write one case (runs in a worker thread).

    Parameters
    ----------
    model : ServedModel
        The model.
    uploads : list of UploadedFile
        Stored uploads (one per channel, or one holding all).
    options : CaseOptions
        Checked options.
    folder : Path
        The request's private folder; outputs go to ``folder/output``.
    max_voxels : int
        The server's image size limit.
    progress : callable, optional
        Called with ``(step, fraction done)`` after each step.

    Returns
    -------
    CaseResult
        The label map (or a zip with it and the probabilities/uncertainty maps) and the timings.
    """
    report = progress or (lambda step, fraction: None)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def step(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 4)
        clock = now
        report(name, STEP_PROGRESS[name])

    image = decode_case(uploads, model.input, max_voxels)
    step("read")
    case_id = case_name(uploads)
    predictor = model.predictor_for(options.folds, options.mirroring, options.step_size)
    prepared = predictor.prepare(image, case_id)
    step("prepare")
    inferred = predictor.infer(prepared, keep_disagreement=options.uncertainty)
    del prepared
    step("infer")
    prediction = predictor.finish(inferred, probabilities=options.probabilities, uncertainty=options.uncertainty)
    step("finish")
    extension = output_extension(uploads[0])
    out = folder / "output"
    paths = output_paths(out, case_id, extension)
    written = [paths.segmentation]
    if options.probabilities and prediction.probabilities is not None:
        write_probabilities(paths.probabilities, prediction.probabilities, predictor.label_values)
        written.append(paths.probabilities)
    if options.uncertainty and prediction.entropy is not None:
        write_map(paths.entropy, prediction.entropy, prediction.geometry)
        written.append(paths.entropy)
        if prediction.disagreement is not None:
            write_map(paths.disagreement, prediction.disagreement, prediction.geometry)
            written.append(paths.disagreement)
    write_segmentation(paths.segmentation, prediction.segmentation, prediction.geometry)
    preview = write_preview(image, prediction.segmentation, predictor.plans.labels, folder / "preview") if options.preview else None
    step("write")
    if len(written) == 1:
        return CaseResult(paths.segmentation, paths.segmentation.name, MEDIA_TYPES.get(extension, "application/octet-stream"),
                          timings, preview)
    archive = folder / f"{case_id}.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for path in written:
            bundle.write(path, path.relative_to(out).as_posix())
    return CaseResult(archive, archive.name, MEDIA_TYPES[".zip"], timings, preview)


def _flag(fields: dict[str, str], name: str) -> bool | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ServeError(422, "invalid_option", f"{name}={value[:40]!r}: give true or false")


def _fold(text: str) -> Any:
    if text.isdigit():
        return int(text)
    if text == "all":
        return "all"
    raise ServeError(422, "invalid_option", f"folds: {text[:40]!r} is not a fold; give numbers 0-4 or 'all', e.g. folds=0,1")
