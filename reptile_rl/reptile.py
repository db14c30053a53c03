"""The Reptile outer loop around stable-baselines3 PPO (Nichol, Achiam and Schulman 2018).

Each meta-iteration ``t``::

    tasks   = meta_batch_size tasks of the train split, drawn from seed (run seed, t)
    phi_i   = PPO-adapt(theta, task_i)            in parallel, each seeded by (run seed, t, i)
    theta  <- theta + eps_t * mean_i(phi_i - theta)        eps_t linear from eps_start to eps_end

With ``outer.direction: last_step`` theta moves along ``mean_i(phi_i,K - phi_i,K-1)`` instead,
the last inner update of each task: first-order MAML when the inner steps are plain SGD.

The run directory holds ``config.yaml``, ``progress.csv``, TensorBoard events under
``tensorboard/``, ``checkpoints/`` (``latest.safetensors`` after every iteration and
``iter_NNNNNN.safetensors`` every ``checkpoint_every``), and at the end ``meta_policy.safetensors``
(safe, what ``reptile-rl evaluate`` loads) and ``meta_policy.zip`` (plain SB3).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from reptile_rl import checkpoint, params
from reptile_rl.config import Config, ConfigError, config_from_yaml, config_to_yaml
from reptile_rl.envs_factory import family_task_type
from reptile_rl.inner import AdaptJob, AdaptResult, InnerLoop, fresh_parameters
from reptile_rl.parallel import Backend, LoopSpec, make_backend, resolve_backend
from reptile_rl.params import AdamState, Params
from reptile_rl.policies import PolicyFile, export_sb3, save_policy
from reptile_rl.runlog import RunLog, progress_columns
from reptile_rl.seeding import Stream, derive_seed

logger = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """Training cannot continue meaningfully (e.g. most of a meta-batch failed)."""


class StorageError(RuntimeError):
    """The run directory cannot be written (full disk, lost permissions...)."""


@dataclasses.dataclass
class MetaState:
    """Everything that evolves during meta-training; a checkpoint stores exactly this.

    Attributes:
        iteration: Next meta-iteration to run.
        theta: The meta-parameters.
        adam: Outer Adam state (``outer.optimizer: adam``), else ``None``.
        inner_optimizer: Inner optimizer state carried between tasks (``reset_optimizer``
            off), else ``None``.
        env_steps: Environment steps used so far.
        wall_seconds: Training wall time so far.
    """

    iteration: int
    theta: Params
    adam: AdamState | None = None
    inner_optimizer: Params | None = None
    env_steps: int = 0
    wall_seconds: float = 0.0


def default_run_dir(config: Config) -> Path:
    """``runs/<name>-seed<seed>-<timestamp>``."""
    return Path("runs") / f"{config.name}-seed{config.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


class Reptile:
    """Meta-train a PPO policy initialisation with Reptile.

    Args:
        config: The run configuration (see :mod:`reptile_rl.config`).
        run_dir: Where to write the run; ``None`` for ``runs/<name>-seed<seed>-<time>``. It must
            not already hold a run (use :meth:`resume` for that).
        progress: Show a progress bar.

    Example:
        >>> from reptile_rl import Reptile, load_config
        >>> reptile = Reptile(load_config("navigation", ["outer.iterations=2"])).learn()
        >>> reptile.run_dir / "meta_policy.zip"  # doctest: +SKIP
    """

    def __init__(
        self, config: Config, run_dir: str | Path | None = None, progress: bool = False
    ) -> None:
        resolve_backend(config.parallel)  # fail now, not after set-up, if Ray is missing
        self.config = config
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
        self.progress = progress
        self._local_loop: InnerLoop | None = None
        self.meta_learned: list[str] = []
        self.state: MetaState | None = None

    # -- set-up ------------------------------------------------------------------------------
    @property
    def local_loop(self) -> InnerLoop:
        """An inner loop in this process, built on first use (for the SB3 export)."""
        if self._local_loop is None:
            self._local_loop = InnerLoop(self.config)
        return self._local_loop

    def _initial_state(self) -> MetaState:
        theta = fresh_parameters(
            self.config, derive_seed(self.config.seed, Stream.INITIAL_PARAMETERS)
        )
        self.meta_learned = self._meta_learned(theta)
        adam = None
        if self.config.outer.optimizer == "adam":
            adam = AdamState.zeros_like({name: theta[name] for name in self.meta_learned})
        return MetaState(0, theta, adam)

    def _meta_learned(self, theta: Params) -> list[str]:
        names = params.select(theta, self.config.outer.exclude)
        if not names:
            raise ConfigError(f"outer.exclude: excludes every parameter ({sorted(theta)})")
        return names

    def _start_new_run(self) -> None:
        config_path = self.run_dir / "config.yaml"
        if config_path.exists():
            raise ConfigError(
                f"--out: {self.run_dir} already holds a run; resume it with --resume "
                "or choose another directory"
            )
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            checkpoint.atomic_write_text(config_path, config_to_yaml(self.config))
        except OSError as error:
            raise ConfigError(f"--out: cannot write to {self.run_dir}: {error.strerror}") from None

    @classmethod
    def resume(cls, run_dir: str | Path, progress: bool = False) -> Reptile:
        """Continue a run from its latest valid checkpoint.

        The final parameters are bit-identical to those of an uninterrupted run.

        Raises:
            ConfigError: If ``run_dir`` holds no run.
            CheckpointError: If it holds no readable checkpoint.
        """
        run_dir = Path(run_dir)
        config_path = run_dir / "config.yaml"
        if not config_path.is_file():
            raise ConfigError(f"--resume: {run_dir} holds no run (no config.yaml)")
        config = config_from_yaml(config_path.read_text(), str(config_path))
        reptile = cls(config, run_dir, progress=progress)
        reptile.state = reptile._load_latest()
        return reptile

    # -- checkpoints ---------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        """The run's ``checkpoints/`` folder."""
        return self.run_dir / "checkpoints"

    def save_checkpoint(self, state: MetaState) -> None:
        """Write ``latest`` (and every ``checkpoint_every`` iterations a numbered copy)."""
        tensors = checkpoint.prefixed(state.theta, "theta/")
        if state.adam is not None:
            tensors.update(checkpoint.prefixed(state.adam.first_moment, "adam_m/"))
            tensors.update(checkpoint.prefixed(state.adam.second_moment, "adam_v/"))
        if state.inner_optimizer is not None:
            tensors.update(checkpoint.prefixed(state.inner_optimizer, "inner_optimizer/"))
        record = {
            "kind": "checkpoint",
            "iteration": state.iteration,
            "env_steps": state.env_steps,
            "wall_seconds": state.wall_seconds,
            "adam_step": None if state.adam is None else state.adam.step,
            "has_inner_optimizer": state.inner_optimizer is not None,
            "config": self.config.to_dict(),
        }
        numbered = state.iteration % self.config.checkpoint_every == 0
        paths = [self.checkpoint_dir / "latest.safetensors"]
        if numbered or state.iteration == self.config.outer.iterations:
            paths.insert(0, self.checkpoint_dir / f"iter_{state.iteration:06d}.safetensors")
        for path in paths:
            try:
                checkpoint.save(path, tensors, record)
            except OSError as error:
                # Writes are atomic, so a latest file that exists is a complete earlier one.
                advice = (
                    f"the previous checkpoint is intact: free the space or fix the permissions, "
                    f"then reptile-rl train --resume {self.run_dir}"
                    if paths[-1].exists()
                    else "no checkpoint was written: free the space or fix the permissions"
                )
                raise StorageError(
                    f"cannot write checkpoint {path}: {error.strerror or error}; {advice}"
                ) from error

    def _load_latest(self) -> MetaState:
        """Load ``latest``, falling back to the newest numbered checkpoint that verifies."""
        candidates = [self.checkpoint_dir / "latest.safetensors"]
        candidates += sorted(self.checkpoint_dir.glob("iter_*.safetensors"), reverse=True)
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
            f"--resume: no usable checkpoint in {self.checkpoint_dir}: {detail}"
        )

    def _state_from(self, tensors: Params, record: dict[str, Any], path: Path) -> MetaState:
        if record["config"] != self.config.to_dict():
            raise checkpoint.CheckpointError(f"{path}: written by a different configuration")
        theta = checkpoint.split_prefixed(tensors, "theta/")
        self.meta_learned = self._meta_learned(theta)
        adam = None
        if record["adam_step"] is not None:
            adam = AdamState(
                record["adam_step"],
                checkpoint.split_prefixed(tensors, "adam_m/"),
                checkpoint.split_prefixed(tensors, "adam_v/"),
            )
        inner_optimizer = None
        if record["has_inner_optimizer"]:
            inner_optimizer = checkpoint.split_prefixed(tensors, "inner_optimizer/")
        return MetaState(
            record["iteration"],
            theta,
            adam,
            inner_optimizer,
            record["env_steps"],
            record["wall_seconds"],
        )

    # -- the algorithm -----------------------------------------------------------------------
    def meta_step(self, backend: Backend, state: MetaState) -> tuple[MetaState, dict[str, Any]]:
        """Run one meta-iteration from ``state``; return the new state and its statistics."""
        config, t = self.config, state.iteration
        task_type = family_task_type(config.env.id)
        tasks = task_type.sample(
            config.outer.meta_batch_size, seed=derive_seed(config.seed, Stream.TRAIN_TASKS, t)
        )
        jobs = [
            AdaptJob(
                task,
                derive_seed(config.seed, Stream.ADAPTATION, t, i),
                config.inner.updates,
                measure_final=config.outer.measure_adapted,
                keep_last_step=config.outer.direction == "last_step",
            )
            for i, task in enumerate(tasks)
        ]
        results = backend.adapt(LoopSpec(config), state.theta, jobs, state.inner_optimizer)
        kept = self._usable(results, t)
        eps = params.linear_schedule(
            config.outer.eps_start, config.outer.eps_end, t, config.outer.iterations
        )
        betas = (config.outer.adam_beta1, config.outer.adam_beta2)
        if config.outer.direction == "last_step":
            # First-order MAML (Finn et al. 2017; Nichol et al. 2018, sec. 5): the gradient at
            # the adapted parameters, which with SGD inner steps is the last update.
            last_steps = [r.last_step for r in kept if r.last_step is not None]
            assert len(last_steps) == len(kept)  # every job kept it and inner.updates >= 1
            theta, adam = params.outer_step(
                state.theta, last_steps, eps, self.meta_learned, state.adam, betas
            )
        else:
            theta, adam = params.reptile_update(
                state.theta, [r.params for r in kept], eps, self.meta_learned, state.adam, betas
            )
        inner_optimizer = None
        if not config.inner.reset_optimizer:
            inner_optimizer = params.average([r.optimizer_state or {} for r in kept])
        if not params.all_finite(theta):  # finite inputs can still overflow
            raise TrainingError(f"iteration {t}: the outer update made theta non-finite")
        steps = sum(r.env_steps for r in results)
        new_state = MetaState(
            t + 1, theta, adam, inner_optimizer, state.env_steps + steps, state.wall_seconds
        )
        return new_state, self._statistics(kept, eps, len(results) - len(kept), steps)

    def _usable(self, results: list[AdaptResult], iteration: int) -> list[AdaptResult]:
        """Drop failed or non-finite adaptations; stop if most of the batch failed."""
        kept = []
        for index, result in enumerate(results):
            if result.error is None and params.all_finite(result.params):
                kept.append(result)
            else:
                reason = result.error or "non-finite parameters"
                logger.warning("iteration %d: task %d dropped: %s", iteration, index, reason)
        if len(kept) * 2 <= len(results):
            raise TrainingError(
                f"iteration {iteration}: {len(results) - len(kept)} of {len(results)} adaptations "
                "failed (see the log); stopping instead of training on garbage. Lower "
                "inner.learning_rate or check the environment."
            )
        return kept

    @staticmethod
    def _statistics(
        results: list[AdaptResult], eps: float, dropped: int, steps: int
    ) -> dict[str, Any]:
        returns = np.array([r.returns for r in results])
        stats: dict[str, Any] = {
            "eps": eps,
            "returns": returns.mean(axis=0).tolist(),
            "tasks_dropped": dropped,
            "env_steps": steps,
            "learn_seconds": sum(r.learn_seconds for r in results),
        }
        # PPO's statistics of each task's last update, averaged over tasks.
        last = [r.train_stats[-1] for r in results if r.train_stats]
        for key in sorted(set().union(*last)) if last else []:
            values = [s[key] for s in last if key in s and math.isfinite(s[key])]
            if values and key != "train/n_updates":
                stats[f"inner/{key.removeprefix('train/')}"] = float(np.mean(values))
        return stats

    # -- the driver --------------------------------------------------------------------------
    def learn(self) -> Reptile:
        """Meta-train until ``outer.iterations``; return ``self`` (see ``run_dir``, ``theta``).

        Raises:
            ConfigError: If the run directory cannot be written.
            TrainingError: If most of a meta-batch fails.
        """
        if self.state is None:
            self._start_new_run()
            self.state = self._initial_state()
            self.save_checkpoint(self.state)
        config = self.config
        columns = progress_columns(config.inner.updates, config.outer.measure_adapted)
        postfix = {"pre": "return_pre", "post": columns[-2]}
        log = RunLog(
            self.run_dir,
            columns,
            self.state.iteration,
            config.outer.iterations,
            self.progress,
            postfix,
        )
        backend = make_backend(config.parallel)
        logger.info(
            "run %s: %s backend, %d worker(s)",
            self.run_dir,
            type(backend).__name__,
            backend.workers,
        )
        try:
            while self.state.iteration < config.outer.iterations:
                start = time.perf_counter()
                state, stats = self.meta_step(backend, self.state)
                elapsed = time.perf_counter() - start
                state.wall_seconds += elapsed
                returns = stats["returns"]
                row = {
                    "iteration": self.state.iteration,
                    "env_steps": state.env_steps,
                    "wall_s": round(state.wall_seconds, 3),
                    "eps": stats["eps"],
                    "return_pre": returns[0],
                    "tasks_dropped": stats["tasks_dropped"],
                }
                row.update({f"return_after_{k}": r for k, r in enumerate(returns) if k > 0})
                scalars = {k: v for k, v in stats.items() if k.startswith("inner/")}
                try:
                    log.record(row, scalars, stats["env_steps"] / max(elapsed, 1e-9))
                except OSError as error:
                    raise StorageError(
                        f"cannot write the logs in {self.run_dir}: {error.strerror or error}"
                    ) from error
                self.state = state
                self.save_checkpoint(state)
        finally:
            log.close()
            backend.close()
        self._export(self.state)
        return self

    def _export(self, state: MetaState) -> None:
        info = {"iterations": state.iteration, "env_steps": state.env_steps}
        save_policy(
            self.run_dir / "meta_policy.safetensors",
            PolicyFile(state.theta, self.config, "meta", info=info),
        )
        export_sb3(self.local_loop, state.theta, self.run_dir / "meta_policy.zip")

    @property
    def theta(self) -> Params:
        """The current meta-parameters."""
        if self.state is None:
            raise RuntimeError("no parameters yet: call learn() first")
        return self.state.theta
