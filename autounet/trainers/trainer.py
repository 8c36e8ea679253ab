"""The one ``Trainer``: SGD with a poly schedule over iterations, mixed precision, pseudo-Dice validation, callbacks."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from autounet.devices import autocast, make_grad_scaler
from autounet.losses import downsample_target
from autounet.trainers.callbacks import Callback
from autounet.trainers.config import TrainingConfig

logger = logging.getLogger(__name__)


def poly_lr(iteration: int, total_iterations: int, initial_lr: float, exponent: float) -> float:
    """nnU-Net's polynomial decay ``initial_lr * (1 - iteration / total) ** exponent`` (0 at and after the end).

    Examples
    --------
    >>> poly_lr(0, 100, 0.01, 0.9), poly_lr(100, 100, 0.01, 0.9)
    (0.01, 0.0)
    >>> round(poly_lr(50, 100, 0.01, 0.9), 6)
    0.005359
    """
    if total_iterations <= 0:
        return 0.0
    progress = min(max(iteration / total_iterations, 0.0), 1.0)
    return initial_lr * (1.0 - progress) ** exponent


@dataclass
class TrainingState:
    """Everything that changes while training and must survive a resume (stored in every checkpoint).

    Attributes
    ----------
    epoch, iteration : int
        Completed epochs and optimiser steps.
    total_iterations : int
        Length of the LR schedule (fitted to the budget in budget mode).
    log : list of dict
        One record per completed epoch (losses, pseudo Dice per label, EMA, LR, epoch time).
    epoch_losses : list of float
        Training losses of the unfinished epoch (a mid-epoch checkpoint keeps them).
    epoch_seconds : float
        Time already spent in the unfinished epoch.
    epoch_data_seconds : float
        Of that, the time spent waiting for training batches (in-process augmentation, or workers that fall
        behind); the rest is the network's.
    ema_dice, best_ema_dice : float or None
        Smoothed pseudo validation Dice and its best value so far.
    elapsed_seconds : float
        Wall time of the fold over all sessions (setup, training, validation).
    stop_reason : str or None
        Why training stopped early (budget, early stopping).
    """

    epoch: int = 0
    iteration: int = 0
    total_iterations: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)
    epoch_losses: list[float] = field(default_factory=list)
    epoch_seconds: float = 0.0
    epoch_data_seconds: float = 0.0
    ema_dice: float | None = None
    best_ema_dice: float | None = None
    elapsed_seconds: float = 0.0
    stop_reason: str | None = None


class Trainer:
    """Train one network on one fold; configured by a :class:`TrainingConfig` and by callbacks, never subclassed.

    Parameters
    ----------
    network : nn.Module
        Already on ``device`` (and wrapped in ``DistributedDataParallel`` for multi-GPU runs). With deep
        supervision it returns a list of logits, full resolution first.
    loss : nn.Module
        ``loss(outputs, targets)``; a ``DeepSupervisionLoss`` when the network returns a list.
    train_batches, val_batches : iterator of dict
        Endless iterators of ``{"data": (B, C, *patch) float32, "seg": (B, 1, *patch) int}`` NumPy batches;
        ``val_batches`` may be None (fold ``all``).
    config : TrainingConfig
    device : torch.device
    dtype : torch.dtype
        Autocast dtype (float32 = none).
    label_names : mapping int -> str
        Foreground class index -> label name, for the pseudo Dice.
    deep_supervision_scales : sequence or None
        Per-output scale for :func:`autounet.losses.downsample_target`; None without deep supervision.
    callbacks : sequence of Callback
    total_iterations : int
        Initial length of the schedule (``epochs * iterations_per_epoch`` unless a budget shortens it).
    memory_format : torch.memory_format
        Layout of input batches (channels-last is faster for CPU convolutions).
    """

    def __init__(
        self,
        network: nn.Module,
        loss: nn.Module,
        train_batches: Iterator[dict[str, Any]],
        val_batches: Iterator[dict[str, Any]] | None,
        config: TrainingConfig,
        device: torch.device,
        dtype: torch.dtype,
        label_names: Mapping[int, str],
        deep_supervision_scales: Sequence[Any] | None = None,
        callbacks: Sequence[Callback] = (),
        total_iterations: int | None = None,
        memory_format: torch.memory_format = torch.contiguous_format,
    ) -> None:
        self.network = network
        self.loss = loss
        self.train_batches = train_batches
        self.val_batches = val_batches
        self.config = config
        self.device = device
        self.dtype = dtype
        self.label_names = dict(label_names)
        self.deep_supervision_scales = deep_supervision_scales
        self.callbacks = list(callbacks)
        self.memory_format = memory_format
        self.optimizer = torch.optim.SGD(
            network.parameters(),
            lr=config.initial_lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
        )
        self.grad_scaler = make_grad_scaler(device, dtype)
        self.state = TrainingState(total_iterations=total_iterations or config.epochs * config.iterations_per_epoch)
        self.distributed = dist.is_available() and dist.is_initialized()

    # ------------------------------------------------------------------ schedule
    @property
    def max_iterations(self) -> int:
        return self.config.epochs * self.config.iterations_per_epoch

    def current_lr(self) -> float:
        return poly_lr(self.state.iteration, self.state.total_iterations, self.config.initial_lr, self.config.poly_exponent)

    def iterations_this_epoch(self) -> int:
        """Iterations left in the current epoch (the last epoch of a fitted schedule may be short)."""
        epoch_end = (self.state.epoch + 1) * self.config.iterations_per_epoch
        return max(0, min(epoch_end, self.state.total_iterations) - self.state.iteration)

    def request_stop(self, reason: str) -> None:
        """Stop after the current epoch (used by early stopping and the budget)."""
        if self.state.stop_reason is None:
            self.state.stop_reason = reason
            logger.info("%s", reason)

    @property
    def finished(self) -> bool:
        return self.state.stop_reason is not None or self.state.iteration >= self.state.total_iterations

    # ------------------------------------------------------------------ steps
    def _to_device(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor | list[torch.Tensor]]:
        data = torch.as_tensor(batch["data"])
        data = data.to(self.device, non_blocking=True)
        if data.ndim in (4, 5) and self.memory_format != torch.contiguous_format:
            data = data.contiguous(memory_format=self.memory_format)
        target = torch.as_tensor(batch["seg"]).to(self.device, non_blocking=True)
        if self.deep_supervision_scales is not None:
            return data, downsample_target(target, self.deep_supervision_scales)
        return data, target

    def train_step(self, batch: Mapping[str, Any]) -> float:
        """One optimiser step on ``batch`` at the current learning rate; returns the loss."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.current_lr()
        data, target = self._to_device(batch)
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device, self.dtype):
            output = self.network(data)
            loss = self.loss(output, target)
        if self.grad_scaler is not None:
            self.grad_scaler.scale(loss).backward()
            self.grad_scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.network.parameters(), self.config.grad_clip)
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:
            loss.backward()
            nn.utils.clip_grad_norm_(self.network.parameters(), self.config.grad_clip)
            self.optimizer.step()
        return self._mean_across_ranks(loss.detach().float())

    @torch.no_grad()
    def validation_step(self, batch: Mapping[str, Any]) -> tuple[float, np.ndarray]:
        """Loss and per-foreground-class ``[tp, fp, fn]`` counts (shape ``(num_foreground, 3)``) of one batch."""
        data, target = self._to_device(batch)
        with autocast(self.device, self.dtype):
            output = self.network(data)
            loss = self.loss(output, target)
        logits = output[0] if isinstance(output, (list, tuple)) else output
        labels = target[0] if isinstance(target, (list, tuple)) else target
        prediction = logits.argmax(1)
        labels = labels[:, 0].long()
        counts = torch.zeros((len(self.label_names), 3), dtype=torch.float64, device=logits.device)
        for row, class_index in enumerate(sorted(self.label_names)):
            predicted, actual = prediction == class_index, labels == class_index
            counts[row, 0] = (predicted & actual).sum()
            counts[row, 1] = (predicted & ~actual).sum()
            counts[row, 2] = (~predicted & actual).sum()
        return float(loss), counts.cpu().numpy()

    def _mean_across_ranks(self, value: torch.Tensor) -> float:
        if self.distributed:
            value = value.clone()
            dist.all_reduce(value)
            value /= dist.get_world_size()
        return float(value)

    def _sum_across_ranks(self, array: np.ndarray) -> np.ndarray:
        if not self.distributed:
            return array
        tensor = torch.as_tensor(array, dtype=torch.float64)
        if dist.get_backend() == "nccl":
            tensor = tensor.to(self.device)
        dist.all_reduce(tensor)
        return tensor.cpu().numpy()

    def validate(self) -> dict[str, Any] | None:
        """Run the epoch's validation batches; pseudo Dice per label from summed counts, and its moving average."""
        if self.val_batches is None or self.config.validation_iterations == 0:
            return None
        self.network.eval()
        losses, counts = [], np.zeros((len(self.label_names), 3))
        try:
            for _ in range(self.config.validation_iterations):
                loss, batch_counts = self.validation_step(next(self.val_batches))
                losses.append(loss)
                counts += batch_counts
        finally:
            self.network.train()
        counts = self._sum_across_ranks(counts)
        val_loss = self._mean_across_ranks(torch.tensor(float(np.mean(losses))))
        dice = {}
        for (class_index, name), (tp, fp, fn) in zip(sorted(self.label_names.items()), counts):
            dice[name] = float(2 * tp / (2 * tp + fp + fn)) if (2 * tp + fp + fn) > 0 else float("nan")
        finite = [d for d in dice.values() if not math.isnan(d)]
        mean_dice = float(np.mean(finite)) if finite else 0.0
        previous = self.state.ema_dice
        momentum = self.config.ema_momentum
        ema = mean_dice if previous is None else momentum * previous + (1 - momentum) * mean_dice
        return {"val_loss": val_loss, "dice_per_label": dice, "mean_dice": mean_dice, "ema_dice": ema}

    # ------------------------------------------------------------------ loop
    def _call(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    def fit(self) -> TrainingState:
        """Train until the schedule ends, the budget is used or a callback stops the run; returns the state."""
        self.network.train()
        self._call("on_train_start")
        clock = time.monotonic()

        def tick() -> float:
            nonlocal clock
            now = time.monotonic()
            spent, clock = now - clock, now
            self.state.elapsed_seconds += spent
            self.state.epoch_seconds += spent
            return spent

        while not self.finished:
            self._call("on_epoch_start")
            while self.iterations_this_epoch() > 0 and self.state.stop_reason is None:
                waited = time.monotonic()
                batch = next(self.train_batches)
                self.state.epoch_data_seconds += time.monotonic() - waited
                loss = self.train_step(batch)
                self.state.iteration += 1
                self.state.epoch_losses.append(loss)
                tick()
                self._call("on_iteration_end", loss)
            metrics = self.validate()
            tick()
            record = self._epoch_record(metrics)
            if metrics is not None:
                self._call("on_validation_end", metrics)
            self.state.log.append(record)
            self.state.epoch += 1
            self.state.epoch_losses = []
            self.state.epoch_seconds = 0.0
            self.state.epoch_data_seconds = 0.0
            self._call("on_epoch_end", record)
            tick()
        self._call("on_train_end")
        return self.state

    def _epoch_record(self, metrics: Mapping[str, Any] | None) -> dict[str, Any]:
        losses = self.state.epoch_losses
        record: dict[str, Any] = {
            "epoch": self.state.epoch,
            "iteration": self.state.iteration,
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
            "lr": self.current_lr(),
            "epoch_seconds": self.state.epoch_seconds,
            "data_seconds": self.state.epoch_data_seconds,
            "elapsed_seconds": self.state.elapsed_seconds,
        }
        if metrics is not None:
            record.update(metrics)
            new_best = self.state.best_ema_dice is None or metrics["ema_dice"] > self.state.best_ema_dice
            record["new_best"] = bool(new_best)
            self.state.ema_dice = metrics["ema_dice"]
            if new_best:
                self.state.best_ema_dice = metrics["ema_dice"]
        return record

    # ------------------------------------------------------------------ checkpoints
    @property
    def plain_network(self) -> nn.Module:
        """The network without a ``DistributedDataParallel`` (or ``torch.compile``) wrapper."""
        network = self.network
        network = getattr(network, "module", network)
        return getattr(network, "_orig_mod", network)

    def state_dict(self) -> dict[str, Any]:
        """Weights, optimiser, scaler and :class:`TrainingState`: only tensors and plain data (``weights_only``)."""
        return {
            "network_weights": self.plain_network.state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "grad_scaler_state": self.grad_scaler.state_dict() if self.grad_scaler is not None else {},
            "epoch": self.state.epoch,
            "iteration": self.state.iteration,
            "trainer_state": asdict(self.state),
            "log": self.state.log,
            "rng": {"seed": self.config.seed, "torch": torch.get_rng_state()},
        }

    def load_state_dict(self, checkpoint: Mapping[str, Any]) -> None:
        """Continue from a checkpoint written by :meth:`state_dict` (checked by the caller)."""
        self.plain_network.load_state_dict(checkpoint["network_weights"])
        if checkpoint.get("optimizer_state"):
            self.optimizer.load_state_dict(checkpoint["optimizer_state"])
        if self.grad_scaler is not None and checkpoint.get("grad_scaler_state"):
            self.grad_scaler.load_state_dict(checkpoint["grad_scaler_state"])
        saved = dict(checkpoint.get("trainer_state") or {})
        self.state = TrainingState(**{k: v for k, v in saved.items() if k in TrainingState.__dataclass_fields__})
        self.state.stop_reason = None
        rng = checkpoint.get("rng") or {}
        if isinstance(rng.get("torch"), torch.Tensor):
            torch.set_rng_state(rng["torch"])
