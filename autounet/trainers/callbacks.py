"""Callbacks with fixed hooks: checkpointing, logging, early stopping, progress bar and plot are all callbacks.

A callback subclasses :class:`Callback` and overrides any of its hooks; the :class:`~autounet.trainers.trainer.Trainer`
calls them in list order. Hooks receive the trainer and may read everything on it; they change the run only via
``trainer.state.total_iterations`` (budget) and ``trainer.request_stop(reason)``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autounet.jsonio import write_json
from autounet.progress import epoch_line, progress_bar, write_line
from autounet.layout import (
    CHECKPOINT_BEST,
    CHECKPOINT_FINAL,
    CHECKPOINT_LATEST,
    PROGRESS_PLOT_FILE,
    TRAINING_LOG_FILE,
    TRAINING_TEXT_LOG_FILE,
)
from autounet.trained_fold.checkpoint import save_checkpoint

if TYPE_CHECKING:
    from autounet.trainers.trainer import Trainer

logger = logging.getLogger(__name__)



class Callback:
    """Base class: every hook does nothing. Override the ones you need."""

    def on_train_start(self, trainer: Trainer) -> None:
        """Before the first iteration (also after a resume)."""

    def on_epoch_start(self, trainer: Trainer) -> None:
        """Before the first iteration of an epoch."""

    def on_iteration_end(self, trainer: Trainer, loss: float) -> None:
        """After each optimiser step; ``trainer.state.iteration`` already counts it."""

    def on_validation_end(self, trainer: Trainer, metrics: Mapping[str, Any]) -> None:
        """After the epoch's validation batches; ``metrics`` has ``val_loss``, ``dice_per_label``, ``ema_dice``."""

    def on_epoch_end(self, trainer: Trainer, record: Mapping[str, Any]) -> None:
        """After an epoch; ``record`` is the epoch's entry of ``trainer.state.log``."""

    def on_train_end(self, trainer: Trainer) -> None:
        """After the last epoch (not called when training raises)."""


class Checkpointing(Callback):
    """``checkpoint_latest.pt`` every few minutes and at epoch ends, ``checkpoint_best.pt`` when the smoothed
    validation Dice improves, ``checkpoint_final.pt`` at the end. Only the writing process (rank 0) writes.

    Parameters
    ----------
    folder : Path
        The fold folder.
    metadata : mapping
        Added to every checkpoint (configuration, fold, plans_version, network, training_config, ...).
    every_seconds : float
        Wall time between latest-checkpoint writes inside an epoch.
    """

    def __init__(self, folder: Path, metadata: Mapping[str, Any], every_seconds: float, write: bool = True) -> None:
        self.folder = Path(folder)
        self.metadata = dict(metadata)
        self.every_seconds = every_seconds
        self.write = write
        self._last_save = time.monotonic()

    def save(self, trainer: Trainer, name: str) -> None:
        if self.write:
            save_checkpoint(self.folder / name, {**trainer.state_dict(), **self.metadata})
        self._last_save = time.monotonic()

    def on_train_start(self, trainer: Trainer) -> None:
        self._last_save = time.monotonic()

    def on_iteration_end(self, trainer: Trainer, loss: float) -> None:
        if time.monotonic() - self._last_save >= self.every_seconds:
            self.save(trainer, CHECKPOINT_LATEST)

    def on_epoch_end(self, trainer: Trainer, record: Mapping[str, Any]) -> None:
        if record.get("new_best"):
            self.save(trainer, CHECKPOINT_BEST)
        self.save(trainer, CHECKPOINT_LATEST)

    def on_train_end(self, trainer: Trainer) -> None:
        self.save(trainer, CHECKPOINT_FINAL)
        self.save(trainer, CHECKPOINT_LATEST)


class TrainingLog(Callback):
    """``training_log.json`` (every epoch's numbers) and a human-readable ``training.log``, rewritten each epoch."""

    def __init__(self, folder: Path, header: Mapping[str, Any], write: bool = True) -> None:
        self.folder = Path(folder)
        self.header = dict(header)
        self.write = write

    def _append_text(self, line: str) -> None:
        if self.write:
            with open(self.folder / TRAINING_TEXT_LOG_FILE, "a", encoding="utf-8") as f:
                f.write(line + "\n")

    def on_train_start(self, trainer: Trainer) -> None:
        if not self.write:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        action = "resumed at iteration" if trainer.state.iteration else "started, iteration"
        self._append_text(
            f"{stamp} training {action} {trainer.state.iteration} of {trainer.state.total_iterations}; "
            + ", ".join(f"{k}={v}" for k, v in self.header.items())
        )

    def on_epoch_end(self, trainer: Trainer, record: Mapping[str, Any]) -> None:
        if not self.write:
            return
        write_json(self.folder / TRAINING_LOG_FILE, {**self.header, "epochs": trainer.state.log})
        dice = record.get("dice_per_label") or {}
        dice_text = " ".join(f"{label}={value:.4f}" for label, value in dice.items())
        val_loss = record.get("val_loss")
        ema = record.get("ema_dice")
        self._append_text(
            f"{time.strftime('%H:%M:%S')} epoch {record['epoch']}: iterations {record['iteration']}/"
            f"{trainer.state.total_iterations}, train loss {record['train_loss']:.4f}, "
            + (f"val loss {val_loss:.4f}, " if val_loss is not None else "")
            + (f"pseudo Dice {dice_text}, EMA {ema:.4f}{' (best)' if record.get('new_best') else ''}, " if ema is not None else "")
            + f"lr {record['lr']:.5f}, epoch time {record['epoch_seconds']:.1f} s"
            + (f" (data wait {record['data_seconds']:.1f} s)" if "data_seconds" in record else "")
        )

    def on_train_end(self, trainer: Trainer) -> None:
        reason = trainer.state.stop_reason or "schedule finished"
        self._append_text(f"{time.strftime('%Y-%m-%d %H:%M:%S')} training ended: {reason}")


class EarlyStopping(Callback):
    """Stop when the smoothed validation Dice has not improved for ``patience`` epochs.

    The count is derived from ``trainer.state.log``, so it survives a resume unchanged.
    """

    def __init__(self, patience: int) -> None:
        if patience < 1:
            raise ValueError(f"early stopping patience must be at least 1 epoch, got {patience}")
        self.patience = patience

    def on_epoch_end(self, trainer: Trainer, record: Mapping[str, Any]) -> None:
        emas = [r.get("ema_dice") for r in trainer.state.log if r.get("ema_dice") is not None]
        if len(emas) <= self.patience:
            return
        best_at = max(range(len(emas)), key=lambda i: (emas[i], -i))
        if len(emas) - 1 - best_at >= self.patience:
            trainer.request_stop(
                f"early stopping: the smoothed validation Dice has not improved for {self.patience} epochs "
                f"(best {emas[best_at]:.4f})"
            )


class ProgressBar(Callback):
    """A bar per epoch with the running loss on a terminal; one line per epoch with its numbers in a log file
    (the rule lives in :mod:`autounet.progress`), starting with ``label`` (``"3d_fullres fold 0"``)."""

    def __init__(self, enabled: bool = True, label: str = "") -> None:
        self.enabled = enabled
        self.label = label
        self._bar: Any = None

    def on_epoch_start(self, trainer: Trainer) -> None:
        if self.enabled:
            self._bar = progress_bar(
                trainer.iterations_this_epoch(), f"epoch {trainer.state.epoch}", unit="it", detail=True
            )

    def on_iteration_end(self, trainer: Trainer, loss: float) -> None:
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{loss:.4f}", lr=f"{trainer.current_lr():.5f}")

    def on_epoch_end(self, trainer: Trainer, record: Mapping[str, Any]) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        per_epoch = max(trainer.config.iterations_per_epoch, 1)
        total_epochs = max(-(-trainer.state.total_iterations // per_epoch), int(record["epoch"]) + 1)
        write_line(epoch_line(record, total_epochs, self.label), enabled=self.enabled)


class ProgressPlot(Callback):
    """``progress.png``: losses, pseudo Dice (per label and smoothed) and learning rate per epoch."""

    def __init__(self, folder: Path, write: bool = True) -> None:
        self.folder = Path(folder)
        self.write = write

    def on_epoch_end(self, trainer: Trainer, record: Mapping[str, Any]) -> None:
        if self.write:
            from autounet.trainers.progress_plot import plot_progress

            try:
                plot_progress(trainer.state.log, self.folder / PROGRESS_PLOT_FILE)
            except Exception as err:  # a plot must never stop a training run
                logger.warning("could not draw %s: %s", PROGRESS_PLOT_FILE, err)


class ThreadTuner(Callback):
    """Choose the CPU thread count per epoch by timing: on a shared machine one thread can beat all of them.

    At the start of every epoch each candidate thread count runs ``probe`` iterations (after one to settle); the
    fastest runs the rest of the epoch. Two threads that wait for each other while another program holds a core can
    be slower than one. Used when ``num_threads`` is not set on the CPU; a fixed thread count keeps runs
    bit-reproducible, this does not.
    """

    def __init__(self, candidates: tuple[int, ...], probe: int = 3) -> None:
        self.candidates = tuple(dict.fromkeys(max(1, c) for c in candidates))
        self.probe = probe
        self._plan: list[int] = []
        self._times: dict[int, list[float]] = {}
        self._last = 0.0
        self.chosen: int | None = None

    def on_epoch_start(self, trainer: Trainer) -> None:
        import torch

        if len(self.candidates) < 2 or trainer.iterations_this_epoch() < (self.probe + 1) * len(self.candidates) * 2:
            return
        self._plan = [c for c in self.candidates for _ in range(self.probe + 1)]
        self._times = {c: [] for c in self.candidates}
        torch.set_num_threads(self._plan[0])
        self._last = time.perf_counter()

    def on_iteration_end(self, trainer: Trainer, loss: float) -> None:
        import statistics

        import torch

        if not self._plan:
            return
        now = time.perf_counter()
        self._times[self._plan.pop(0)].append(now - self._last)
        self._last = now
        if self._plan:
            torch.set_num_threads(self._plan[0])
            return
        # The first iteration after a switch settles the thread pool; it is not counted.
        medians = {threads: statistics.median(times[1:]) for threads, times in self._times.items()}
        self.chosen = min(medians, key=lambda threads: medians[threads])
        torch.set_num_threads(self.chosen)
        logger.info("CPU threads: %s s per iteration -> %d", {t: round(m, 3) for t, m in medians.items()}, self.chosen)
