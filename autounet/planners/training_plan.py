"""The ``training`` block of a configuration in the plans: what compute-aware planning chose for a time budget.

Empty when the plans were made without a budget. Written by :func:`autounet.planners.time_budget.plan_for_time_budget`
(and the seconds its measurement took), read by the trainer (``augmentation_scale``), the pipeline (was the plan
made for a budget?), ``autounet plan`` (the planned iterations) and inference (``inference_mirror_axes``, when a
person restricts test-time mirroring by hand). Keys this version does not know are kept as they are, so a plans file
round-trips through :meth:`TrainingPlan.from_dict` and :meth:`TrainingPlan.to_dict` unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from autounet.errors import PlansError


@dataclass(frozen=True)
class MeasuredCandidate:
    """One network variant timed by compute-aware planning.

    Attributes
    ----------
    base_features : int
        Features of the first stage.
    batch_size : int
    seconds_per_iteration : float
        Measured time of one training iteration on the device the plans were made for.
    """

    base_features: int
    batch_size: int
    seconds_per_iteration: float

    def to_dict(self) -> dict[str, Any]:
        """``{"base_features", "batch_size", "seconds_per_iteration"}``."""
        return {"base_features": self.base_features, "batch_size": self.batch_size,
                "seconds_per_iteration": self.seconds_per_iteration}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "MeasuredCandidate":
        """Inverse of :meth:`to_dict` (values as written).

        Parameters
        ----------
        data : mapping
            One entry of ``budget_candidates``.
        """
        return cls(data["base_features"], data["batch_size"], data["seconds_per_iteration"])


#: JSON keys of :class:`TrainingPlan`, in the order the planner writes them.
_KEYS = ("budget_seconds", "budget_device", "budget_choice", "budget_candidates", "budget_iterations",
         "augmentation_scale", "budget_measurement_seconds", "inference_mirror_axes")


@dataclass(frozen=True)
class TrainingPlan:
    """A configuration's ``training`` block (every entry optional; None = absent from the file).

    Attributes
    ----------
    budget_seconds : float or None
        The wall-clock budget of one fold the network was chosen for (None: not compute-aware).
    budget_device : str or None
        Device and precision the candidates were timed on, e.g. ``"cpu (bfloat16)"``.
    budget_choice : str or None
        Why the chosen candidate won, in words.
    budget_candidates : tuple of MeasuredCandidate or None
        Every timed candidate.
    budget_iterations : int or None
        Iterations the chosen network gets in the budget.
    augmentation_scale : float or None
        Factor on the augmentation probabilities for a run of that length (the trainer's default; None = 1).
    budget_measurement_seconds : float or None
        Seconds the measurement took.
    inference_mirror_axes : tuple of int or None
        Patch axes test-time mirroring may flip (None: every axis, as nnU-Net).
    extra : dict
        Entries this version does not know, kept unchanged.
    """

    budget_seconds: float | None = None
    budget_device: str | None = None
    budget_choice: str | None = None
    budget_candidates: tuple[MeasuredCandidate, ...] | None = None
    budget_iterations: int | None = None
    augmentation_scale: float | None = None
    budget_measurement_seconds: float | None = None
    inference_mirror_axes: tuple[int, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def planned_for_budget(self) -> bool:
        """Whether compute-aware planning chose this configuration's network for a time budget."""
        return self.budget_seconds is not None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, known entries in the planner's order, then the unknown ones.

        Examples
        --------
        >>> TrainingPlan(budget_seconds=60.0, budget_iterations=500).to_dict()
        {'budget_seconds': 60.0, 'budget_iterations': 500}
        >>> TrainingPlan().to_dict()
        {}
        """
        out: dict[str, Any] = {}
        for key in _KEYS:
            value = getattr(self, key)
            if value is None:
                continue
            if key == "budget_candidates":
                value = [candidate.to_dict() for candidate in value]
            elif key == "inference_mirror_axes":
                value = list(value)
            out[key] = value
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "TrainingPlan":
        """Read a ``training`` block (values as written; unknown keys go to ``extra``).

        Raises
        ------
        PlansError
            When the block is not a JSON object or a candidate lacks a key.

        Examples
        --------
        >>> block = {"budget_seconds": 60.0, "budget_candidates": [{"base_features": 8, "batch_size": 2,
        ...          "seconds_per_iteration": 0.1}], "note": "by hand"}
        >>> TrainingPlan.from_dict(block).to_dict() == block
        True
        """
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise PlansError(f"the 'training' entry must be a JSON object, got {type(data).__name__}")
        values: dict[str, Any] = {key: data[key] for key in _KEYS if key in data}
        if values.get("budget_candidates") is not None:
            try:
                values["budget_candidates"] = tuple(MeasuredCandidate.from_dict(c) for c in values["budget_candidates"])
            except (KeyError, TypeError) as err:
                raise PlansError(f"training.budget_candidates: every entry needs base_features, batch_size and "
                                 f"seconds_per_iteration ({type(err).__name__}: {err})") from None
        if values.get("inference_mirror_axes") is not None:
            values["inference_mirror_axes"] = tuple(int(a) for a in values["inference_mirror_axes"])
        extra = {key: value for key, value in data.items() if key not in _KEYS}
        return cls(**values, extra=extra)
