"""One way to open a model given as a folder (``RESULTS/<dataset>``) or as a package (``NAME.zip``)."""

from __future__ import annotations

import hashlib
import json
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from autounet.packaging.manifest import sha256_file
from autounet.packaging.unpack import PackageLimits, is_package, open_package
from autounet.typing import PathType


@dataclass(frozen=True)
class ModelFolder:
    """A model ready for :meth:`~autounet.inference.Predictor.from_model_folder`.

    Parameters
    ----------
    folder : Path
        The model folder (for a package: the verified, extracted copy).
    source : Path
        What the user passed (the folder or the ``.zip``).
    options : dict
        Predictor defaults a package recorded (``configurations``, ``folds``, ``checkpoint``); empty for folders.
    manifest : dict or None
        The package's manifest.
    package_sha256 : str
        sha256 of the ``.zip`` ("" for folders).
    """

    folder: Path
    source: Path
    options: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] | None = None
    package_sha256: str = ""

    def predictor_options(self, **given: Any) -> dict[str, Any]:
        """The package's defaults overridden by the options the user gave (``None`` means "not given").

        Parameters
        ----------
        **given
            ``configurations``, ``folds``, ``checkpoint`` as the user passed them.
        """
        merged = dict(self.options)
        merged.update({key: value for key, value in given.items() if value is not None})
        merged.setdefault("checkpoint", "final")
        return merged


def open_model(path: PathType, target_root: PathType | None = None, limits: PackageLimits = PackageLimits()) -> ModelFolder:
    """A model folder for ``path``: the folder itself, or a package verified and extracted into ``target_root``.

    Parameters
    ----------
    path : str or Path
        ``RESULTS/<dataset>`` or a ``.zip`` from ``autounet export-model``.
    target_root : str or Path, optional
        Where a package is extracted (a new private folder inside it; the caller removes it).
    limits : PackageLimits
        Zip-bomb bounds for packages.
    """
    path = Path(path)
    if not is_package(path):
        return ModelFolder(path, path)
    opened = open_package(path, target_root, limits)
    return ModelFolder(opened.folder, path, opened.predictor_options(), opened.manifest, opened.sha256)


@contextmanager
def opened_model(path: PathType, target_root: PathType | None = None) -> Iterator[ModelFolder]:
    """:func:`open_model` for a ``with`` block: an extracted package is removed afterwards.

    Parameters
    ----------
    path, target_root
        As in :func:`open_model`.
    """
    model = open_model(path, target_root)
    try:
        yield model
    finally:
        if model.folder != model.source:
            shutil.rmtree(model.folder, ignore_errors=True)


def model_checksum(model_dir: PathType, files: list[Path]) -> str:
    """sha256 identifying a model by the files prediction uses: the hash of ``{relative path: sha256}`` as sorted JSON.

    Parameters
    ----------
    model_dir : str or Path
        The model folder.
    files : list of Path
        Files inside it that define the model (plans, checkpoints, post-processing).
    """
    model_dir = Path(model_dir)
    listing = {str(Path(f).resolve().relative_to(model_dir.resolve()).as_posix()): sha256_file(f) for f in files}
    return hashlib.sha256(json.dumps(listing, sort_keys=True).encode()).hexdigest()
