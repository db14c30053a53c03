"""Figures: adaptation curves with confidence bands, and training curves from progress.csv."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt

from reptile_rl.evaluation import Evaluation

_COLOURS = {
    "meta": "tab:blue",
    "pretrained": "tab:orange",
    "random": "tab:grey",
    "oracle": "tab:green",
}


def plot_adaptation(
    evaluation: Evaluation, path: Path, reference: dict[str, list[float]] | None = None
) -> None:
    """Return vs learner updates, one line per init with its 95% CI band; the oracle as a line.

    Args:
        evaluation: The measured returns.
        path: Output PNG.
        reference: Published curves to draw thin and dotted (e.g. MAML's), name -> returns.
    """
    config = evaluation.config
    updates = list(range(config.evaluation.updates + 1))
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    for init, curve in evaluation.summaries().items():
        colour = _COLOURS.get(init)
        means = [s.mean for s in curve]
        lows = [s.low for s in curve]
        highs = [s.high for s in curve]
        if init == "oracle":
            axes.axhline(means[0], color=colour, linestyle="--", label=f"oracle ({means[0]:.1f})")
            axes.axhspan(lows[0], highs[0], color=colour, alpha=0.1)
            continue
        axes.plot(updates[: len(means)], means, marker="o", color=colour, label=init)
        axes.fill_between(updates[: len(means)], lows, highs, color=colour, alpha=0.2)
    for name, values in (reference or {}).items():
        shown = values[: len(updates)]
        colour = _COLOURS.get("meta" if name == "MAML" else name, "black")
        axes.plot(
            range(len(shown)),
            shown,
            linestyle=":",
            marker="x",
            linewidth=1,
            color=colour,
            alpha=0.6,
            label=f"{name} (published)",
        )
    axes.set_xticks(updates)
    axes.set_xlabel(f"{config.evaluation_inner().algorithm.upper()} updates on the new task")
    axes.set_ylabel(f"mean return ({config.evaluation.episodes} episodes)")
    axes.set_title(
        f"Adaptation on {len(evaluation.tasks)} held-out tasks: {config.env.id}\n"
        "mean over tasks with 95% confidence interval",
        fontsize=10,
    )
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower right", ncol=2)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def plot_training(progress_csv: Path, path: Path) -> None:
    """Meta-training curves: the return before adaptation and after each inner update.

    Raises:
        ValueError: If the file has no rows or no ``return_*`` columns.
    """
    with progress_csv.open(newline="") as file:
        rows = list(csv.DictReader(file))
    if not rows:
        raise ValueError(f"{progress_csv}: no rows yet")
    counter = next(iter(rows[0]))
    columns = [c for c in rows[0] if c.startswith("return")]
    if not columns:
        raise ValueError(f"{progress_csv}: no return columns")
    x = [int(row[counter]) for row in rows]
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    for column in columns:
        label = column.replace("return_", "").replace("_", " ")
        axes.plot(x, [float(row[column]) for row in rows], label=label, linewidth=1.2)
    axes.set_xlabel(counter.replace("_", " "))
    axes.set_ylabel("mean episodic return over the meta-batch")
    axes.set_title(f"Training curves: {progress_csv.parent.name}", fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
