"""Navigation2D adaptation curves split by the goal's distance from the start.

Reads the ``adaptation.csv`` of one or more ``reptile-rl evaluate`` runs (one row per init, task
and update) and prints, for one init, the mean return after each update for goals in distance
bands, and how many adaptations end worse than a threshold. benchmarks/ABLATIONS.md uses it to
show where the navigation preset's remaining gap to MAML lies (far goals, and the precision of
well-adapted ones).

Usage: ``python -m benchmarks.navigation_by_distance RUN/eval/adaptation.csv [...] [--init meta]``.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BANDS = (0.0, 0.2, 0.3, 0.4, 0.5, math.inf)


@dataclass(frozen=True)
class Adaptation:
    """One task's adaptation curve: the goal's distance and the return after each update."""

    distance: float
    returns: tuple[float, ...]


def read_adaptations(paths: Iterable[Path], init: str) -> list[Adaptation]:
    """The adaptation curves of ``init`` in evaluation CSV files (a curve per file and task)."""
    adaptations = []
    for path in paths:
        curves: dict[str, dict[int, float]] = {}
        goals: dict[str, float] = {}
        with path.open(newline="") as file:
            for row in csv.DictReader(file):
                if row["init"] != init:
                    continue
                task = json.loads(row["task"])
                goals[row["task_id"]] = math.hypot(task["goal_x"], task["goal_y"])
                curves.setdefault(row["task_id"], {})[int(row["update"])] = float(row["return"])
        for task_id, curve in curves.items():
            adaptations.append(Adaptation(goals[task_id], tuple(curve[k] for k in sorted(curve))))
    return adaptations


def by_distance(
    adaptations: Sequence[Adaptation], bands: Sequence[float] = BANDS
) -> list[tuple[float, float, int, list[float]]]:
    """Mean return after each update for goals with ``low <= distance < high``.

    Returns:
        ``(low, high, adaptations in the band, mean return per update)`` for each non-empty band.
    """
    rows = []
    for low, high in itertools.pairwise(bands):
        band = [a.returns for a in adaptations if low <= a.distance < high]
        if band:
            rows.append((low, high, len(band), np.mean(band, axis=0).tolist()))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """Print the table for the CSV files on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="+", type=Path, help="adaptation.csv of an evaluation")
    parser.add_argument("--init", default="meta", help="which init's curves (default meta)")
    parser.add_argument("--worse-than", type=float, default=-8.0, help="threshold for the count")
    args = parser.parse_args(argv)
    adaptations = read_adaptations(args.csv, args.init)
    if not adaptations:
        parser.error(f"--init: no rows for {args.init!r} in {[str(p) for p in args.csv]}")
    updates = len(adaptations[0].returns)
    print("| goal distance | adaptations | " + " | ".join(map(str, range(updates))) + " |")
    print("|---" * (updates + 2) + "|")
    for low, high, count, means in by_distance(adaptations):
        cells = " | ".join(f"{m:.2f}" for m in means)
        print(f"| {low:.1f}-{high:.1f} | {count} | {cells} |")
    everything = np.array([a.returns for a in adaptations])
    cells = " | ".join(f"{m:.2f}" for m in everything.mean(axis=0))
    print(f"| all | {len(adaptations)} | {cells} |")
    for update in range(1, updates):
        after = everything[:, update]
        good = after[after >= args.worse_than]
        others = f"{good.mean():.2f}" if good.size else "-"
        print(
            f"after {update}: median {np.median(after):.2f}; {int((after < args.worse_than).sum())}"
            f" of {len(after)} worse than {args.worse_than}, the others average {others}"
        )


if __name__ == "__main__":
    main()
