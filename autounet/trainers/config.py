"""``TrainingConfig``: every number of a training run, as one frozen, JSON-round-tripping dataclass."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

Precision = Literal["auto", "float32", "bfloat16", "float16"]
OutputBias = Literal["prior", "zero"]
OUTPUT_BIAS_CHOICES: tuple[str, ...] = ("prior", "zero")
DeviceName = str  # "auto", "cpu", "cuda", "cuda:1", "mps"

# nnU-Net v2 nnUNetTrainer defaults; see docs/training.md for each source.
DEFAULT_EPOCHS = 1000
DEFAULT_ITERATIONS_PER_EPOCH = 250
DEFAULT_VALIDATION_ITERATIONS = 50
DEFAULT_INITIAL_LR = 1e-2
DEFAULT_MOMENTUM = 0.99
DEFAULT_WEIGHT_DECAY = 3e-5
DEFAULT_POLY_EXPONENT = 0.9
DEFAULT_GRAD_CLIP = 12.0
DEFAULT_FOREGROUND_FRACTION = 1 / 3
DEFAULT_EMA_MOMENTUM = 0.9
"""Weight of the previous value in the moving average of the pseudo validation Dice (nnU-Net's ``ema_fg_dice``)."""
DEFAULT_CHECKPOINT_EVERY_SECONDS = 300.0
"""Wall time between ``checkpoint_latest.pt`` writes inside an epoch (also written at every epoch end)."""
DEFAULT_SEED = 0


@dataclass(frozen=True)
class TrainingConfig:
    """The knobs of a training run. ``None`` means "take it from the plans" or "choose for the device".

    Attributes
    ----------
    epochs, iterations_per_epoch : int
        Length of the run (nnU-Net: 1000 x 250). With ``budget_seconds`` the total number of iterations is fitted
        to the budget instead and ``epochs`` is only an upper bound.
    validation_iterations : int
        Validation batches per epoch for the pseudo Dice (nnU-Net: 50).
    initial_lr, momentum, nesterov, weight_decay, poly_exponent, grad_clip : float / bool
        SGD with Nesterov momentum; the learning rate decays as ``initial_lr * (1 - i / total) ** poly_exponent``.
    loss : str or None
        Loss registry name (``autounet.losses.list_losses()``); default the plans' (``dice_ce``).
    loss_kwargs : dict
        Extra arguments of the loss.
    network : str or None
        Network family registry name overriding the plans' (``autounet.networks.list_networks()``).
    batch_size, patch_size : int / tuple of int or None
        Overrides of the plans' values.
    context_slices : int or None
        Override of the plans' 2.5D context of the ``2d`` configuration (neighbouring slices on each side fed as
        extra input channels); ``None`` takes the plans' value.
    foreground_fraction : float
        Share of each batch forced to contain foreground.
    augment : bool
        Data augmentation on (nnU-Net's default transforms) or off.
    augmentation_scale : float or None
        Factor on the probability of every random transform except mirroring; ``None`` takes the plans' value
        (compute-aware plans lower it for short budgets), else 1 (nnU-Net's).
    deep_supervision : bool
        Loss on every decoder level (weights halving per level).
    output_bias : str
        ``"prior"`` (default): the output bias starts at the logarithm of the plans' ``class_prior``, so the untrained
        network predicts the class frequencies; ``"zero"``: nnU-Net's zero bias (equal probabilities).
    seed : int
        All randomness of the run (weights, batches, augmentation) follows from it.
    device : str
        ``"auto"`` (cuda, else mps, else cpu), ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"``.
    precision : str
        ``"auto"`` (float16 on CUDA, bfloat16 on CPU, float16 on MPS when supported), or an explicit dtype.
    budget_seconds : float or None
        Wall-clock budget of the whole fold including the final validation.
    early_stopping_patience : int or None
        Stop when the smoothed validation Dice has not improved for this many epochs.
    num_workers : int or None
        Background data worker processes; ``None`` chooses for the device, 0 works in-process.
    num_threads : int or None
        Torch intra-op threads on the CPU; ``None`` leaves torch's default.
    checkpoint_every_seconds : float
        Wall time between ``checkpoint_latest.pt`` writes inside an epoch.
    ema_momentum : float
        Smoothing of the pseudo validation Dice that selects ``checkpoint_best.pt``.
    final_validation : bool
        Predict and evaluate the fold's validation cases at the end.
    save_probabilities : bool
        Also save the final validation's probabilities (``CASE.npz``, needed to evaluate ensembles).
    progress : bool
        Show a progress bar per epoch.
    """

    epochs: int = DEFAULT_EPOCHS
    iterations_per_epoch: int = DEFAULT_ITERATIONS_PER_EPOCH
    validation_iterations: int = DEFAULT_VALIDATION_ITERATIONS
    initial_lr: float = DEFAULT_INITIAL_LR
    momentum: float = DEFAULT_MOMENTUM
    nesterov: bool = True
    weight_decay: float = DEFAULT_WEIGHT_DECAY
    poly_exponent: float = DEFAULT_POLY_EXPONENT
    grad_clip: float = DEFAULT_GRAD_CLIP
    loss: str | None = None
    loss_kwargs: dict[str, Any] = field(default_factory=dict)
    network: str | None = None
    batch_size: int | None = None
    patch_size: tuple[int, ...] | None = None
    context_slices: int | None = None
    foreground_fraction: float = DEFAULT_FOREGROUND_FRACTION
    augment: bool = True
    augmentation_scale: float | None = None
    deep_supervision: bool = True
    output_bias: OutputBias = "prior"
    seed: int = DEFAULT_SEED
    device: DeviceName = "auto"
    precision: Precision = "auto"
    budget_seconds: float | None = None
    early_stopping_patience: int | None = None
    num_workers: int | None = None
    num_threads: int | None = None
    checkpoint_every_seconds: float = DEFAULT_CHECKPOINT_EVERY_SECONDS
    ema_momentum: float = DEFAULT_EMA_MOMENTUM
    final_validation: bool = True
    save_probabilities: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}"),
            (self.iterations_per_epoch >= 1, f"iterations_per_epoch must be at least 1, got {self.iterations_per_epoch}"),
            (self.validation_iterations >= 0, f"validation_iterations must be >= 0, got {self.validation_iterations}"),
            (self.initial_lr > 0, f"initial_lr must be positive, got {self.initial_lr}"),
            (self.batch_size is None or self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}"),
            (0 <= self.foreground_fraction <= 1, f"foreground_fraction must be within [0, 1], got {self.foreground_fraction}"),
            (self.budget_seconds is None or self.budget_seconds > 0, f"budget must be positive, got {self.budget_seconds}"),
            (
                self.early_stopping_patience is None or self.early_stopping_patience >= 1,
                f"early stopping patience must be at least 1 epoch, got {self.early_stopping_patience}",
            ),
            (self.num_workers is None or self.num_workers >= 0, f"num_workers must be >= 0, got {self.num_workers}"),
            (
                self.context_slices is None or self.context_slices >= 0,
                f"context_slices must be >= 0 (slices on each side), got {self.context_slices}",
            ),
            (
                self.augmentation_scale is None or 0 <= self.augmentation_scale <= 1,
                f"augmentation_scale must be within [0, 1], got {self.augmentation_scale}",
            ),
            (
                self.output_bias in OUTPUT_BIAS_CHOICES,
                f"output_bias must be prior or zero, got {self.output_bias!r}",
            ),
            (
                self.precision in ("auto", "float32", "bfloat16", "float16"),
                f"precision must be auto, float32, bfloat16 or float16, got {self.precision!r}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        if self.patch_size is not None:
            object.__setattr__(self, "patch_size", tuple(int(p) for p in self.patch_size))

    def replace(self, **changes: Any) -> "TrainingConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.patch_size is not None:
            out["patch_size"] = list(self.patch_size)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainingConfig":
        """Inverse of :meth:`to_dict`; unknown keys (from a newer autounet) are ignored.

        Examples
        --------
        >>> config = TrainingConfig(epochs=3, patch_size=(8, 8))
        >>> TrainingConfig.from_dict(config.to_dict()) == config
        True
        """
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
