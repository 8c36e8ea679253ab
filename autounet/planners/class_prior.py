"""The class prior: each label's share of the training voxels, which the network's output bias starts at.

A segmentation network initialised as nnU-Net does (zero output bias) starts by predicting every class with equal
probability. Cross-entropy then pushes the background up so fast that, with momentum 0.99, the network overshoots
into predicting background everywhere with the foreground far below its true share; it climbs back out only after
hundreds of iterations (docs/benchmarks.md, "Output bias at the class prior"). Starting the output bias at
``log(prior)`` makes the first prediction the class frequencies themselves, as Lin et al. do for the
classification head of RetinaNet ("Focal loss for dense object detection", ICCV 2017, section 4.1,
"Initialization"), so the early gradients teach features instead of the bias.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

MIN_CLASS_PRIOR = 0.01
"""Smallest prior of a class: RetinaNet's ``pi = 0.01``. A rare class (a lesion of 1e-5 of the voxels) would
otherwise start so improbable that its soft Dice gradient, which scales with its probability, all but vanishes;
training patches also hold more foreground than whole images (foreground oversampling)."""


def plan_class_prior(
    voxels_per_label: Mapping[int, int], label_values: Sequence[int], min_prior: float = MIN_CLASS_PRIOR
) -> tuple[float, ...] | None:
    """Share of each class among the labelled voxels, raised to at least ``min_prior`` and summing to 1.

    Parameters
    ----------
    voxels_per_label : mapping label value -> int
        Voxel count of each label over the training cases (the fingerprint's ``label_stats``).
    label_values : sequence of int
        The classes in network output order (sorted label values, background first).
    min_prior : float
        Floor of every class's share before normalisation, within ``[0, 1 / len(label_values)]``.

    Returns
    -------
    tuple of float or None
        One probability per class, in the order of ``label_values``; None when no voxels were counted (a
        fingerprint converted from nnU-Net's has none), which leaves the output bias at zero.

    Raises
    ------
    ValueError
        When ``min_prior`` is outside its range or a count is negative.

    Examples
    --------
    >>> plan_class_prior({0: 12396335, 1: 356386, 2: 330867}, [0, 1, 2])  # Hippocampus
    (0.9475, 0.0272, 0.0253)
    >>> plan_class_prior({0: 999_990, 1: 10}, [0, 1])  # a rare lesion starts at about 1 %
    (0.9901, 0.0099)
    >>> plan_class_prior({}, [0, 1]) is None
    True
    """
    if not 0.0 <= min_prior <= 1.0 / max(1, len(label_values)):
        raise ValueError(
            f"min_prior must be within [0, 1/{len(label_values)}] for {len(label_values)} classes, got {min_prior}"
        )
    counts = [int(voxels_per_label.get(value, 0)) for value in label_values]
    if any(count < 0 for count in counts):
        raise ValueError(f"voxel counts must not be negative, got {dict(zip(label_values, counts))}")
    total = sum(counts)
    if total == 0:
        return None
    floored = [max(count / total, min_prior) for count in counts]
    scale = sum(floored)
    return tuple(round(share / scale, 4) for share in floored)
