"""What ``reptile-rl evaluate`` writes: ``adaptation.csv``, ``.json``, ``.md`` and ``.png``.

The tables and the figure show the family's published reference numbers (e.g. MAML's for
Navigation2D) where it declares them (:attr:`~reptile_rl.envs.TaskFamily.reference_results`).
Every output loops over the metrics (:data:`~reptile_rl.metrics.METRICS`): a metric that is
not measured (the success rate of a family whose env reports none) has no column, key, table or
panel.
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
from reptile_rl.evaluation import PROTOCOLS, Curves, Evaluation
from reptile_rl.families import family_class
from reptile_rl.metrics import METRICS, Metric
from reptile_rl.plotting import plot_adaptation
from reptile_rl.rundir import adaptation_files
from reptile_rl.stats import Summary

KEY_COLUMNS = ["init", "task_id", "task", "update", "env_steps"]
"""The columns saying what a CSV row measured; a column per metric follows them."""


def metric_columns(measured: list[Metric]) -> list[str]:
    """The metrics' columns of a CSV: those always given, and those ``measured``."""
    return [metric.name for metric in METRICS if metric.always or metric in measured]


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.2f}"


def _interval(summary: Summary) -> str:
    """A table cell: ``mean [low, high]``, or ``mean (n=1)`` where one value has no interval."""
    if summary.n < 2:
        return f"{_fmt(summary.mean)} (n={summary.n})"
    return f"{_fmt(summary.mean)} [{_fmt(summary.low)}, {_fmt(summary.high)}]"


def _cell(curves: Curves, init: str, task_id: int, update: int) -> Any:
    """``curves[init][task_id][update]``, or ``""`` where it was not measured."""
    curve = curves.get(init, [])
    if task_id >= len(curve) or update >= len(curve[task_id]):
        return ""
    return curve[task_id][update]


def to_csv(evaluation: Evaluation) -> str:
    """One row per init, task and update, a column per metric (empty where not measured).

    A metric that is not always given (:attr:`~reptile_rl.metrics.Metric.always`) has a column
    only where the evaluation measured it.
    """
    columns = metric_columns(evaluation.measured())
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=KEY_COLUMNS + columns, lineterminator="\n")
    writer.writeheader()
    for init, per_task in evaluation.returns.items():
        for task_id, (task, curve) in enumerate(zip(evaluation.tasks, per_task, strict=True)):
            for update in range(len(curve)):
                row = {
                    "init": init,
                    "task_id": task_id,
                    "task": task.to_json(),
                    "update": update,
                    "env_steps": update * evaluation.rollout_size,
                }
                for name in columns:
                    row[name] = _cell(evaluation.curves.get(name, {}), init, task_id, update)
                writer.writerow(row)
    return buffer.getvalue()


def _summaries_json(summaries: dict[str, list[Summary]]) -> dict[str, list[dict[str, Any]]]:
    return {
        init: [_summary_json(k, s) for k, s in enumerate(curve)]
        for init, curve in summaries.items()
    }


def to_json(evaluation: Evaluation, sources: dict[str, str]) -> dict[str, Any]:
    """Summary statistics per init and update, with the protocol and the sources.

    Each metric's summaries are under its :attr:`~reptile_rl.metrics.Metric.json_key`, where
    it was measured (the returns' under ``inits``).
    """
    config = evaluation.config
    summaries = {
        metric.json_key: _summaries_json(evaluation.summaries(metric))
        for metric in evaluation.measured()
    }
    return {
        "env_id": config.env.id,
        "tasks": len(evaluation.tasks),
        "updates": config.evaluation.updates,
        "episodes_per_update": config.evaluation.episodes,
        "seed": config.evaluation.seed,
        "protocol": config.evaluation.protocol,
        "inner": config.evaluation_inner().model_dump(),
        "sources": sources,
        **summaries,
        "groups": {
            group: {
                metric.json_key: _summaries_json(evaluation.group_summaries(group, metric))
                for metric in evaluation.measured()
            }
            for group in evaluation.groups()
        },
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
    if PROTOCOLS[config.evaluation.protocol]:
        lines += ["", PROTOCOLS[config.evaluation.protocol]]
    protocol = {
        "algorithm": config.evaluation_inner().algorithm.upper(),
        "episodes": config.evaluation.episodes,
        "seed": config.evaluation.seed,
    }
    for metric in evaluation.measured():
        lines += table(metric.caption.format(**protocol))
        lines += rows(evaluation.summaries(metric))
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
    if evaluation.groups():
        for metric in evaluation.measured():
            lines += table(f"Per group of tasks (the family's): {metric.name} [95% CI]")
            lines += rows(
                {
                    f"{init}, {group}": curve
                    for group in evaluation.groups()
                    for init, curve in evaluation.group_summaries(group, metric).items()
                }
            )
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
