"""Plans as plain data: what each configuration trains on and with which network.

A plans file is JSON a person can read, diff and edit. Everything is in array axis order *after* the
planned transposition (``transpose_forward``), like nnU-Net's plans. Components are named by registry
name plus keyword arguments (``"network": "unet"``, ``"network_kwargs": {...}``), never by pickled objects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from autounet.errors import PlansError
from autounet.jsonio import read_json, write_json
from autounet.planners.context_slices import check_context_slices
from autounet.planners.training_plan import TrainingPlan
from autounet.planners.validation import plans_problems
from autounet.typing import PathType

#: Bump when a rule or default changes the planned values, and say so in docs/changelog.md.
PLANS_VERSION = 2

ConfigurationName = Literal["2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres"]
CONFIGURATION_NAMES: tuple[str, ...] = ("2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres")

NormalizationScheme = Literal["zscore", "ct", "none", "rescale_to_0_1", "rgb_to_0_1"]


@dataclass(frozen=True)
class ChannelNormalization:
    """How one input channel is normalised.

    ``scheme``: ``"zscore"`` (per image), ``"ct"`` (clip to ``clip_range`` then z-score with the dataset's
    ``mean``/``std``), ``"none"``, ``"rescale_to_0_1"`` (per image min/max) or ``"rgb_to_0_1"`` (divide by 255).
    ``use_mask``: restrict the statistics (and the output) to the non-zero region of the image.
    """

    scheme: NormalizationScheme
    use_mask: bool = False
    clip_range: tuple[float, float] | None = None
    mean: float | None = None
    std: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"scheme": self.scheme, "use_mask": self.use_mask}
        if self.clip_range is not None:
            out["clip_range"] = list(self.clip_range)
        if self.mean is not None:
            out["mean"] = self.mean
        if self.std is not None:
            out["std"] = self.std
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ChannelNormalization":
        clip = data.get("clip_range")
        return cls(
            scheme=data["scheme"],
            use_mask=bool(data.get("use_mask", False)),
            clip_range=(float(clip[0]), float(clip[1])) if clip is not None else None,
            mean=None if data.get("mean") is None else float(data["mean"]),
            std=None if data.get("std") is None else float(data["std"]),
        )


@dataclass(frozen=True)
class ResamplingPlan:
    """How images and labels are brought to the target spacing.

    Data uses a spline of ``data_order``; labels are resampled one label at a time with ``label_order``
    (no new label values appear). When the spacing is anisotropic beyond ``anisotropy_threshold``, the
    coarse axis is resampled separately with order ``order_z``.
    """

    data_order: int = 3
    label_order: int = 1
    order_z: int = 0
    anisotropy_threshold: float = 3.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ResamplingPlan":
        return cls(**{k: data[k] for k in ("data_order", "label_order", "order_z", "anisotropy_threshold") if k in data})


@dataclass(frozen=True)
class ConfigurationPlan:
    """One trainable configuration (``2d``, ``3d_fullres``, ``3d_lowres`` or ``3d_cascade_fullres``).

    All tuples are in array axis order after transposition. ``spacing`` and ``patch_size`` have two
    entries for ``2d`` (in-plane y, x) and three otherwise. ``context_slices`` (``k``, ``2d`` only) feeds each
    slice with its ``k`` neighbours on either side as extra input channels (2.5D; see
    :mod:`autounet.planners.context_slices`); 0 is plain 2D.
    """

    name: str
    spacing: tuple[float, ...]
    patch_size: tuple[int, ...]
    batch_size: int
    median_image_size_in_voxels: tuple[float, ...]
    normalization: tuple[ChannelNormalization, ...]
    features_per_stage: tuple[int, ...]
    kernel_sizes: tuple[tuple[int, ...], ...]
    strides: tuple[tuple[int, ...], ...]
    n_conv_per_stage: tuple[int, ...]
    n_conv_per_stage_decoder: tuple[int, ...]
    network: str = "unet"
    network_kwargs: dict[str, Any] = field(default_factory=dict)
    batch_dice: bool = False
    resampling: ResamplingPlan = field(default_factory=ResamplingPlan)
    data_identifier: str = ""
    previous_stage: str | None = None
    next_stage: str | None = None
    loss: str = "dice_ce"
    training: TrainingPlan = field(default_factory=TrainingPlan)
    context_slices: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "context_slices", check_context_slices(self.context_slices, self.ndim, self.name))

    @property
    def ndim(self) -> int:
        return len(self.patch_size)

    @property
    def n_stages(self) -> int:
        return len(self.features_per_stage)

    def replace(self, **changes: Any) -> "ConfigurationPlan":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "spacing": list(self.spacing),
            "patch_size": list(self.patch_size),
            "batch_size": self.batch_size,
            "median_image_size_in_voxels": list(self.median_image_size_in_voxels),
            "normalization": [n.to_dict() for n in self.normalization],
            "network": self.network,
            "network_kwargs": dict(self.network_kwargs),
            "n_stages": self.n_stages,
            "features_per_stage": list(self.features_per_stage),
            "kernel_sizes": [list(k) for k in self.kernel_sizes],
            "strides": [list(s) for s in self.strides],
            "n_conv_per_stage": list(self.n_conv_per_stage),
            "n_conv_per_stage_decoder": list(self.n_conv_per_stage_decoder),
            "batch_dice": self.batch_dice,
            "loss": self.loss,
            "resampling": self.resampling.to_dict(),
            "data_identifier": self.data_identifier or self.name,
            "previous_stage": self.previous_stage,
            "next_stage": self.next_stage,
            "training": self.training.to_dict(),
            "context_slices": self.context_slices,
        }

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> "ConfigurationPlan":
        try:
            return cls(
                name=name,
                spacing=tuple(float(s) for s in data["spacing"]),
                patch_size=tuple(int(s) for s in data["patch_size"]),
                batch_size=int(data["batch_size"]),
                median_image_size_in_voxels=tuple(float(s) for s in data.get("median_image_size_in_voxels", ())),
                normalization=tuple(ChannelNormalization.from_dict(n) for n in data["normalization"]),
                features_per_stage=tuple(int(f) for f in data["features_per_stage"]),
                kernel_sizes=tuple(tuple(int(k) for k in ks) for ks in data["kernel_sizes"]),
                strides=tuple(tuple(int(s) for s in st) for st in data["strides"]),
                n_conv_per_stage=tuple(int(n) for n in data["n_conv_per_stage"]),
                n_conv_per_stage_decoder=tuple(int(n) for n in data["n_conv_per_stage_decoder"]),
                network=str(data.get("network", "unet")),
                network_kwargs=dict(data.get("network_kwargs", {})),
                batch_dice=bool(data.get("batch_dice", False)),
                resampling=ResamplingPlan.from_dict(data.get("resampling", {})),
                data_identifier=str(data.get("data_identifier", name)),
                previous_stage=data.get("previous_stage"),
                next_stage=data.get("next_stage"),
                loss=str(data.get("loss", "dice_ce")),
                training=TrainingPlan.from_dict(data.get("training")),
                context_slices=data.get("context_slices") or 0,
            )
        except KeyError as err:
            raise PlansError(f"configuration {name!r} lacks the key {err.args[0]!r}; re-run \"autounet plan\"") from None


@dataclass(frozen=True)
class Plans:
    """All configurations planned for one dataset, plus dataset-level facts they share."""

    dataset_name: str
    channel_names: tuple[str, ...]
    labels: dict[str, int]
    transpose_forward: tuple[int, ...]
    transpose_backward: tuple[int, ...]
    original_median_spacing_after_transp: tuple[float, ...]
    original_median_shape_after_transp: tuple[float, ...]
    configurations: dict[str, ConfigurationPlan]
    memory_budget_gb: float = 8.0
    fingerprint_signature: str = ""
    plans_version: int = PLANS_VERSION
    notes: tuple[str, ...] = ()
    explanations: dict[str, list[str]] = field(default_factory=dict)
    class_prior: tuple[float, ...] | None = None
    """Share of each class (sorted label values, background first) in the training data; every network's output
    bias starts at its logarithm (:mod:`autounet.planners.class_prior`). None: zero bias, as nnU-Net."""

    def __post_init__(self) -> None:
        if self.class_prior is None:
            return
        prior = tuple(float(p) for p in self.class_prior)
        if len(prior) != self.num_classes or not all(0.0 < p <= 1.0 for p in prior):
            raise PlansError(
                f"class_prior {list(prior)} needs one share in (0, 1] per label ({self.num_classes}: "
                f"{', '.join(f'{name}={value}' for name, value in sorted(self.labels.items(), key=lambda kv: kv[1]))}); "
                "fix it or set it to null for a zero output bias"
            )
        object.__setattr__(self, "class_prior", prior)

    @property
    def label_values(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.labels.values())))

    @property
    def num_classes(self) -> int:
        return len(self.label_values)

    def configuration(self, name: str) -> ConfigurationPlan:
        if name not in self.configurations:
            available = ", ".join(self.configurations) or "(none)"
            raise PlansError(f"no configuration {name!r} in the plans; available: {available}")
        return self.configurations[name]

    def to_dict(self) -> dict[str, Any]:
        return {
            "plans_version": self.plans_version,
            "dataset_name": self.dataset_name,
            "channel_names": list(self.channel_names),
            "labels": dict(self.labels),
            "transpose_forward": list(self.transpose_forward),
            "transpose_backward": list(self.transpose_backward),
            "original_median_spacing_after_transp": list(self.original_median_spacing_after_transp),
            "original_median_shape_after_transp": list(self.original_median_shape_after_transp),
            "memory_budget_gb": self.memory_budget_gb,
            "fingerprint_signature": self.fingerprint_signature,
            "notes": list(self.notes),
            "class_prior": None if self.class_prior is None else list(self.class_prior),
            "configurations": {name: c.to_dict() for name, c in self.configurations.items()},
            "explanations": {k: list(v) for k, v in self.explanations.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Plans":
        if "plans_version" not in data or "configurations" not in data:
            raise PlansError(
                "not an autounet plans file (no 'plans_version' or 'configurations'); "
                'create one with "autounet plan"'
            )
        version = int(data["plans_version"])
        if version > PLANS_VERSION:
            raise PlansError(
                f"plans version {version} is newer than this autounet understands ({PLANS_VERSION}); upgrade autounet"
            )
        try:
            return cls(
                dataset_name=str(data["dataset_name"]),
                channel_names=tuple(data["channel_names"]),
                labels={str(k): int(v) for k, v in data["labels"].items()},
                transpose_forward=tuple(int(a) for a in data["transpose_forward"]),
                transpose_backward=tuple(int(a) for a in data["transpose_backward"]),
                original_median_spacing_after_transp=tuple(float(s) for s in data["original_median_spacing_after_transp"]),
                original_median_shape_after_transp=tuple(float(s) for s in data["original_median_shape_after_transp"]),
                configurations={
                    name: ConfigurationPlan.from_dict(name, conf) for name, conf in data["configurations"].items()
                },
                memory_budget_gb=float(data.get("memory_budget_gb", 8.0)),
                fingerprint_signature=str(data.get("fingerprint_signature", "")),
                plans_version=version,
                notes=tuple(data.get("notes", ())),
                explanations={k: list(v) for k, v in data.get("explanations", {}).items()},
                class_prior=None if data.get("class_prior") is None else tuple(data["class_prior"]),
            )
        except KeyError as err:
            raise PlansError(f"plans file lacks the key {err.args[0]!r}; re-run \"autounet plan\"") from None

    def save(self, path: PathType) -> None:
        write_json(path, self.to_dict(), durable=True)  # fsync'ed: hours of training depend on it


def network_input_channels(plans: Plans, configuration: ConfigurationPlan) -> int:
    """Input channels of the configuration's network; training and inference both ask this function.

    Image channels times ``2 * context_slices + 1`` (neighbouring slices of a 2.5D ``2d`` configuration), plus one
    one-hot channel per foreground label of the previous stage for a cascade.
    """
    channels = len(plans.channel_names) * (2 * configuration.context_slices + 1)
    if configuration.previous_stage:
        channels += plans.num_classes - 1
    return channels


def load_plans(path: PathType) -> Plans:
    """Load a plans JSON file written by ``autounet plan`` (possibly edited by hand) and check its values.

    Parameters
    ----------
    path : str or Path
        The plans file.

    Raises
    ------
    FileNotFoundError
        If there is no file.
    PlansError
        If it is not a plans file, or a value cannot work (:func:`~autounet.planners.validation.plans_problems`:
        patch size 0 or absurdly large, spacing 0, label values outside 0..2**31-1, an unsafe data identifier...),
        naming the file and every offending field.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'{path}: no plans file; run "autounet plan DATASET -o {path}" first')
    try:
        plans = Plans.from_dict(read_json(path))
    except PlansError as err:
        raise PlansError(f"{path}: {err}") from None
    except (TypeError, ValueError, AttributeError, IndexError) as err:  # a hand edit gave an entry the wrong type
        raise PlansError(
            f"{path}: an entry has the wrong type or value ({type(err).__name__}: {err}); undo the edit or re-run "
            '"autounet plan"'
        ) from None
    problems = plans_problems(plans)
    if problems:
        raise PlansError(f"{path}: unusable value(s): {'; '.join(problems)}. Fix the field(s) or re-run \"autounet plan\"")
    return plans
