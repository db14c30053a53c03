"""The meta-training driver: runs :func:`reptile_rl.reptile.meta_step` until the last iteration.

Around the algorithm it owns the loop, the logs (``progress.csv``, TensorBoard, progress bar),
the checkpoint cadence and resume, and the final export; the files are named by
:class:`~reptile_rl.rundir.RunDir`.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from reptile_rl import checkpoint, environment
from reptile_rl.config import Config, ConfigError, check_env_builds, config_from_dict
from reptile_rl.parallel import Backend, ClusterLostError, make_backend, resolve_backend
from reptile_rl.params import Params
from reptile_rl.policies import PolicyFile, export_policy, save_policy
from reptile_rl.reptile import (
    MetaState,
    StepReport,
    TrainingError,
    initial_state,
    meta_learned,
    meta_step,
)
from reptile_rl.rundir import RunDir
from reptile_rl.runlog import RunLog, progress_columns

logger = logging.getLogger(__name__)


class StorageError(RuntimeError):
    """The run directory cannot be written (full disk, lost permissions...)."""


class Trainer:
    """Meta-train a policy initialisation with Reptile and write the run directory.

    Args:
        config: The run configuration (see :mod:`reptile_rl.config`).
        run_dir: Where to write the run; ``None`` for ``runs/<name>-seed<seed>-<time>``. It must
            not already hold a run (use :meth:`resume` for that).
        progress: Show a progress bar.

    Example:
        >>> from reptile_rl import Trainer, load_config
        >>> trainer = Trainer(load_config("navigation", ["outer.iterations=2"])).learn()
        >>> trainer.run_dir / "meta_policy.zip"  # doctest: +SKIP
    """

    def __init__(
        self, config: Config, run_dir: str | Path | None = None, progress: bool = False
    ) -> None:
        resolve_backend(config.parallel)  # fail now, not after set-up, if Ray is missing
        self.config = config
        self.run = RunDir(run_dir) if run_dir is not None else RunDir.default(config)
        self.progress = progress
        self.state: MetaState | None = None

    @property
    def run_dir(self) -> Path:
        """The run directory."""
        return self.run.path

    @property
    def theta(self) -> Params:
        """The current meta-parameters."""
        if self.state is None:
            raise RuntimeError("no parameters yet: call learn() first")
        return self.state.theta

    @classmethod
    def resume(
        cls, run_dir: str | Path, progress: bool = False, iterations: int | None = None
    ) -> Trainer:
        """Continue a run from its latest valid checkpoint.

        The final parameters are bit-identical to those of an uninterrupted run.

        Args:
            run_dir: The run.
            progress: Show a progress bar.
            iterations: Extend the run to this many meta-iterations in all (its
                ``config.yaml`` is rewritten). The new iterations use the eps of a run
                configured with ``iterations`` from the start, at those iterations; the
                iterations already run keep theirs.

        Raises:
            ConfigError: If ``run_dir`` holds no run, or ``iterations`` is not more than the
                iterations the run has done.
            CheckpointError: If it holds no readable checkpoint.
        """
        run = RunDir(run_dir)
        trainer = cls(run.read_config(), run_dir, progress=progress)
        trainer.state = trainer._load_latest()
        warning = environment.difference_warning(f"run {run}", run.read_environment())
        if warning is not None:
            logger.warning("resuming: %s", warning)
        if iterations is not None:
            done = trainer.state.iteration
            if iterations <= done:
                raise ConfigError(
                    f"--iterations: the run has done {done} iterations; give more, got {iterations}"
                )
            values = trainer.config.to_dict()
            values["outer"]["iterations"] = iterations
            trainer.config = config_from_dict(values)
            run.write_config(trainer.config)
        return trainer

    def finished(self) -> bool:
        """Whether the run has done every iteration and written its meta-policy."""
        done = self.state is not None and self.state.iteration >= self.config.outer.iterations
        return done and self.run.policy_file("meta").is_file()

    def learn(self) -> Trainer:
        """Meta-train until ``outer.iterations``; return ``self`` (see ``run_dir``, ``theta``).

        Raises:
            ConfigError: If the run directory cannot be written.
            TrainingError: If most of a meta-batch fails.
        """
        config = self.config
        if self.finished():
            return self  # touch nothing: a finished run's files stay as they are
        if self.state is None:
            self.run.ensure_new()
            check_env_builds(config)
        # The backend first: a cluster that cannot be joined leaves no run directory behind.
        backend = make_backend(config.parallel)
        logger.info(
            "run %s: %s backend, %d worker(s)", self.run, type(backend).__name__, backend.workers
        )
        if config.parallel.address is not None:
            # When the driver's own Ray node dies, Ray ends this process before Python can say
            # anything: say now how to continue.
            logger.warning(
                "training on the Ray cluster at %s; if it is lost, continue with: "
                "reptile-rl train --resume %s",
                config.parallel.address,
                self.run,
            )
        try:
            if self.state is None:
                self.run.create(config)
                self.state = initial_state(config)
                self.save_checkpoint(self.state)
            self._loop(backend)
        finally:
            backend.close()
        assert self.state is not None
        self._export(self.state)
        return self

    def _loop(self, backend: Backend) -> None:
        """Meta-iterations from ``self.state`` to the last, each logged and checkpointed."""
        config = self.config
        assert self.state is not None
        columns = progress_columns(config.inner.updates, config.outer.measure_adapted)
        log = RunLog(
            self.run,
            columns,
            self.state.iteration,
            config.outer.iterations,
            self.progress,
            {"pre": "return_pre", "post": columns[-2]},
        )
        try:
            while self.state.iteration < config.outer.iterations:
                start = time.perf_counter()
                try:
                    state, report = meta_step(config, self.state, backend)
                except ClusterLostError as error:
                    raise TrainingError(
                        f"{error}; the last checkpoint holds {self.state.iteration} iterations: "
                        f"continue with reptile-rl train --resume {self.run}"
                    ) from error
                elapsed = time.perf_counter() - start
                state.wall_seconds += elapsed
                row, scalars = _log_row(self.state.iteration, state, report)
                try:
                    log.record(row, scalars, report.env_steps / max(elapsed, 1e-9))
                except OSError as error:
                    raise StorageError(
                        f"cannot write the logs in {self.run}: {error.strerror or error}"
                    ) from error
                self.state = state
                self.save_checkpoint(state)
        finally:
            log.close()

    def _export(self, state: MetaState) -> None:
        info = {"iterations": state.iteration, "env_steps": state.env_steps}
        policy = PolicyFile(state.theta, self.config, "meta", info=info)
        policy.inner_log_rates = state.log_rates
        save_policy(self.run.policy_file("meta"), policy)
        export_policy(policy, self.run.sb3_file("meta"))

    # -- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self, state: MetaState) -> None:
        """Write ``latest`` (and every ``checkpoint_every`` iterations a numbered copy)."""
        tensors, tree = checkpoint.flatten_state(state)
        record = {
            "kind": "checkpoint",
            "state": tree,
            "config": self.config.to_dict(),
            "environment": environment.describe(),
        }
        numbered = state.iteration % self.config.checkpoint_every == 0
        paths = [self.run.latest_checkpoint]
        if numbered or state.iteration == self.config.outer.iterations:
            paths.insert(0, self.run.numbered_checkpoint(state.iteration))
        for path in paths:
            try:
                checkpoint.save(path, tensors, record)
            except OSError as error:
                # Writes are atomic, so a latest file that exists is a complete earlier one.
                advice = (
                    f"the previous checkpoint is intact: free the space or fix the permissions, "
                    f"then reptile-rl train --resume {self.run}"
                    if paths[-1].exists()
                    else "no checkpoint was written: free the space or fix the permissions"
                )
                raise StorageError(
                    f"cannot write checkpoint {path}: {error.strerror or error}; {advice}"
                ) from error

    def _load_latest(self) -> MetaState:
        """Load ``latest``, falling back to the newest numbered checkpoint that verifies."""
        candidates = [self.run.latest_checkpoint, *self.run.numbered_checkpoints()]
        errors = []
        for path in candidates:
            try:
                tensors, record = checkpoint.load(path, kind="checkpoint")
            except checkpoint.CheckpointError as error:
                errors.append(str(error))
                continue
            if path is not candidates[0]:
                logger.warning("latest checkpoint unusable (%s); resuming from %s", errors[0], path)
            return self._state_from(tensors, record, path)
        detail = "; ".join(errors[:2]) or "none written yet"
        raise checkpoint.CheckpointError(
            f"--resume: no usable checkpoint in {self.run.checkpoint_dir}: {detail}"
        )

    def _state_from(self, tensors: Params, record: dict[str, Any], path: Path) -> MetaState:
        try:
            # Options added since the checkpoint was written take their defaults, which keep
            # the behaviour it was written with (e.g. outer.eps_hold 0): older runs resume.
            written = config_from_dict(record["config"], written=True).to_dict()
        except ConfigError:
            written = None
        if written != self.config.to_dict():
            raise checkpoint.CheckpointError(f"{path}: written by a different configuration")
        state = meta_state_from(tensors, record)
        meta_learned(self.config, state.theta)  # the same check as a new run's
        return state


def meta_state_from(tensors: Params, record: dict[str, Any]) -> MetaState:
    """The training state a checkpoint's tensors and record hold."""
    if "state" not in record:
        tensors, record = _prefixed_layout(tensors, record)
    return checkpoint.unflatten_state(MetaState, tensors, record["state"])


def _prefixed_layout(tensors: Params, record: dict[str, Any]) -> tuple[Params, dict[str, Any]]:
    """A checkpoint written field by field, before the state saved itself, in today's layout.

    Frozen: fields added since then take their defaults (:func:`checkpoint.unflatten_state`).
    """
    renamed = {
        "adam_m/": "adam/first_moment/",
        "adam_v/": "adam/second_moment/",
        "rate_adam_m/": "rate_adam/first_moment/",
        "rate_adam_v/": "rate_adam/second_moment/",
    }
    layout: Params = {}
    for name, value in tensors.items():
        prefix = name.split("/", 1)[0] + "/"
        layout[renamed.get(prefix, prefix) + name[len(prefix) :]] = value

    def adam(step: int | None) -> dict[str, Any] | None:
        moments = {"first_moment": checkpoint.TENSORS, "second_moment": checkpoint.TENSORS}
        return None if step is None else {"step": step, **moments}

    has_rates = record.get("rate_adam_step") is not None
    tree = {
        "iteration": record["iteration"],
        "theta": checkpoint.TENSORS,
        "adam": adam(record["adam_step"]),
        "inner_optimizer": checkpoint.TENSORS if record["has_inner_optimizer"] else None,
        "env_steps": record["env_steps"],
        "wall_seconds": record["wall_seconds"],
        "log_rates": checkpoint.TENSORS if has_rates else None,
        "rate_adam": adam(record.get("rate_adam_step")),
    }
    return layout, {**record, "state": tree}


def _log_row(
    iteration: int, state: MetaState, report: StepReport
) -> tuple[dict[str, Any], dict[str, float]]:
    """The ``progress.csv`` row and the extra TensorBoard scalars of one iteration."""
    returns = np.array([r.returns for r in report.results]).mean(axis=0).tolist()
    row = {
        "iteration": iteration,
        "env_steps": state.env_steps,
        "wall_s": round(state.wall_seconds, 3),
        "eps": report.eps,
        "return_pre": returns[0],
        "tasks_dropped": report.dropped,
    }
    row.update({f"return_after_{k}": r for k, r in enumerate(returns) if k > 0})
    # The learner's statistics of each task's last update, averaged over tasks.
    scalars: dict[str, float] = {}
    last = [r.train_stats[-1] for r in report.results if r.train_stats]
    for key in sorted(set().union(*last)) if last else []:
        values = [s[key] for s in last if key in s and math.isfinite(s[key])]
        if values and key != "train/n_updates":
            scalars[f"inner/{key.removeprefix('train/')}"] = float(np.mean(values))
    return row, scalars
