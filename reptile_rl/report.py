"""What ``reptile-rl evaluate`` writes: ``adaptation.csv``, ``.json``, ``.md`` and ``.png``.

The tables and the figure show the family's published reference numbers (e.g. MAML's for
Navigation2D) where it declares them (:attr:`~reptile_rl.envs.TaskFamily.reference_results`).
For a family whose env reports success (Meta-World's metric) every output also gives the success
rate; for the others they are exactly as without it (no success column, key, table or panel).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from reptile_rl import environment
from reptile_rl.atomic import atomic_write_text
from reptile_rl.evaluation import Evaluation
from reptile_rl.families import family_class
from reptile_rl.plotting import plot_adaptation
from reptile_rl.rundir import adaptation_files
from reptile_rl.stats import Summary

CSV_COLUMNS = ["init", "task_id", "task", "update", "env_steps", "return", "mean_action_return"]
SUCCESS_COLUMNS = ["success_rate", "mean_action_success_rate"]
"""Appended to :data:`CSV_COLUMNS` when the evaluation measured success rates."""


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.2f}"


def _interval(summary: Summary) -> str:
    """A table cell: ``mean [low, high]``, or ``mean (n=1)`` where one value has no interval."""
    if summary.n < 2:
        return f"{_fmt(summary.mean)} (n={summary.n})"
    return f"{_fmt(summary.mean)} [{_fmt(summary.low)}, {_fmt(summary.high)}]"


def _cell(curves: dict[str, list[list[float]]], init: str, task_id: int, update: int) -> Any:
    """``curves[init][task_id][update]``, or ``""`` where it was not measured."""
    curve = curves.get(init, [])
    if task_id >= len(curve) or update >= len(curve[task_id]):
        return ""
    return curve[task_id][update]


def to_csv(evaluation: Evaluation) -> str:
    """One row per init, task and update (``mean_action_return`` empty where not measured).

    With success rates measured, also ``success_rate`` and ``mean_action_success_rate`` (empty
    where not measured); without, the columns are left out.
    """
    measured = bool(evaluation.success_rates or evaluation.mean_action_success_rates)
    buffer = io.StringIO()
    columns = CSV_COLUMNS + (SUCCESS_COLUMNS if measured else [])
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for init, per_task in evaluation.returns.items():
        for task_id, (task, curve) in enumerate(zip(evaluation.tasks, per_task, strict=True)):
            for update, value in enumerate(curve):
                row = {
                    "init": init,
                    "task_id": task_id,
                    "task": task.to_json(),
                    "update": update,
                    "env_steps": update * evaluation.rollout_size,
                    "return": value,
                    "mean_action_return": _cell(
                        evaluation.mean_action_returns, init, task_id, update
                    ),
                }
                if measured:
                    row["success_rate"] = _cell(evaluation.success_rates, init, task_id, update)
                    row["mean_action_success_rate"] = _cell(
                        evaluation.mean_action_success_rates, init, task_id, update
                    )
                writer.writerow(row)
    return buffer.getvalue()


def _summaries_json(summaries: dict[str, list[Summary]]) -> dict[str, list[dict[str, Any]]]:
    return {
        init: [_summary_json(k, s) for k, s in enumerate(curve)]
        for init, curve in summaries.items()
    }


def to_json(evaluation: Evaluation, sources: dict[str, str]) -> dict[str, Any]:
    """Summary statistics per init and update, with the protocol and the sources.

    ``inits_success`` and ``inits_mean_action_success`` (the success rates, summarised as the
    returns are) are there only where success rates were measured.
    """
    config = evaluation.config
    inits = _summaries_json(evaluation.summaries())
    success: dict[str, Any] = {}
    if evaluation.success_rates:
        success["inits_success"] = _summaries_json(evaluation.success_summaries())
    if evaluation.mean_action_success_rates:
        success["inits_mean_action_success"] = _summaries_json(
            evaluation.success_summaries(mean_action=True)
        )
    return {
        "env_id": config.env.id,
        "tasks": len(evaluation.tasks),
        "updates": config.evaluation.updates,
        "episodes_per_update": config.evaluation.episodes,
        "seed": config.evaluation.seed,
        "inner": config.evaluation_inner().model_dump(),
        "sources": sources,
        "inits": inits,
        "inits_mean_action": _summaries_json(evaluation.summaries(mean_action=True)),
        **success,
        "normalized_scores": evaluation.normalized_scores(),
        "paired_differences": _summaries_json(evaluation.paired_differences()),
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
    if evaluation.success_rates:
        lines += table(
            "Success rate over tasks [95% CI; a t-interval, which can pass 0 and 1]: the "
            "fraction of the stochastic policy's episodes above that succeeded (the env's "
            "is_success at their end)."
        )
        lines += rows(evaluation.success_summaries())
    if evaluation.mean_action_success_rates:
        lines += table("Mean-action success rate (the mean-action episodes above) [95% CI]:")
        lines += rows(evaluation.success_summaries(mean_action=True))
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
    made_with = {"environment": environment.describe()}
    summary = json.dumps({**to_json(evaluation, sources), **made_with}, indent=2, allow_nan=True)
    atomic_write_text(paths[1], summary + "\n")
    atomic_write_text(paths[2], to_markdown(evaluation))
    reference = family_class(evaluation.config.env.id).reference_results
    plot_adaptation(evaluation, paths[3], reference or None)
    return paths
