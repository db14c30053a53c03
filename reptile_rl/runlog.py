"""What a training run writes for people: ``progress.csv``, TensorBoard events, a progress bar."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from tqdm import tqdm

from reptile_rl.atomic import atomic_write_text
from reptile_rl.rundir import RunDir


def progress_columns(updates: int, measured_final: bool) -> list[str]:
    """The columns of ``progress.csv`` for ``updates`` inner updates."""
    after = [f"return_after_{k}" for k in range(1, updates + measured_final)]
    return ["iteration", "env_steps", "wall_s", "eps", "return_pre", *after, "tasks_dropped"]


class RunLog:
    """Appends one row per iteration to ``progress.csv`` and TensorBoard, and shows progress.

    On resume, rows from iterations at or after ``start_iteration`` (written after the last
    checkpoint, before a crash) are dropped from the CSV and purged from TensorBoard.

    Args:
        run: The run directory.
        columns: CSV header; the first column is the iteration counter.
        start_iteration: First iteration this process will log.
        total_iterations: For the progress bar.
        progress: Show a progress bar on stderr.
        postfix: Progress-bar label -> CSV column to show after each row.
        tag: TensorBoard tag prefix for the CSV columns.
    """

    def __init__(
        self,
        run: RunDir,
        columns: list[str],
        start_iteration: int,
        total_iterations: int,
        progress: bool,
        postfix: dict[str, str],
        tag: str = "meta",
    ) -> None:
        self.path = run.progress_file
        self.columns = columns
        self.postfix = postfix
        self.tag = tag
        self._keep_rows_before(start_iteration)
        self._file = self.path.open("a", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=columns)
        if self.path.stat().st_size == 0:
            self._writer.writeheader()
        # Imported here: TensorBoard's import is slow and only training needs it.
        from torch.utils.tensorboard import SummaryWriter

        self._tensorboard = SummaryWriter(str(run.tensorboard_dir), purge_step=start_iteration)
        self._bar = tqdm(
            total=total_iterations,
            initial=start_iteration,
            desc=f"{tag} {columns[0]}s",
            unit="it",
            disable=not progress,
            dynamic_ncols=True,
        )

    def _keep_rows_before(self, iteration: int) -> None:
        if not self.path.exists():
            return
        with self.path.open(newline="") as file:
            counter = self.columns[0]
            rows = [row for row in csv.DictReader(file) if int(row[counter]) < iteration]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.path, buffer.getvalue())

    def record(
        self, row: dict[str, Any], scalars: dict[str, float], steps_per_second: float
    ) -> None:
        """Log one iteration.

        Args:
            row: Values for every CSV column.
            scalars: Extra TensorBoard scalars (e.g. the learner's statistics).
            steps_per_second: Env steps per second of this iteration (for the bar).
        """
        self._writer.writerow(row)
        self._file.flush()
        counter = self.columns[0]
        iteration = int(row[counter])
        for name, value in row.items():
            if name != counter and isinstance(value, int | float) and math.isfinite(value):
                self._tensorboard.add_scalar(f"{self.tag}/{name}", value, iteration)
        for name, value in scalars.items():
            self._tensorboard.add_scalar(name, value, iteration)
        self._tensorboard.add_scalar(
            f"{self.tag}/env_steps_per_second", steps_per_second, iteration
        )
        shown = {label: f"{row[column]:.1f}" for label, column in self.postfix.items()}
        self._bar.set_postfix(**shown, sps=f"{steps_per_second:.0f}")
        self._bar.update(1)

    def close(self) -> None:
        """Flush and close everything."""
        self._bar.close()
        self._tensorboard.close()
        self._file.close()
