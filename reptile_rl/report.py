"""What ``reptile-rl evaluate`` writes: ``adaptation.csv``, ``.json``, ``.md`` and ``.png``.

The tables and the figure show the family's published reference numbers (e.g. MAML's for
Navigation2D) where it declares them (:attr:`~reptile_rl.envs.TaskFamily.reference_results`).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from pathlib import Path
from typing import Any

from reptile_rl.atomic import atomic_write_text
from reptile_rl.evaluation import Evaluation
from reptile_rl.families import family_class
from reptile_rl.plotting import plot_adaptation
from reptile_rl.rundir import adaptation_files
from reptile_rl.stats import Summary

CSV_COLUMNS = ["init", "task_id", "task", "update", "env_steps", "return", "mean_action_return"]


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.2f}"


def _interval(summary: Summary) -> str:
    """A table cell: ``mean [low, high]``, or ``mean (n=1)`` where one value has no interval."""
    if summary.n < 2:
        return f"{_fmt(summary.mean)} (n={summary.n})"
    return f"{_fmt(summary.mean)} [{_fmt(summary.low)}, {_fmt(summary.high)}]"


def to_csv(evaluation: Evaluation) -> str:
    """One row per init, task and update (``mean_action_return`` empty where not measured)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for init, per_task in evaluation.returns.items():
        mean_action = evaluation.mean_action_returns.get(init) or [[] for _ in per_task]
        rows = zip(evaluation.tasks, per_task, mean_action, strict=True)
        for task_id, (task, curve, mean_action_curve) in enumerate(rows):
            for update, value in enumerate(curve):
                writer.writerow(
                    {
                        "init": init,
                        "task_id": task_id,
                        "task": task.to_json(),
                        "update": update,
                        "env_steps": update * evaluation.rollout_size,
                        "return": value,
                        "mean_action_return": mean_action_curve[update]
                        if update < len(mean_action_curve)
                        else "",
                    }
                )
    return buffer.getvalue()


def to_json(evaluation: Evaluation, sources: dict[str, str]) -> dict[str, Any]:
    """Summary statistics per init and update, with the protocol and the sources."""
    config = evaluation.config
    inits = {
        init: [_summary_json(k, s) for k, s in enumerate(curve)]
        for init, curve in evaluation.summaries().items()
    }
    return {
        "env_id": config.env.id,
        "tasks": len(evaluation.tasks),
        "updates": config.evaluation.updates,
        "episodes_per_update": config.evaluation.episodes,
        "seed": config.evaluation.seed,
        "inner": dataclasses.asdict(config.evaluation_inner()),
        "sources": sources,
        "inits": inits,
        "inits_mean_action": {
            init: [_summary_json(k, s) for k, s in enumerate(curve)]
            for init, curve in evaluation.summaries(mean_action=True).items()
        },
        "normalized_scores": evaluation.normalized_scores(),
        "paired_differences": {
            init: [_summary_json(k, s) for k, s in enumerate(curve)]
            for init, curve in evaluation.paired_differences().items()
        },
    }


def _summary_json(update: int, summary: Summary) -> dict[str, Any]:
    return {
        "update": update,
        "mean": summary.mean,
        "std": summary.std,
        "ci95_low": summary.low,
        "ci95_high": summary.high,
        "n": summary.n,
    }


def to_markdown(evaluation: Evaluation) -> str:
    """The summary as Markdown tables (with the family's published reference numbers)."""
    config = evaluation.config
    updates = config.evaluation.updates
    header = "| init | " + " | ".join(f"after {k}" for k in range(updates + 1)) + " |"
    rule = "|---|" + "---|" * (updates + 1)

    def table(caption: str) -> list[str]:
        return ["", caption, "", header, rule]

    def rows(summaries: dict[str, list[Summary]]) -> list[str]:
        padding = [[""] * (updates + 1 - len(curve)) for curve in summaries.values()]
        return [
            f"| {init} | " + " | ".join([*map(_interval, curve), *pad]) + " |"
            for (init, curve), pad in zip(summaries.items(), padding, strict=True)
        ]

    lines = [f"# Adaptation on {evaluation.describe_tasks()} of {config.env.id}"]
    lines += table(
        f"Mean return over tasks [95% CI] after k {config.evaluation_inner().algorithm.upper()} "
        f"updates of {config.evaluation.episodes} "
        f"episodes each (evaluation seed {config.evaluation.seed}): the stochastic policy's "
        "return, MAML's measure."
    )
    lines += rows(evaluation.summaries())
    if evaluation.mean_action_returns:
        lines += table(
            "Mean-action return (the policy acting on its mean, as a deployed policy usually "
            "does; one episode per env on envs of their own) [95% CI]:"
        )
        lines += rows(evaluation.summaries(mean_action=True))
    family = family_class(config.env.id)
    if family.reference_results:
        lines += table(f"{family.reference_source}:")
        for name, values in family.reference_results.items():
            cells = [_fmt(v) for v in values[: updates + 1]]
            cells += ["" for _ in range(updates + 1 - len(cells))]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    scores = evaluation.normalized_scores()
    if scores is not None:
        lines += table("Normalised score (R - R_pretrained@0) / (R_oracle - R_pretrained@0):")
        for init, values in scores.items():
            lines.append(f"| {init} | " + " | ".join(f"{v:.3f}" for v in values) + " |")
    differences = evaluation.paired_differences()
    if differences:
        lines += table(
            "Meta minus each init, paired over the same tasks and seeds [95% CI] "
            "(above zero: meta is better):"
        )
        for init, curve in differences.items():
            lines.append(f"| meta - {init} | " + " | ".join(map(_interval, curve)) + " |")
    return "\n".join(lines) + "\n"


def write_outputs(evaluation: Evaluation, out_dir: Path, sources: dict[str, str]) -> list[Path]:
    """Write ``adaptation.{csv,json,md,png}`` into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = adaptation_files(out_dir)
    atomic_write_text(paths[0], to_csv(evaluation))
    summary = json.dumps(to_json(evaluation, sources), indent=2, allow_nan=True)
    atomic_write_text(paths[1], summary + "\n")
    atomic_write_text(paths[2], to_markdown(evaluation))
    reference = family_class(evaluation.config.env.id).reference_results
    plot_adaptation(evaluation, paths[3], reference or None)
    return paths
