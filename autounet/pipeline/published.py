"""nnU-Net's published Medical Segmentation Decathlon test-set Dice, for side-by-side benchmark tables.

Source: Isensee et al., "nnU-Net: Self-adapting Framework for U-Net-Based Medical Image Segmentation",
arXiv:1809.10486 (2018), Table 2: the MSD test-set leaderboard results of nnU-Net, rounded to two decimals.
These are *test-set* numbers of a five-fold ensemble trained for the full schedule on a GPU; an autounet
benchmark reports *cross-validation* Dice on the training cases it has, so the comparison is indicative.
"""

from __future__ import annotations

#: Task folder name -> label name (as in the task's dataset.json) -> Dice.
NNUNET_MSD_TEST_DICE: dict[str, dict[str, float]] = {
    "Task01_BrainTumour": {"edema": 0.68, "non-enhancing tumor": 0.47, "enhancing tumour": 0.68},
    "Task02_Heart": {"left atrium": 0.93},
    "Task03_Liver": {"liver": 0.95, "cancer": 0.74},
    "Task04_Hippocampus": {"Anterior": 0.90, "Posterior": 0.89},
    "Task05_Prostate": {"PZ": 0.76, "TZ": 0.89},
    "Task06_Lung": {"cancer": 0.69},
    "Task07_Pancreas": {"pancreas": 0.80, "cancer": 0.52},
    "Task08_HepaticVessel": {"Vessel": 0.63, "Tumour": 0.69},
    "Task09_Spleen": {"spleen": 0.96},
    "Task10_Colon": {"colon cancer primaries": 0.56},
}
SOURCE = "Isensee et al. 2018, arXiv:1809.10486, Table 2 (MSD test set)"


def published_dice(task: str) -> dict[str, float]:
    """Published nnU-Net Dice per label name for an MSD task folder name (empty if unknown).

    Matching ignores case and accepts the short name (``"Hippocampus"``) as well.

    Examples
    --------
    >>> published_dice("Task04_Hippocampus")
    {'Anterior': 0.9, 'Posterior': 0.89}
    >>> published_dice("hippocampus")["Posterior"]
    0.89
    >>> published_dice("Task99_Unknown")
    {}
    """
    wanted = task.lower()
    for name, values in NNUNET_MSD_TEST_DICE.items():
        if wanted in (name.lower(), name.split("_", 1)[1].lower()):
            return dict(values)
    return {}
