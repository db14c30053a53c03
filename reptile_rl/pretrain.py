"""Baselines to compare a meta-initialisation against, trained with plain multi-task learning.

- **pretrained**: one policy trained by the configured learner (PPO by default) on the whole
  train-split task distribution (MAML's "pretrained" baseline): before every rollout each env
  gets a new task, so the policy learns the best behaviour *on average* over tasks. It starts
  from the same initial parameters as meta-training and, by default, gets the same env-step
  budget.
- **oracle**: the same, but the task is appended to the observation (``TaskInObservation``),
  so the policy can be optimal for every task without adapting: an upper reference line.

The run directory (:class:`~reptile_rl.rundir.RunDir`) holds ``config.yaml``, ``progress.csv``
(one row per rollout), TensorBoard events, ``<role>_policy.safetensors`` (safe; what
``reptile-rl evaluate`` loads) and ``<role>_policy.zip`` (plain SB3).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from reptile_rl.config import Config, check_env_builds
from reptile_rl.families import family_task_type
from reptile_rl.learners import initial_parameters, make_learner
from reptile_rl.policies import PolicyFile, policy_record, save_policy
from reptile_rl.rundir import RunDir
from reptile_rl.runlog import RunLog
from reptile_rl.seeding import Stream, derive_seed

PROGRESS_COLUMNS = ["rollout", "env_steps", "wall_s", "return"]


class Pretrainer:
    """Train the pretrained (``oracle=False``) or oracle (``oracle=True``) baseline.

    Args:
        config: Configuration; ``baseline.*`` sets the budget and learner overrides.
        oracle: Observe the task.
        run_dir: Output directory; ``None`` for ``runs/<name>-<role>-seed<seed>-<time>``. It
            must not already hold a run.
        progress: Show a progress bar.
    """

    def __init__(
        self,
        config: Config,
        oracle: bool,
        run_dir: str | Path | None = None,
        progress: bool = False,
    ) -> None:
        self.config = config
        self.oracle = oracle
        self.role = "oracle" if oracle else "pretrained"
        self.progress = progress
        self.run = RunDir(run_dir) if run_dir is not None else RunDir.default(config, self.role)

    @property
    def run_dir(self) -> Path:
        """The run directory."""
        return self.run.path

    def learn(self) -> PolicyFile:
        """Train for the budget and write the run directory; return the trained policy."""
        config = self.config
        check_env_builds(config)
        self.run.create(config, resume_hint=False)
        inner = config.baseline_inner()
        learner = make_learner(config, oracle=self.oracle, inner=inner)
        initial = initial_parameters(
            config, derive_seed(config.seed, Stream.INITIAL_PARAMETERS), self.oracle
        )
        if config.baseline.log_std_init is not None:
            # SB3 initialises log_std to the constant log_std_init and draws nothing for it, so
            # this is the policy built with that value (the other parameters are unchanged).
            initial["log_std"] = np.full_like(initial["log_std"], config.baseline.log_std_init)
        learner.load(initial)
        learner.seed(derive_seed(config.seed, Stream.BASELINE))
        task_type = family_task_type(config.env.id)
        rollouts = math.ceil(config.baseline_env_steps() / learner.rollout_size)
        log = RunLog(
            self.run,
            PROGRESS_COLUMNS,
            0,
            rollouts,
            self.progress,
            {"return": "return"},
            tag=self.role,
        )
        env_steps, wall = 0, 0.0
        try:
            for index in range(rollouts):
                start = time.perf_counter()
                # A fresh task for every env before every rollout (none changes mid-episode).
                seed = derive_seed(config.seed, Stream.BASELINE, index)
                rollout = learner.train_on(task_type.sample(learner.n_envs, seed=seed))
                elapsed = time.perf_counter() - start
                env_steps += rollout.env_steps
                wall += elapsed
                row = {
                    "rollout": index,
                    "env_steps": env_steps,
                    "wall_s": round(wall, 3),
                    "return": rollout.mean_return,
                }
                scalars = {
                    f"{inner.algorithm}/{k.removeprefix('train/')}": v
                    for k, v in rollout.train_stats.items()
                }
                log.record(row, scalars, rollout.env_steps / max(elapsed, 1e-9))
            info = {"env_steps": env_steps, "rollouts": rollouts}
            policy = PolicyFile(learner.parameters(), config, self.role, self.oracle, info)
            save_policy(self.run.policy_file(self.role), policy)
            learner.export(policy.params, self.run.sb3_file(self.role), policy_record(policy))
        finally:
            log.close()
            learner.close()
        return policy
