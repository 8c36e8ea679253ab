"""Model selection when fold "all" is trained: it learned from every case, so nothing held out scores it.

nnU-Net's fold "all" is one model trained on every training case, often the last step once the cross-validation
has been looked at. ``find-best`` then has nothing to compare: with only fold "all" trained it names that model in
``inference.json`` (so ``autounet predict -m RESULTS`` uses it) and says why; next to cross-validated folds it keeps
the scored folds and offers the fold "all" command.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from autounet.inference.find_best import FOLD_ALL, Candidate, FindBestResult, predict_command, write_inference_json
from autounet.layout import CHECKPOINT_FINAL

#: Without a cross-validation to rank them, configurations trained on fold "all" are chosen in this order (nnU-Net
#: names 3d_fullres its default; a 2D dataset has only 2d); any other one follows in the plans' order.
PREFERENCE_WITHOUT_CROSSVAL = ("3d_fullres", "2d", "3d_lowres")
#: The note of a fold "all" candidate in the table and in inference.json.
FOLD_ALL_NOTE = "trained on every case (fold all): no cross-validation"


def fold_all_trained(results_dir: Path, configuration: str) -> bool:
    """Whether ``configuration`` has a finished fold "all" (its final checkpoint).

    Parameters
    ----------
    results_dir : Path
        ``RESULTS/<dataset>``.
    configuration : str
    """
    return (Path(results_dir) / configuration / f"fold_{FOLD_ALL}" / CHECKPOINT_FINAL).is_file()


def rank_without_crossval(planned: Sequence[str], trained: Sequence[str]) -> list[str]:
    """Trained configurations in the order they are chosen when no score ranks them.

    Parameters
    ----------
    planned : sequence of str
        Configurations of the plans, in their order.
    trained : sequence of str
        Those with a trained fold "all".

    Examples
    --------
    >>> rank_without_crossval(["2d", "3d_lowres", "3d_fullres", "3d_cascade_fullres"], ["2d", "3d_fullres"])
    ['3d_fullres', '2d']
    """
    order = [*[name for name in PREFERENCE_WITHOUT_CROSSVAL if name in planned], *planned]
    return sorted(trained, key=lambda name: order.index(name) if name in order else len(order))


def choose_fold_all(
    results_dir: Path, planned: Sequence[str], trained_all: Sequence[str], skipped: dict[str, str]
) -> FindBestResult:
    """The model to predict with when only fold "all" is trained, recorded in ``inference.json``.

    No score, no ensemble and no post-processing decision (nothing is held out to decide them on); the notes say so.

    Parameters
    ----------
    results_dir : Path
        ``RESULTS/<dataset>``.
    planned : sequence of str
        Configurations of the plans.
    trained_all : sequence of str
        Configurations with a trained fold "all" (at least one).
    skipped : dict
        Candidates left out, with the reason.
    """
    ranked = rank_without_crossval(planned, trained_all)
    candidates = [Candidate((name,), results_dir / name / f"fold_{FOLD_ALL}", math.nan, {}, 0, FOLD_ALL_NOTE) for name in ranked]
    outcome = FindBestResult(candidates, {name: reason for name, reason in skipped.items() if name not in ranked})
    chosen = ranked[0]
    outcome.command = predict_command(results_dir, (chosen,), [FOLD_ALL])
    outcome.notes.append(
        f"only fold all is trained ({', '.join(ranked)}): it learned from every case, so there is no cross-validation "
        f"to score it, compare configurations or decide post-processing; inference.json names {chosen} fold all for "
        "autounet predict (train folds 0-4 for a validation score)"
    )
    if len(ranked) > 1:
        others = "; ".join(f"-c {name} -f all" for name in ranked[1:])
        outcome.notes.append(
            f"{chosen} was chosen without a score (first of {', '.join(PREFERENCE_WITHOUT_CROSSVAL)}); predict with "
            f"another one by passing {others}"
        )
    write_inference_json(results_dir, outcome, [FOLD_ALL], None, None)
    return outcome


def fold_all_alternative(results_dir: Path, configurations: Sequence[str]) -> list[str]:
    """A note offering fold "all" of the cross-validated winner, when it is trained too (else no note).

    Parameters
    ----------
    results_dir : Path
        ``RESULTS/<dataset>``.
    configurations : sequence of str
        The winner (one configuration or an ensemble).
    """
    if not configurations or not all(fold_all_trained(results_dir, name) for name in configurations):
        return []
    command = predict_command(results_dir, configurations, [FOLD_ALL])
    return [
        f"fold all of {' + '.join(configurations)} (trained on every case) is there too; inference.json keeps the "
        f"cross-validated folds, whose score it records. To predict with fold all instead: {command}"
    ]
