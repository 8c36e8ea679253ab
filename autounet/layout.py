"""The results folder of one dataset, spelled once: every file and folder name autounet writes there.

``RESULTS/<dataset_name>/`` holds everything a run makes for a dataset (docs/architecture.md, "Results folder"):

.. code-block:: text

    dataset.json  fingerprint.json  plans.json  splits.json  run_log.json
    preprocessed/<data_identifier>/                      the preprocessed store of a configuration
    preprocessed/<data_identifier>__from_<previous>/     a cascade's previous-stage predictions on its grid
    <configuration>/fold_<k>/                            one trained fold (k = 0..4 or "all")
        fold.json                                        the fold record: what the fold was trained as
        checkpoint_final.pt  checkpoint_best.pt  checkpoint_latest.pt
        training_log.json  training.log  progress.png
        validation/   CASE<ending>, summary.json, fold_summary.json
    <configuration>/crossval/                            merged five-fold validation predictions
    ensembles/<a>__<b>/                                  cross-validation of configuration ensembles
    postprocessing.json  inference.json  report/index.html

Names that come from files (configuration names, the plans' ``data_identifier``, case ids, fold names read from
``inference.json``) become path components only through :func:`autounet.safe_names.checked_name`, inside the
methods of :class:`ResultsLayout`; a hostile name is refused before anything touches the disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Union

from autounet.safe_names import checked_name
from autounet.typing import PathType

# ---------------------------------------------------------------------------------------------- dataset level
DATASET_FILE = "dataset.json"
FINGERPRINT_FILE = "fingerprint.json"
PLANS_FILE = "plans.json"
SPLITS_FILE = "splits.json"
RUN_LOG_FILE = "run_log.json"
POSTPROCESSING_FILE = "postprocessing.json"
INFERENCE_FILE = "inference.json"
PREPROCESSED_FOLDER = "preprocessed"
ENSEMBLES_FOLDER = "ensembles"
REPORT_FOLDER = "report"
REPORT_FILE = "index.html"
#: Between a cascade's data identifier and its previous stage in the folder of the mapped previous-stage predictions.
PREVIOUS_STAGE_INFIX = "__from_"

# ---------------------------------------------------------------------------------------------- configuration level
CROSSVAL_FOLDER = "crossval"
#: Folder of one fold: ``fold_0`` .. ``fold_4`` or ``fold_all``.
FOLD_FOLDER_PREFIX = "fold_"

# ---------------------------------------------------------------------------------------------- fold level
#: The fold record (:mod:`autounet.trained_fold.record`): the configuration and inference settings a fold was trained
#: with, the single source inference builds the network from.
FOLD_RECORD_FILE = "fold.json"
CHECKPOINT_NAMES = ("final", "best", "latest")
CheckpointName = Literal["final", "best", "latest"]
CHECKPOINT_FINAL = "checkpoint_final.pt"
CHECKPOINT_BEST = "checkpoint_best.pt"
CHECKPOINT_LATEST = "checkpoint_latest.pt"
TRAINING_LOG_FILE = "training_log.json"
TRAINING_TEXT_LOG_FILE = "training.log"
PROGRESS_PLOT_FILE = "progress.png"
VALIDATION_FOLDER = "validation"
#: Written by the final validation when it completes (cases, seconds, mean Dice); its absence means "not done".
FOLD_SUMMARY_FILE = "fold_summary.json"
#: Written by :mod:`autounet.evaluation` into every folder it scores (``validation/``, ``crossval/``, ensembles).
SUMMARY_FILE = "summary.json"

Fold = Union[int, str]


def checkpoint_file(name: str) -> str:
    """``checkpoint_<name>.pt`` for ``name`` in :data:`CHECKPOINT_NAMES`.

    Parameters
    ----------
    name : {"final", "best", "latest"}
        Which checkpoint.

    Examples
    --------
    >>> checkpoint_file("final")
    'checkpoint_final.pt'
    """
    if name not in CHECKPOINT_NAMES:
        raise ValueError(f"checkpoint must be one of {', '.join(CHECKPOINT_NAMES)}, got {name!r}")
    return f"checkpoint_{name}.pt"


def fold_folder(fold: object) -> str:
    """The folder name of ``fold``: ``fold_<k>`` for a number ``k >= 0``, ``fold_all`` for ``"all"``.

    Parameters
    ----------
    fold : int or str
        ``0``, ``"3"``, ``"all"``, ... (a fold read from a file is checked like any other name).

    Raises
    ------
    ValueError
        For anything but a non-negative number or ``"all"``.

    Examples
    --------
    >>> fold_folder(2), fold_folder("all")
    ('fold_2', 'fold_all')
    """
    if isinstance(fold, bool) or not (
        (isinstance(fold, int) and fold >= 0) or (isinstance(fold, str) and (fold == "all" or fold.isdigit()))
    ):
        raise ValueError(f"fold must be a number (0-4) or 'all', got {fold!r}")
    return checked_name(f"{FOLD_FOLDER_PREFIX}{int(fold) if isinstance(fold, str) and fold.isdigit() else fold}",
                        "fold folder")


@dataclass(frozen=True)
class ResultsLayout:
    """Paths of the results folder ``root`` (``RESULTS/<dataset_name>``); nothing is read or created.

    Parameters
    ----------
    root : str or Path
        The dataset's results folder (also the *model folder* ``autounet predict -m`` takes).

    Examples
    --------
    >>> layout = ResultsLayout("results/Hippocampus")
    >>> layout.checkpoint("3d_fullres", 0).as_posix()
    'results/Hippocampus/3d_fullres/fold_0/checkpoint_final.pt'
    >>> layout.preprocessed("3d_fullres").as_posix()
    'results/Hippocampus/preprocessed/3d_fullres'
    """

    root: Path

    def __init__(self, root: PathType) -> None:
        object.__setattr__(self, "root", Path(root))

    # ------------------------------------------------------------------ dataset level
    @property
    def dataset_json(self) -> Path:
        """Copy of the dataset description the run used."""
        return self.root / DATASET_FILE

    @property
    def fingerprint(self) -> Path:
        return self.root / FINGERPRINT_FILE

    @property
    def plans(self) -> Path:
        return self.root / PLANS_FILE

    @property
    def splits(self) -> Path:
        return self.root / SPLITS_FILE

    @property
    def run_log(self) -> Path:
        return self.root / RUN_LOG_FILE

    @property
    def postprocessing(self) -> Path:
        return self.root / POSTPROCESSING_FILE

    @property
    def inference(self) -> Path:
        return self.root / INFERENCE_FILE

    @property
    def report(self) -> Path:
        return self.root / REPORT_FOLDER / REPORT_FILE

    @property
    def preprocessed_root(self) -> Path:
        """Parent of every configuration's preprocessed store."""
        return self.root / PREPROCESSED_FOLDER

    def preprocessed(self, data_identifier: str) -> Path:
        """``preprocessed/<data_identifier>``: the store of the configurations with this data identifier.

        Parameters
        ----------
        data_identifier : str
            The plans' ``data_identifier`` of a configuration (checked: it comes from ``plans.json``).
        """
        return self.preprocessed_root / self._name(data_identifier, "data_identifier")

    def previous_stage_predictions(self, data_identifier: str, previous_stage: str) -> Path:
        """``preprocessed/<data_identifier>__from_<previous_stage>``: a cascade's previous-stage predictions.

        Parameters
        ----------
        data_identifier, previous_stage : str
            The cascade configuration's data identifier and the name of its previous stage (both from the plans).
        """
        self._name(previous_stage, "previous_stage")
        return self.preprocessed_root / self._name(f"{data_identifier}{PREVIOUS_STAGE_INFIX}{previous_stage}", "data_identifier")

    def ensemble(self, name: str) -> Path:
        """``ensembles/<name>``: the cross-validation of an ensemble of configurations.

        Parameters
        ----------
        name : str
            The ensemble's name (configuration names joined by ``__``).
        """
        return self.root / ENSEMBLES_FOLDER / self._name(name, "ensemble name")

    # ------------------------------------------------------------------ configuration level
    def configuration(self, name: str) -> Path:
        """``<name>/``: the trained folds of one configuration.

        Parameters
        ----------
        name : str
            A configuration name (checked: it comes from ``plans.json`` or ``inference.json``).
        """
        return self.root / self._name(name, "configuration name")

    def crossval(self, configuration: str) -> Path:
        """``<configuration>/crossval``: the merged validation predictions of folds 0-4.

        Parameters
        ----------
        configuration : str
            A configuration name.
        """
        return self.configuration(configuration) / CROSSVAL_FOLDER

    # ------------------------------------------------------------------ fold level
    def fold(self, configuration: str, fold: Fold) -> Path:
        """``<configuration>/fold_<k>``: one trained fold.

        Parameters
        ----------
        configuration : str
            A configuration name.
        fold : int or str
            ``0``..``4`` or ``"all"``.
        """
        return self.configuration(configuration) / fold_folder(fold)

    def fold_record(self, configuration: str, fold: Fold) -> Path:
        """``<configuration>/fold_<k>/fold.json``: what the fold was trained as.

        Parameters
        ----------
        configuration : str
        fold : int or str
        """
        return self.fold(configuration, fold) / FOLD_RECORD_FILE

    def checkpoint(self, configuration: str, fold: Fold, name: str = "final") -> Path:
        """``<configuration>/fold_<k>/checkpoint_<name>.pt``.

        Parameters
        ----------
        configuration : str
        fold : int or str
        name : {"final", "best", "latest"}
        """
        return self.fold(configuration, fold) / checkpoint_file(name)

    def validation(self, configuration: str, fold: Fold) -> Path:
        """``<configuration>/fold_<k>/validation``: the fold's final validation (predictions and scores).

        Parameters
        ----------
        configuration : str
        fold : int or str
        """
        return self.fold(configuration, fold) / VALIDATION_FOLDER

    def validation_prediction(self, configuration: str, fold: Fold, case_id: str, file_ending: str) -> Path:
        """``<configuration>/fold_<k>/validation/<case_id><file_ending>``: one case's final validation prediction.

        Parameters
        ----------
        configuration : str
        fold : int or str
        case_id : str
            The case id (checked: it comes from ``dataset.json`` or ``splits.json``).
        file_ending : str
            The dataset's file ending, e.g. ``.nii.gz``.
        """
        self._name(case_id, "case id")
        return self.validation(configuration, fold) / self._name(f"{case_id}{file_ending}", "case file name")

    def _name(self, name: object, what: str) -> str:
        return checked_name(name, what, self.root)
