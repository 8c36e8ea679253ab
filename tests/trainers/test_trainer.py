"""The Trainer: loss decreases, every registered loss trains, precisions, budget, early stopping, overrides."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from autounet.errors import PlansError
from autounet.losses import list_losses
from autounet.pipeline import train_fold
from autounet.trainers import TrainingConfig, poly_lr
from autounet.trainers.budget import fit_iterations_to_budget

from .helpers import quick_config


def test_loss_decreases_over_a_few_dozen_iterations(tiny_results):
    config = quick_config(epochs=4, iterations_per_epoch=10, validation_iterations=2, initial_lr=0.01, augment=False)
    train_fold(tiny_results, "3d_fullres", 0, config)
    log = json.loads((tiny_results / "3d_fullres" / "fold_0" / "training_log.json").read_text())["epochs"]
    losses = [record["train_loss"] for record in log]
    assert losses[-1] < losses[0] - 0.1, losses


@pytest.mark.parametrize("loss", list_losses())
def test_every_registered_loss_trains_a_step(tiny_results, loss):
    result = train_fold(tiny_results, "3d_fullres", 0, quick_config(epochs=1, iterations_per_epoch=1, loss=loss))
    log = json.loads((result.fold_dir / "training_log.json").read_text())
    assert log["loss"] == loss and np.isfinite(log["epochs"][0]["train_loss"])


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_precisions_train(tiny_results, precision):
    result = train_fold(tiny_results, "3d_fullres", 0, quick_config(epochs=1, precision=precision))
    log = json.loads((result.fold_dir / "training_log.json").read_text())
    assert log["precision"] == precision and np.isfinite(log["epochs"][0]["train_loss"])


def test_fold_all_has_no_validation(tiny_results):
    result = train_fold(tiny_results, "3d_fullres", "all", quick_config(epochs=1, final_validation=True))
    assert result.fold_dir.name == "fold_all" and result.best_ema_dice is None and result.validation is None
    assert (result.fold_dir / "checkpoint_final.pt").is_file()


def test_early_stopping_stops(tiny_results):
    config = quick_config(epochs=30, iterations_per_epoch=1, initial_lr=1e-9, early_stopping_patience=2)
    result = train_fold(tiny_results, "3d_fullres", 0, config)
    assert result.stop_reason and "early stopping" in result.stop_reason
    assert result.epochs < 30


def test_budget_fits_the_schedule(tiny_results):
    config = quick_config(epochs=1000, iterations_per_epoch=20, budget_seconds=20)
    result = train_fold(tiny_results, "3d_fullres", 0, config)
    assert result.total_iterations == result.iterations < 20_000  # the schedule was fitted, and run to its end
    assert result.iterations >= 10


class _ClockTrainer:
    """What FitToBudget reads from a trainer, with a clock the test moves."""

    def __init__(self) -> None:
        from autounet.trainers import TrainingState

        self.config = TrainingConfig(iterations_per_epoch=100, validation_iterations=0)
        self.state = TrainingState(total_iterations=100_000)
        self.max_iterations = 100_000
        self.stopped = None

    def request_stop(self, reason):
        self.stopped = reason


def test_fit_to_budget_follows_the_measured_speed():
    from autounet.trainers import FitToBudget

    trainer, callback = _ClockTrainer(), FitToBudget(100.0, reserve_seconds=lambda: 7.0, warmup=2, measure=4,
                                                      refit_seconds=10.0)
    callback.on_train_start(trainer)
    seconds_per_iteration = 1.0
    while trainer.stopped is None and trainer.state.iteration < trainer.state.total_iterations:
        if trainer.state.iteration == 30:
            seconds_per_iteration = 2.0  # the machine gets busy
        trainer.state.iteration += 1
        trainer.state.elapsed_seconds += seconds_per_iteration
        callback.on_iteration_end(trainer, 0.0)
    assert callback.reserve == 7.0
    # 97 s usable (3% margin) minus 7 s reserved: everything fits, and nothing is wasted.
    assert 90 - 2.0 <= trainer.state.elapsed_seconds <= 90
    assert trainer.state.total_iterations == trainer.state.iteration


def test_overrides_rederive_the_network(tiny_results):
    result = train_fold(tiny_results, "3d_fullres", 0, quick_config(epochs=1, patch_size=(16, 16, 32), batch_size=3,
                                                                     network="resenc"))
    log = json.loads((result.fold_dir / "training_log.json").read_text())
    assert (log["patch_size"], log["batch_size"], log["network"]) == ([16, 16, 32], 3, "resenc")
    with pytest.raises(PlansError, match="pass 3 values"):
        train_fold(tiny_results, "3d_fullres", 0, quick_config(patch_size=(16, 16)))
    with pytest.raises(PlansError, match="Did you mean"):
        train_fold(tiny_results, "3d_fullres", 0, quick_config(network="unte"))


@pytest.mark.parametrize("iteration, expected", [(0, 0.01), (50, 0.01 * 0.5**0.9), (100, 0.0), (120, 0.0)])
def test_poly_lr(iteration, expected):
    assert poly_lr(iteration, 100, 0.01, 0.9) == pytest.approx(expected)


def test_fit_iterations_to_budget():
    assert fit_iterations_to_budget(100, 10, 1.0, 20, 5, 10_000) == 5 + int(100 * 0.97 - 30)
    assert fit_iterations_to_budget(100, 99, 1.0, 20, 5, 10_000) == 5
    assert fit_iterations_to_budget(100, 0, 1.0, 0, 0, 50) == 50
    with pytest.raises(ValueError, match="positive"):
        fit_iterations_to_budget(100, 0, 0.0, 0, 0, 50)


@pytest.mark.parametrize(
    "changes, message",
    [({"epochs": 0}, "epochs"), ({"budget_seconds": -1}, "budget"), ({"early_stopping_patience": 0}, "patience"),
     ({"precision": "fp8"}, "precision"), ({"batch_size": 0}, "batch_size")],
)
def test_config_checks(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**changes)


def test_config_round_trips():
    config = TrainingConfig(epochs=3, patch_size=(8, 8, 8), loss_kwargs={"batch_dice": True})
    assert TrainingConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_thread_tuner_picks_the_faster_thread_count(monkeypatch):
    from autounet.trainers import ThreadTuner
    from autounet.trainers import callbacks as callbacks_module

    clock = {"now": 0.0}
    monkeypatch.setattr(callbacks_module.time, "perf_counter", lambda: clock["now"])
    monkeypatch.setattr(torch, "set_num_threads", lambda n: clock.__setitem__("threads", n))

    class FakeTrainer:
        def iterations_this_epoch(self):
            return 100

    tuner, trainer = ThreadTuner((2, 1), probe=2), FakeTrainer()
    tuner.on_epoch_start(trainer)
    for _ in range(6):  # 2 threads take 3 s per iteration here, 1 thread 1 s (a busy machine)
        clock["now"] += 3.0 if clock["threads"] == 2 else 1.0
        tuner.on_iteration_end(trainer, 0.0)
    assert tuner.chosen == 1 and clock["threads"] == 1


def test_choose_for_budget_prefers_width_once_iterations_suffice():
    from autounet.planners.time_budget import BudgetCandidate, choose_for_budget

    measured = [BudgetCandidate(b, 2, (8, 8, 8), s) for b, s in ((32, 2.0), (16, 1.0), (8, 0.5))]
    assert choose_for_budget(measured, 10_000, target_iterations=1000).candidate.base_features == 32
    assert choose_for_budget(measured, 1_500, target_iterations=1000).candidate.base_features == 16
    fastest = choose_for_budget(measured, 100, target_iterations=1000)
    assert fastest.candidate.base_features == 8 and "no candidate reaches" in fastest.reason
    with pytest.raises(ValueError, match="no candidates"):
        choose_for_budget([], 100)


def test_plan_for_budget_records_the_choice(tiny_results):
    from autounet.planners import load_plans
    from autounet.pipeline.budget import plan_for_budget

    plans = load_plans(tiny_results / "plans.json")
    new_plans, choice = plan_for_budget(plans, "3d_fullres", 60, device="cpu", precision="float32", base_features=(4, 8))
    configuration = new_plans.configuration("3d_fullres")
    assert configuration.features_per_stage[0] == choice.candidate.base_features
    assert configuration.training.budget_seconds == 60 and configuration.training.budget_candidates
    assert any("compute-aware" in line for line in new_plans.explanations["3d_fullres"])
    assert plans.configuration("3d_fullres").training.to_dict() == {}  # the input is not changed


def test_another_family_gets_a_patch_and_batch_that_fit_its_memory(tiny_results):
    from dataclasses import replace

    from autounet.planners import load_plans, plan_configuration
    from autounet.planners.memory import fits_memory
    from autounet.trainers.components import effective_configuration, estimate_configuration_memory

    # A small GPU, so that the heavier families need smaller patches than the plain U-Net.
    plans = replace(load_plans(tiny_results / "plans.json"), memory_budget_gb=0.02)
    planned = plans.configuration("3d_fullres")

    def plan_for(family):
        return plan_configuration("3d_fullres", planned.spacing, planned.median_image_size_in_voxels,
                                  float(np.prod(planned.median_image_size_in_voxels)) * 6, planned.normalization,
                                  memory_budget_gb=0.02, num_classes=plans.num_classes, network=family,
                                  base_features=planned.features_per_stage[0], batch_dice=planned.batch_dice).plan

    unet_voxels = np.prod(plan_for("unet").patch_size)
    for family in ("unetpp", "denseunet"):
        chosen = effective_configuration(plans, "3d_fullres", quick_config(network=family), 6)
        assert chosen.network == family
        assert (chosen.patch_size, chosen.batch_size) == (plan_for(family).patch_size, plan_for(family).batch_size)
        assert fits_memory(estimate_configuration_memory(plans, chosen), chosen.batch_size, 3, plans.memory_budget_gb)
        assert np.prod(chosen.patch_size) < unet_voxels
        kept = effective_configuration(plans, "3d_fullres", quick_config(network=family, patch_size=planned.patch_size,
                                                                          batch_size=planned.batch_size), 6)
        assert (kept.patch_size, kept.batch_size) == (planned.patch_size, planned.batch_size)
