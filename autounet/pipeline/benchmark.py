"""``run_benchmark``: the whole pipeline on Decathlon tasks, with a table next to nnU-Net's published Dice."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from autounet.errors import DatasetError
from autounet.jsonio import write_json
from autounet.layout import ResultsLayout
from autounet.pipeline.published import SOURCE, published_dice
from autounet.pipeline.run import RunOptions, run_pipeline
from autounet.planners.plans import load_plans
from autounet.typing import PathType


@dataclass
class TaskResult:
    """One task's benchmark row: cross-validation Dice per label, stage times and peak memory."""

    task: str
    configuration: str
    folds: list[Any]
    dice_per_label: dict[str, float]
    mean_dice: float
    num_cases: int
    stages: dict[str, dict[str, float]]
    total_seconds: float
    published: dict[str, float] = field(default_factory=dict)
    results_dir: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def find_tasks(msd_root: PathType, tasks: Sequence[str] | None) -> list[Path]:
    """Task folders under ``msd_root`` (each with a ``dataset.json``); ``tasks`` selects by folder name."""
    root = Path(msd_root)
    if (root / "dataset.json").is_file():  # the root is a task itself
        return [root]
    available = sorted(p for p in root.iterdir() if (p / "dataset.json").is_file()) if root.is_dir() else []
    if not tasks:
        if not available:
            raise DatasetError(f"{root}: no task folders with a dataset.json; pass the folder that holds Task01_... folders")
        return available
    chosen = []
    for task in tasks:
        match = [p for p in available if p.name.lower() == task.lower() or p.name.lower().split("_", 1)[-1] == task.lower()]
        if not match:
            names = ", ".join(p.name for p in available) or "(none)"
            raise DatasetError(f"{root}: no task {task!r}; available: {names}")
        chosen.append(match[0])
    return chosen


def run_benchmark(
    msd_root: PathType, tasks: Sequence[str] | None, output: PathType, options: RunOptions | None = None
) -> list[TaskResult]:
    """Run :func:`run_pipeline` on each task and write ``benchmark.md`` and ``benchmark.json`` to ``output``.

    The Dice reported is the five-fold cross-validation Dice of the best configuration (or ensemble) that
    ``find-best`` chose, per label, without post-processing.
    """
    options = options or RunOptions()
    options = replace(options, find_best=True)
    output = Path(output)
    results = []
    for task_dir in find_tasks(msd_root, tasks):
        started = time.monotonic()
        summary = run_pipeline(task_dir, output / "results", options)
        best = summary.best.best if summary.best is not None else None
        labels = _label_names(summary.results_dir)
        dice = {labels.get(k, k): v for k, v in (best.dice_per_label if best else {}).items()}
        results.append(
            TaskResult(
                task=task_dir.name,
                configuration=best.name if best else "-",
                folds=list(options.folds),
                dice_per_label=dice,
                mean_dice=best.mean_dice if best else math.nan,
                num_cases=best.num_cases if best else 0,
                stages=summary.stages,
                total_seconds=round(time.monotonic() - started, 1),
                published=published_dice(task_dir.name),
                results_dir=str(summary.results_dir),
            )
        )
        write_benchmark_tables(results, output, options)
    return results


def _label_names(results_dir: Path) -> dict[str, str]:
    plans = load_plans(ResultsLayout(results_dir).plans)
    return {str(value): name for name, value in plans.labels.items()}


def write_benchmark_tables(results: Sequence[TaskResult], output: Path, options: RunOptions) -> None:
    """Write ``benchmark.json`` and the Markdown table ``benchmark.md``."""
    write_json(output / "benchmark.json", {"source_of_published": SOURCE, "tasks": [r.to_dict() for r in results]})
    lines = [
        "# autounet benchmark",
        "",
        f"Cross-validation Dice per label (folds {', '.join(map(str, options.folds))}), "
        f"budget {_budget(options.budget_seconds)}, next to nnU-Net's published MSD test-set Dice ({SOURCE}).",
        "",
        "| task | configuration | label | autounet Dice | nnU-Net Dice | cases |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for result in results:
        for label, value in result.dice_per_label.items():
            published = result.published.get(label)
            lines.append(
                f"| {result.task} | {result.configuration} | {label} | {value:.3f} | "
                f"{'-' if published is None else f'{published:.2f}'} | {result.num_cases} |"
            )
        lines.append(f"| {result.task} | {result.configuration} | **mean** | **{result.mean_dice:.3f}** | "
                     f"{_mean(result.published.values())} | {result.num_cases} |")
    lines += ["", "| task | stage | seconds | peak memory (MiB) |", "| --- | --- | --- | --- |"]
    for result in results:
        for stage, entry in result.stages.items():
            lines.append(f"| {result.task} | {stage} | {entry.get('seconds', 0):.1f} | {entry.get('peak_rss_mb', 0):.0f} |")
        lines.append(f"| {result.task} | **total** | **{result.total_seconds:.1f}** | |")
    (output / "benchmark.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _budget(seconds: float | None) -> str:
    return "none" if seconds is None else f"{seconds / 60:.0f} min per task"


def _mean(values) -> str:
    values = list(values)
    return f"{sum(values) / len(values):.2f}" if values else "-"
