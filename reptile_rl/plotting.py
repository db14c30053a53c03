"""Figures: adaptation curves with confidence bands, and training curves from progress.csv."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt
import numpy as np

from reptile_rl.evaluation import Evaluation
from reptile_rl.metrics import Metric

_COLOURS = {
    "meta": "tab:blue",
    "pretrained": "tab:orange",
    "random": "tab:grey",
    "oracle": "tab:green",
}


def _draw_summaries(
    axes: Any,
    summaries: dict[str, list[Any]],
    first_update: int,
    updates: int,
    bounds: tuple[float, float] | None,
    digits: int,
) -> list[int]:
    """Every init's mean (with its interval band where n > 1) and the oracle's line.

    ``bounds`` clips the bands (a rate lies in [0, 1]; a t-interval need not). Returns the
    x positions, the updates from ``first_update`` on.
    """
    low, high = bounds if bounds is not None else (-np.inf, np.inf)
    xs = list(range(first_update, updates + 1))
    for init, curve in summaries.items():
        colour = _COLOURS.get(init)
        if init == "oracle":
            oracle = curve[0]
            label = f"oracle ({oracle.mean:.{digits}f})"
            axes.axhline(oracle.mean, color=colour, linestyle="--", label=label)
            if oracle.n > 1:
                band = (max(oracle.low, low), min(oracle.high, high))
                axes.axhspan(*band, color=colour, alpha=0.1)
            continue
        shown = curve[first_update:]
        axes.plot(xs[: len(shown)], [s.mean for s in shown], marker="o", color=colour, label=init)
        if all(s.n > 1 for s in shown):
            lows = [max(s.low, low) for s in shown]
            highs = [min(s.high, high) for s in shown]
            axes.fill_between(xs[: len(shown)], lows, highs, color=colour, alpha=0.2)
    return xs


def _draw_curves(
    axes: Any,
    evaluation: Evaluation,
    reference: dict[str, list[float]],
    first_update: int,
    legend: bool,
) -> None:
    """Every init's mean (with its interval band where n > 1), the oracle, the references."""
    updates = evaluation.config.evaluation.updates
    xs = _draw_summaries(axes, evaluation.summaries(), first_update, updates, None, 1)
    for name, values in reference.items():
        shown_values = values[first_update : updates + 1]
        colour = _COLOURS.get("meta" if name == "MAML" else name, "black")
        axes.plot(
            range(first_update, first_update + len(shown_values)),
            shown_values,
            linestyle=":",
            marker="x",
            linewidth=1,
            color=colour,
            alpha=0.6,
            label=f"{name} (published)",
        )
    axes.set_xticks(xs)
    axes.grid(alpha=0.3)
    if legend:
        axes.legend(fontsize=7, loc="lower right", ncol=2)


def _zoom(axes: Any, evaluation: Evaluation, reference: dict[str, list[float]]) -> None:
    """Limit the y-axis to meta, the oracle and MAML after adaptation; mark what falls below."""
    summaries = evaluation.summaries()
    focus: list[float] = []
    for init in ("meta", "oracle"):
        for s in summaries.get(init, [])[1 if init == "meta" else 0 :]:
            focus += [s.mean] + ([s.low, s.high] if s.n > 1 else [])
    focus += reference.get("MAML", [])[1:] + reference.get("oracle", [])
    focus = [v for v in focus if np.isfinite(v)]
    if not focus:
        return
    low, high = min(focus), max(focus)
    pad = max(0.08 * (high - low), 0.5)
    bottom, top = low - pad, high + pad
    axes.set_ylim(bottom, top)
    for update in range(1, evaluation.config.evaluation.updates + 1):
        below = [
            (init, curve[update].mean)
            for init, curve in summaries.items()
            if init != "oracle" and len(curve) > update and curve[update].mean < bottom
        ]
        for index, (init, mean) in enumerate(below):
            # Side by side when several inits fall below at the same update.
            shift = (index - (len(below) - 1) / 2) * 26
            colour = _COLOURS.get(init, "black")
            axes.annotate(
                f"{mean:.0f}",
                (update, bottom),
                xytext=(shift, 14),
                textcoords="offset points",
                ha="center",
                fontsize=7,
                color=colour,
                arrowprops={"arrowstyle": "->", "color": colour},
            )


def _draw_metric(axes: Any, evaluation: Evaluation, metric: Metric) -> None:
    """Every init's mean of ``metric`` (its interval band where n > 1), the oracle's line."""
    updates = evaluation.config.evaluation.updates
    bounds = metric.axis[1]
    xs = _draw_summaries(axes, evaluation.summaries(metric), 0, updates, bounds, 2)
    if bounds is not None:
        margin = 0.05 * (bounds[1] - bounds[0])
        axes.set_ylim(bounds[0] - margin, bounds[1] + margin)
    axes.set_xticks(xs)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="best", ncol=2)


def plot_adaptation(
    evaluation: Evaluation, path: Path, reference: dict[str, list[float]] | None = None
) -> None:
    """Return vs learner updates: every init, and a second panel zoomed on the adapted meta-init.

    The left panel shows every init's mean with its 95% interval band (none for one task) and
    the oracle as a line. The next panel shows updates 1 onwards with the y-axis set by the
    meta-init, the oracle and MAML's published curve, so that -3 and -2 can be told apart;
    what falls below it (a badly adapted baseline) is marked at the bottom with its value.
    Each other measured metric with a panel of its own (the success rate) follows, drawn as
    the first panel draws returns.

    Args:
        evaluation: The measured returns.
        path: Output PNG.
        reference: Published curves to draw thin and dotted (e.g. MAML's), name -> returns.
    """
    config = evaluation.config
    reference = reference or {}
    zoom = config.evaluation.updates > 0 and "meta" in evaluation.returns
    panelled = [metric for metric in evaluation.measured() if metric.panel]
    count = 1 + zoom + len(panelled)
    figure, panels = plt.subplots(
        1, count, figsize=(7 + 4 * (count - 1), 4.5), dpi=120, squeeze=False
    )
    algorithm = config.evaluation_inner().algorithm.upper()
    tasks = len(evaluation.tasks)
    band = "mean over tasks with 95% confidence interval" if tasks > 1 else "one task: no interval"
    title = f"Adaptation on {evaluation.describe_tasks()}: {config.env.id}\n{band}"
    figure.suptitle(title, fontsize=10)
    _draw_curves(panels[0][0], evaluation, reference, 0, legend=True)
    panels[0][0].set_title("every initialisation", fontsize=9)
    panels[0][0].set_xlabel(f"{algorithm} updates on the new task")
    panels[0][0].set_ylabel(f"mean return ({config.evaluation.episodes} episodes, stochastic)")
    if zoom:
        _draw_curves(panels[0][1], evaluation, reference, 1, legend=False)
        _zoom(panels[0][1], evaluation, reference)
        shown = (
            ["meta"]
            + ["oracle"] * ("oracle" in evaluation.returns)
            + ["MAML"] * ("MAML" in reference)
        )
        zoomed = ", ".join(shown[:-1]) + " and " + shown[-1] if len(shown) > 1 else shown[0]
        panels[0][1].set_title(f"after adaptation, zoomed on {zoomed}", fontsize=9)
        panels[0][1].set_xlabel(f"{algorithm} updates on the new task")
    for index, metric in enumerate(panelled, start=1 + zoom):
        axes = panels[0][index]
        _draw_metric(axes, evaluation, metric)
        axes.set_title(metric.panel, fontsize=9)
        axes.set_xlabel(f"{algorithm} updates on the new task")
        axes.set_ylabel(metric.axis[0].format(episodes=config.evaluation.episodes))
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _smoothed(values: list[float], window: int) -> list[float]:
    """Trailing moving average (shorter at the start)."""
    sums = np.cumsum([0.0, *values])
    return [
        float((sums[i + 1] - sums[max(0, i + 1 - window)]) / (i + 1 - max(0, i + 1 - window)))
        for i in range(len(values))
    ]


def plot_training(progress_csv: Path, path: Path) -> None:
    """Meta-training curves: the return before adaptation and after each inner update.

    Each curve is drawn raw (thin) and as a moving average (bold); the y-axis is set by the
    iterations after the first, whose untrained returns would otherwise squash the rest.

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
    window = max(1, len(rows) // 10)
    figure, axes = plt.subplots(figsize=(7, 5), dpi=120)
    shown: list[float] = []
    for index, column in enumerate(columns):
        label = column.replace("return_", "").replace("_", " ")
        values = [float(row[column]) for row in rows]
        colour = f"C{index}"
        axes.plot(x, values, linewidth=0.6, alpha=0.35, color=colour)
        # The untrained first iteration stays out of the average (its outliers would drag it).
        start = 1 if len(values) > 1 else 0
        smooth = _smoothed(values[start:], window)
        axes.plot(x[start:], smooth, linewidth=1.8, color=colour, label=label)
        shown += values[start:]
    low, high = float(np.percentile(shown, 1)), float(max(shown))
    pad = max(0.05 * (high - low), 0.5)
    axes.set_ylim(low - pad, high + pad)
    axes.set_xlabel(counter.replace("_", " "))
    axes.set_ylabel("mean episodic return over the meta-batch")
    axes.set_title(f"Training curves: {progress_csv.parent.name}", fontsize=10)
    axes.grid(alpha=0.3)
    smoothing = f"mean of the last {window} iterations" if window > 1 else "raw"
    axes.legend(fontsize=8, loc="center right", title=f"{smoothing}; faint: raw", title_fontsize=7)
    figure.text(
        0.01,
        0.01,
        "Training adapts with the inner settings on the meta-batch's tasks; evaluate uses\n"
        "evaluation.inner (e.g. other rates) on held-out tasks, so its returns differ.",
        fontsize=7,
        color="dimgrey",
    )
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    figure.savefig(path)
    plt.close(figure)
